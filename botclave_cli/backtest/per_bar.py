"""The per-bar driver: the strategy decides each bar as it closes, seeing the core's state.

The same loop a paper or live session runs: the trades of a bar go to the execution core, the
bar closes, the strategy decides that bar, and its decision is submitted to arrive ``latency``
after the bar's end, before the next bar's trades. Two kinds of deciders:

- a ``BarStrategy`` (user code) gets a read-only ``AccountView`` (positions, working orders,
  equity, last fills as of the bar's end) in ``self.account`` and the bars so far;
- a streaming strategy (``OrderFlowStrategy.stream()``) gets the bar's trades and updates its
  footprint, detectors and structure from a carried state (strategy/stream.py).

For a strategy that does not read the account, the result is byte-identical to computing all
its signals first and feeding the core at once (tests/test_backtest_per_bar.py,
tests/test_strategy_stream.py).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import polars as pl

from botclave_cli.backtest.book import BookArrays
from botclave_cli.execution.core import CoreInputs, ExecutionCore, Signals
from botclave_cli.execution.view import AccountView
from botclave_cli.strategy.bars import BarTrades
from botclave_cli.strategy.base import (
    SIGNAL_SCHEMA,
    BarStrategy,
    check_signals,
    signal_frame,
    with_signal_ids,
)
from botclave_cli.strategy.stream import OrderFlowStream


class CoreFeeder(Protocol):
    """What the driver needs of the Backtester: the core's inputs and the signal conversion."""

    def core_inputs(self, signals: pl.DataFrame, funding: pl.DataFrame | None,
                    continuous: bool, book: BookArrays | None = None) -> CoreInputs: ...

    def new_core(self, inputs: CoreInputs) -> ExecutionCore: ...

    def submissions(self, signals: pl.DataFrame) -> Signals: ...


class BarDecider(Protocol):
    """Decides bar ``i`` when it has closed: its signals (``SIGNAL_SCHEMA``, maybe none)."""

    name: str
    first_bar: int

    def decide(self, i: int, account: AccountView) -> pl.DataFrame: ...


class UserBars:
    """A ``BarStrategy`` over the bars computed up front (it sees ``bars[: i + 1]`` only)."""

    def __init__(self, strategy: BarStrategy, bars: pl.DataFrame) -> None:
        self.strategy = strategy
        self.bars = bars
        self.name = type(strategy).__name__
        self.first_bar = strategy.warmup_bars

    def decide(self, i: int, account: AccountView) -> pl.DataFrame:
        self.strategy.account = account
        row = self.strategy.decide(self.bars, i)
        rows = [] if row is None else [row]
        return pl.DataFrame(rows, schema=SIGNAL_SCHEMA, orient="row")


class StreamedBars:
    """A streaming strategy fed each bar's trades (``bar_rows[i]:bar_rows[i + 1]`` of
    ``trades``), with the bar's book imbalance when the backtest has a book."""

    def __init__(self, stream: OrderFlowStream, name: str, trades: pl.DataFrame,
                 bar_rows: np.ndarray, book_imbalance: pl.Series | None) -> None:
        self.stream = stream
        self.name = name
        self.first_bar = 0
        self.trades = BarTrades.of(trades)
        self.bar_rows = bar_rows
        self.imbalance = book_imbalance
        self.features: list[dict[str, Any]] = []  # feature rows: stream.frame(features)

    def decide(self, i: int, account: AccountView) -> pl.DataFrame:
        lo, hi = int(self.bar_rows[i]), int(self.bar_rows[i + 1])
        imbalance = None if self.imbalance is None else self.imbalance[i]
        features, signals = self.stream.on_bar(self.trades.slice(lo, hi), imbalance)
        self.features.append(features)
        return signal_frame(signals)


def run_per_bar(tester: CoreFeeder, decider: BarDecider, bars: pl.DataFrame,
                trades: tuple[np.ndarray, np.ndarray, np.ndarray],
                funding: pl.DataFrame | None, continuous: bool, book: BookArrays
                ) -> tuple[ExecutionCore, pl.DataFrame]:
    """Run ``decider`` bar by bar over ``trades`` (us, ticks, lots); the core and the signals
    it was given (``SIGNAL_SCHEMA`` plus ``signal_id``)."""
    t_ts, t_px, t_qty = trades
    inputs = tester.core_inputs(with_signal_ids(pl.DataFrame(schema=SIGNAL_SCHEMA)), funding,
                                continuous, book)
    core = tester.new_core(inputs)
    if inputs.book is not None:
        core.add_book(inputs.book)
    core.add_funding(inputs.funding_ts, inputs.funding_rate)
    ends = bar_ends(t_ts, bars)
    decided: list[pl.DataFrame] = []
    fed = n_signals = 0
    for i in range(decider.first_bar, bars.height):
        core.trades_ticks(t_ts[fed:ends[i]], t_px[fed:ends[i]], t_qty[fed:ends[i]])
        fed = int(ends[i])
        rows = decider.decide(i, core.view())
        if rows.height == 0:
            continue
        signals = with_signal_ids(check_signals(rows, decider.name), n_signals)
        core.submit(tester.submissions(signals))
        decided.append(signals)
        n_signals += signals.height
    core.trades_ticks(t_ts[fed:], t_px[fed:], t_qty[fed:])
    signals = pl.concat(decided) if decided else with_signal_ids(
        check_signals(pl.DataFrame(schema=SIGNAL_SCHEMA), decider.name), 0)
    return core, signals


def bar_ends(t_ts: np.ndarray, bars: pl.DataFrame) -> np.ndarray:
    """Per bar, the index of the first trade at or after its end (the trades of bar ``i`` are
    those before ``bar_ends[i]``)."""
    return np.searchsorted(t_ts, bars["bar_end"].dt.epoch("us").to_numpy(), side="left")
