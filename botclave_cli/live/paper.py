"""Paper trading: the execution core fed by the trade stream as it arrives, the strategy
deciding each bar as it closes. The loop a live session runs, without an exchange order.

``PaperTrader.on_trade(ts_us, price, qty, buy)`` takes one trade (``on_trades`` the arrays of
a batch in time order); the core gets them in batches (before every decision, every
``FLUSH_TRADES`` trades and on ``flush()``, which a live session calls on every clock tick). A
trade at or after the open bar's end first closes it: its trades go to the strategy's stream
(``OrderFlowStrategy.stream()``: footprint, detectors and structure updated from carried
state), the bar's signals are submitted to the core to arrive ``latency`` after the bar's end,
and only then does the trade reach the core. This is the order of the per-bar backtest
(backtest/per_bar.py), so a replayed stream gives ``Backtester.run(per_bar=True)``'s result,
which is the batch backtest's (tests/test_paper.py). ``close()`` ends the open bar (the end of
a replay; live: the bar's end passing on the clock) and ``result()`` gives the session's
orders, fills, trades and equity as a backtest result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from botclave_cli.backtest.backtester import Backtester, BacktestResult
from botclave_cli.errors import ConfigError, DataError
from botclave_cli.strategy.bars import BarTrades
from botclave_cli.strategy.base import (
    SIGNAL_SCHEMA,
    check_signal_rows,
    check_signals,
    signal_frame,
    with_signal_ids,
)
from botclave_cli.strategy.params import bar_us
from botclave_cli.strategy.structure_stream import STRUCTURE_SCHEMA

#: trades buffered before the core gets them, at most (a decision flushes first)
FLUSH_TRADES = 4096


@dataclass(frozen=True)
class BookReading:
    """The live book at a bar's close: whether a decision may use it, and its imbalance
    (bid - ask) / (bid + ask) over the strategy's ``entry.book_imbalance_levels``."""

    problem: str | None  # None: usable; else "book invalid" or "book stale"
    imbalance: float | None = None


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
        # the open bar's trades (for the strategy), as Python lists: one trade per message
        # must not cost numpy calls
        self._open_ts: list[int] = []
        self._open_px: list[float] = []
        self._open_qty: list[float] = []
        self._open_buy: list[bool] = []
        # trades not yet handed to the core: flushed before every decision, every
        # FLUSH_TRADES trades and on flush() (the core's result does not depend on how its
        # trades are cut into calls: tests/test_execution_core.py)
        self._pending_ts: list[int] = []
        self._pending_px: list[float] = []
        self._pending_qty: list[float] = []
        self._seen_ts: list[np.ndarray] = []
        self._seen_px: list[np.ndarray] = []
        self._last_ts: int | None = None
        self.signals: list[pl.DataFrame] = []
        self.features: list[dict[str, Any]] = []  # the bars' feature rows (stream.frame)
        self.n_signals = 0
        #: live sessions whose strategy reads the book (entry.book_imbalance_min): the book at
        #: each bar's close; a bar closing on an invalid or stale book decides nothing
        self.book: Callable[[int], BookReading] | None = None
        self.bars_without_book: dict[str, int] = {}  # bars that decided nothing, by reason
        self.flush_trades = FLUSH_TRADES  # live trading: 1 (every fill known at once)

    # feeding ---------------------------------------------------------------------------------
    def on_trades(self, ts_us: np.ndarray, price: np.ndarray, qty: np.ndarray,
                  buy: np.ndarray) -> None:
        """Trades in time order (us, quote, base, aggressor is buyer)."""
        for t, p, q, b in zip(np.asarray(ts_us).tolist(), np.asarray(price).tolist(),
                              np.asarray(qty).tolist(), np.asarray(buy).tolist(), strict=True):
            self.on_trade(t, p, q, b)

    def on_trade(self, ts_us: int, price: float, qty: float, buy: bool) -> None:
        """One trade (exchange time us, quote, base, aggressor is buyer)."""
        if self._last_ts is not None and ts_us < self._last_ts:
            raise DataError(f"paper: trade at {ts_us} us is older than the last one "
                            f"({self._last_ts} us)")
        bar = ts_us // self.bar_us
        if self._closed is not None and bar <= self._closed:
            self.late_trades += 1  # its bar was closed by the clock: core only
        else:
            if bar != self._bar and self._open_ts:
                self._close_bar()
            self._bar = bar
            self._open_ts.append(ts_us)
            self._open_px.append(price)
            self._open_qty.append(qty)
            self._open_buy.append(buy)
        self._pending_ts.append(ts_us)
        self._pending_px.append(price)
        self._pending_qty.append(qty)
        if len(self._pending_ts) >= self.flush_trades:
            self.flush()
        self._last_ts = ts_us

    def flush(self) -> None:
        """Hand the trades received so far to the core (its fills, positions and equity are
        then current)."""
        if not self._pending_ts:
            return
        ts = np.array(self._pending_ts, dtype=np.int64)
        px = np.rint(np.array(self._pending_px) / self.tick).astype(np.int64)
        lots = np.rint(np.array(self._pending_qty) / self.lot).astype(np.int64)
        self._pending_ts, self._pending_px, self._pending_qty = [], [], []
        self.core.trades_ticks(ts, px, lots)
        self._seen_ts.append(ts)
        self._seen_px.append(px)

    @property
    def last_ts_us(self) -> int | None:
        """Exchange time (us) of the last trade taken, None before the first."""
        return self._last_ts

    @property
    def received(self) -> bool:
        return bool(self._seen_ts or self._pending_ts)

    def close(self) -> None:
        """End the open bar now (its trades are complete)."""
        if self._open_ts:
            self._close_bar()
        self.flush()

    def close_due(self, now_us: int, grace_us: int) -> bool:
        """Live: end the open bar once the clock is ``grace_us`` past its end (no trade of the
        next bar came to close it); a trade of it arriving later is ``late`` (core only)."""
        if self._bar is not None and self._open_ts and now_us >= (self._bar + 1) * self.bar_us \
                + grace_us:
            self._close_bar()
            return True
        return False

    def _close_bar(self) -> None:
        self.flush()  # the bar's trades reach the core before its orders are submitted
        trades = BarTrades(np.array(self._open_ts, dtype=np.int64),
                           np.array(self._open_px, dtype=np.float64),
                           np.array(self._open_qty, dtype=np.float64),
                           np.array(self._open_buy, dtype=bool))
        self._open_ts, self._open_px, self._open_qty, self._open_buy = [], [], [], []
        self._closed = self._bar
        bar = self._closed
        assert bar is not None
        reading = None if self.book is None else self.book((bar + 1) * self.bar_us)
        features, decided = self.stream.on_bar(
            trades, None if reading is None else reading.imbalance)
        self.features.append(features)
        if reading is not None and reading.problem is not None:
            # the strategy already refuses a null imbalance; nothing it decides goes out
            why = reading.problem
            self.bars_without_book[why] = self.bars_without_book.get(why, 0) + 1
            return
        if not decided:
            return
        rows = check_signal_rows(decided, self.name)
        self.core.submit(self.tester.row_submissions(rows))  # no frame before the order
        self.signals.append(with_signal_ids(signal_frame(rows), self.n_signals))
        self.n_signals += len(rows)

    # the result ------------------------------------------------------------------------------
    def result(self) -> BacktestResult:
        """The session so far as a backtest result (call ``close`` first for a finished
        replay)."""
        self.flush()
        if not self._seen_ts:
            raise DataError("paper: no trade received yet")
        t_ts, t_px = np.concatenate(self._seen_ts), np.concatenate(self._seen_px)
        signals = pl.concat(self.signals) if self.signals else with_signal_ids(
            check_signals(pl.DataFrame(schema=SIGNAL_SCHEMA), self.name))
        bars = self.stream.frame(self.features).drop(list(STRUCTURE_SCHEMA)) if self.features else \
            pl.DataFrame()
        return self.tester.result(self.core, signals, bars, t_ts, t_px, mode="paper",
                                  input_rows=len(t_ts))
