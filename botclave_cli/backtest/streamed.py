"""A trade-level backtest read from the store one ``date=`` partition (UTC day) at a time.

Memory holds one day of trades, the bars and the execution core, whatever the number of days.
Two passes over the partitions: the first builds the bars and the strategy's per-bar
trade features (the footprint columns) day by day, then the features that span bars (rolling
POC, divergences) and the signals over all bars; the second feeds each day's trades to the
execution core, which gives the same bytes fed whole or in chunks. The result is the one
``Backtester.run`` gives on all the trades at once (tests/test_backtest_streamed.py).

Where that identity cannot hold, ``stream_refusal`` says why and the caller loads the trades
whole: a book (samples span days), ``--per-bar``, bars that do not divide a day, a user
strategy that reads trades in ``enrich`` or decides bar by bar, and the absorption setup (its
onsets are judged against the bars before them, across midnight).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import numpy as np
import polars as pl

from botclave_cli.backtest.backtester import Backtester, BacktestResult
from botclave_cli.data.store import DatasetRef, Store
from botclave_cli.engine.footprint.builder import build_footprint
from botclave_cli.engine.footprint.store import partition_chunks
from botclave_cli.errors import DataError
from botclave_cli.execution.layout import DAY_US
from botclave_cli.progress import Progress, or_null
from botclave_cli.strategy.bars import bars_from_trades
from botclave_cli.strategy.base import BarStrategy, Strategy
from botclave_cli.strategy.features import (
    FOOTPRINT_COLUMNS,
    footprint_spec,
    wants,
    with_recent_divergence,
)
from botclave_cli.strategy.params import bar_us
from botclave_cli.strategy.strategy import OrderFlowStrategy

Chunks = Callable[[], Iterator[pl.DataFrame]]


def stream_refusal(tester: Backtester, *, book: bool, per_bar: bool) -> str | None:
    """Why this run must load the trades whole (None: it can stream day by day)."""
    strategy = tester.strategy
    tf = tester.params.bars.timeframe
    if book:
        return "book mode"
    if per_bar or isinstance(strategy, BarStrategy):
        return "--per-bar" if per_bar else "a bar-by-bar strategy"
    try:
        dur = bar_us(tf)
    except (KeyError, ValueError):
        return f"bars {tf} are not time bars"
    if DAY_US % dur:
        return f"bars of {tf} do not divide a day"
    if isinstance(strategy, OrderFlowStrategy):
        return "the absorption setup" if wants(tester.params).absorption else None
    if type(strategy).enrich is not Strategy.enrich:
        return f"strategy {type(strategy).__name__} adds its own trade features"
    return None


def store_chunks(store: Store, ref: DatasetRef, start: dt.datetime | None,
                 end: dt.datetime | None) -> Chunks:
    """A fresh iterator over the partitions of ``ref`` in [start, end), one frame per day."""
    def chunks() -> Iterator[pl.DataFrame]:
        for lf in partition_chunks(store, ref, start, end):
            df = lf.collect()
            if df.height:
                yield df
    return chunks


def run_streamed(tester: Backtester, chunks: Chunks, funding: pl.DataFrame | None = None,
                 progress: Progress | None = None, empty: str | None = None) -> BacktestResult:
    """``tester.run(all trades)`` without holding them: ``chunks()`` yields the trades (ts,
    price, qty, side) day by day in time order, and is called twice. ``empty``: the
    DataError's message when there is no trade."""
    prog = or_null(progress)
    tf = tester.params.bars.timeframe
    spec = footprint_spec(tester.params, tester.tick_size)
    want_fp = isinstance(tester.strategy, OrderFlowStrategy) and wants(tester.params).footprint
    bars_parts, fp_parts = [], []
    first_ts = last_ts = rows = 0
    prog.start(None, "bars")
    for df in chunks():
        ts = df["ts"].dt.epoch("us")
        first_ts = int(ts[0]) if rows == 0 else first_ts
        if rows and int(ts[0]) < last_ts:
            raise DataError(f"trades at {df['ts'][0]} come before the previous day's last trade")
        last_ts = int(ts[-1])
        rows += df.height
        bars_parts.append(bars_from_trades(df, tf))
        if want_fp:
            fp_parts.append(build_footprint(df, spec).bars.select("bar_start",
                                                                  *FOOTPRINT_COLUMNS))
        prog.advance()
    if rows == 0:
        raise DataError(empty or "no trades in the selected range (trade-level mode needs a "
                        "trades dataset; use bars-only mode with OHLCV)")
    bars = _enriched(tester, pl.concat(bars_parts), pl.concat(fp_parts) if want_fp else None)
    prog.start(None, "signals")
    signals = tester._signals(bars)
    inputs = tester.core_inputs(signals, funding, False)
    core = tester.new_core(inputs, last_ts - first_ts)
    core.submit(inputs.signals)
    core.add_funding(inputs.funding_ts, inputs.funding_rate)
    prog.start(None, "fills")
    last_px = 0
    for df in chunks():
        px = np.rint(df["price"].to_numpy() / tester.tick_size).astype(np.int64)
        core.trades_ticks(df["ts"].dt.epoch("us").to_numpy(), px,
                          np.rint(df["qty"].to_numpy() / tester.lot_size).astype(np.int64))
        last_px = int(px[-1])
        prog.advance()
    return tester.result(core, signals, bars, np.array([first_ts, last_ts], np.int64),
                         np.array([last_px], np.int64), mode="trades", input_rows=rows)


def _enriched(tester: Backtester, bars: pl.DataFrame, fp: pl.DataFrame | None) -> pl.DataFrame:
    """``enrich_orderflow`` (strategy/features.py) with the footprint columns built per day:
    the same joins and the same cross-bar columns, over all bars at once."""
    if not isinstance(tester.strategy, OrderFlowStrategy) or bars.height == 0:
        return bars
    params = tester.params
    out = bars
    if fp is not None:
        n = params.target.poc_lookback_bars
        out = out.join(fp, on="bar_start", how="left", maintain_order="left").with_columns(
            pl.col("poc").rolling_max(n, min_samples=1).alias("poc_high"),
            pl.col("poc").rolling_min(n, min_samples=1).alias("poc_low"),
        )
    if wants(params).divergence:
        out = with_recent_divergence(out, params)
    return out
