"""Paper trading: the execution core fed by the trade stream as it arrives, the strategy
deciding each bar as it closes. The loop a live session runs, without an exchange order.

``PaperTrader.on_trades(ts_us, price, qty, side)`` takes the trades of one message (or any
batch in time order): trades of the open bar go to the core at once; a trade at or after the
open bar's end first closes it: its trades go to the strategy's stream
(``OrderFlowStrategy.stream()``: footprint, detectors and structure updated from carried
state), the bar's signals are submitted to the core to arrive ``latency`` after the bar's end,
and only then does the trade reach the core. This is the order of the per-bar backtest
(backtest/per_bar.py), so a replayed stream gives ``Backtester.run(per_bar=True)``'s result,
which is the batch backtest's (tests/test_paper.py). ``close()`` ends the open bar (the end of
a replay; live: the bar's end passing on the clock) and ``result()`` gives the session's
orders, fills, trades and equity as a backtest result.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from botclave_cli.backtest.backtester import Backtester, BacktestResult
from botclave_cli.data.schemas import TS
from botclave_cli.errors import ConfigError, DataError
from botclave_cli.strategy.base import SIGNAL_SCHEMA, check_signals
from botclave_cli.strategy.params import bar_us
from botclave_cli.strategy.structure_stream import STRUCTURE_SCHEMA


class PaperTrader:
    """One symbol's paper session (module docstring)."""

    def __init__(self, tester: Backtester, funding: pl.DataFrame | None = None) -> None:
        stream = getattr(tester.strategy, "stream", None)
        if stream is None:
            raise ConfigError(f"strategy {type(tester.strategy).__name__} has no bar-by-bar "
                              "form (stream()): paper trading needs one")
        self.tester = tester
        self.name = type(tester.strategy).__name__
        self.stream = stream()
        empty = pl.DataFrame(schema=SIGNAL_SCHEMA).with_columns(
            pl.lit(None, pl.Int64).alias("signal_id"))
        inputs = tester.core_inputs(empty, funding, continuous=False)
        self.core = tester.new_core(inputs)
        self.core.add_funding(inputs.funding_ts, inputs.funding_rate)
        self.bar_us = bar_us(tester.params.bars.timeframe)
        self.tick, self.lot = tester.tick_size, tester.lot_size
        self._bar: int | None = None
        self._closed: int | None = None  # the last bar decided
        self.late_trades = 0
        self._open: list[tuple[np.ndarray, ...]] = []  # (ts, price, qty, buy) of the open bar
        self._seen_ts: list[np.ndarray] = []
        self._seen_px: list[np.ndarray] = []
        self._last_ts: int | None = None
        self.signals: list[pl.DataFrame] = []
        self.features: list[pl.DataFrame] = []
        self.n_signals = 0

    # feeding ---------------------------------------------------------------------------------
    def on_trades(self, ts_us: np.ndarray, price: np.ndarray, qty: np.ndarray,
                  buy: np.ndarray) -> None:
        """Trades in time order (us, quote, base, aggressor is buyer)."""
        if len(ts_us) == 0:
            return
        if self._last_ts is not None and ts_us[0] < self._last_ts or np.any(np.diff(ts_us) < 0):
            raise DataError(f"paper: trade at {int(ts_us[0])} us is older than the last one "
                            f"({self._last_ts} us)")
        bars = ts_us // self.bar_us
        cuts = np.flatnonzero(np.diff(bars)) + 1
        for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(ts_us)]]),
                          strict=True):
            bar = int(bars[lo])
            part = (ts_us[lo:hi], price[lo:hi], qty[lo:hi], buy[lo:hi])
            if self._closed is not None and bar <= self._closed:
                self.late_trades += hi - lo  # its bar was closed by the clock: core only
            else:
                if self._bar is not None and bar != self._bar and self._open:
                    self._close_bar()
                self._bar = bar
                self._open.append(part)
            px = np.rint(part[1] / self.tick).astype(np.int64)
            self.core.trades_ticks(part[0].astype(np.int64), px,
                                   np.rint(part[2] / self.lot).astype(np.int64))
            self._seen_ts.append(part[0].astype(np.int64))
            self._seen_px.append(px)
        self._last_ts = int(ts_us[-1])

    def close(self) -> None:
        """End the open bar now (its trades are complete)."""
        if self._open:
            self._close_bar()

    def close_due(self, now_us: int, grace_us: int) -> bool:
        """Live: end the open bar once the clock is ``grace_us`` past its end (no trade of the
        next bar came to close it); a trade of it arriving later is ``late`` (core only)."""
        if self._bar is not None and self._open and now_us >= (self._bar + 1) * self.bar_us \
                + grace_us:
            self._close_bar()
            return True
        return False

    def _close_bar(self) -> None:
        ts, price, qty, buy = (np.concatenate(c) for c in zip(*self._open, strict=True))
        self._open = []
        self._closed = self._bar
        trades = pl.DataFrame({
            "ts": pl.Series(ts.astype(np.int64)).cast(pl.Datetime("us")).dt.replace_time_zone(
                "UTC"),
            "price": price.astype(np.float64), "qty": qty.astype(np.float64),
            "side": np.where(buy, "buy", "sell")}, schema={"ts": TS, "price": pl.Float64,
                                                          "qty": pl.Float64, "side": pl.String})
        features, decided = self.stream.on_bar(trades)
        self.features.append(features)
        if decided.height == 0:
            return
        signals = check_signals(decided, self.name).with_row_index(
            "signal_id", offset=self.n_signals).with_columns(pl.col("signal_id").cast(pl.Int64))
        self.core.submit(self.tester.submissions(signals))
        self.signals.append(signals)
        self.n_signals += signals.height

    # the result ------------------------------------------------------------------------------
    def result(self) -> BacktestResult:
        """The session so far as a backtest result (call ``close`` first for a finished
        replay)."""
        if not self._seen_ts:
            raise DataError("paper: no trade received yet")
        t_ts, t_px = np.concatenate(self._seen_ts), np.concatenate(self._seen_px)
        signals = pl.concat(self.signals) if self.signals else check_signals(
            pl.DataFrame(schema=SIGNAL_SCHEMA), self.name).with_row_index(
            "signal_id").with_columns(pl.col("signal_id").cast(pl.Int64))
        bars = pl.concat(self.features).drop(list(STRUCTURE_SCHEMA)) if self.features else \
            pl.DataFrame()
        return self.tester.result(self.core, signals, bars, t_ts, t_px, mode="paper",
                                  input_rows=len(t_ts))
