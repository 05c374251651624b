"""The per-bar driver: a ``BarStrategy`` decides each bar as it closes, seeing the core's state.

The same loop a paper or live session runs: the trades of a bar go to the execution core, the
bar closes, the strategy gets a read-only ``AccountView`` (positions, working orders, equity,
last fills as of the bar's end) in ``self.account`` and the bars so far, and its decision is
submitted to arrive ``latency`` after the bar's end, before the next bar's trades. For a strategy
that does not read the account, the result is byte-identical to computing all its signals
first and feeding the core at once (tests/test_backtest_per_bar.py).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import polars as pl

from botclave_cli.backtest.book import BookArrays
from botclave_cli.execution.core import CoreInputs, ExecutionCore, Signals
from botclave_cli.strategy.base import SIGNAL_SCHEMA, BarStrategy, check_signals


class CoreFeeder(Protocol):
    """What the driver needs of the Backtester: the core's inputs and the signal conversion."""

    def core_inputs(self, signals: pl.DataFrame, funding: pl.DataFrame | None,
                    continuous: bool, book: BookArrays | None = None) -> CoreInputs: ...

    def new_core(self, inputs: CoreInputs) -> ExecutionCore: ...

    def submissions(self, signals: pl.DataFrame) -> Signals: ...


def _with_ids(signals: pl.DataFrame, first_id: int) -> pl.DataFrame:
    return signals.with_row_index("signal_id", offset=first_id).with_columns(
        pl.col("signal_id").cast(pl.Int64))


def run_per_bar(tester: CoreFeeder, strategy: BarStrategy, bars: pl.DataFrame,
                trades: tuple[np.ndarray, np.ndarray, np.ndarray],
                funding: pl.DataFrame | None, continuous: bool, book: BookArrays
                ) -> tuple[ExecutionCore, pl.DataFrame]:
    """Run ``strategy`` bar by bar over ``trades`` (us, ticks, lots); the core and the signals
    it was given (``SIGNAL_SCHEMA`` plus ``signal_id``)."""
    t_ts, t_px, t_qty = trades
    name = type(strategy).__name__
    inputs = tester.core_inputs(_with_ids(pl.DataFrame(schema=SIGNAL_SCHEMA), 0), funding,
                                continuous, book)
    core = tester.new_core(inputs)
    if inputs.book is not None:
        core.add_book(inputs.book)
    core.add_funding(inputs.funding_ts, inputs.funding_rate)
    # the trades of bar i are those before its end
    ends = np.searchsorted(t_ts, bars["bar_end"].dt.epoch("us").to_numpy(), side="left")
    decided: list[pl.DataFrame] = []
    fed = 0
    for i in range(strategy.warmup_bars, bars.height):
        core.trades_ticks(t_ts[fed:ends[i]], t_px[fed:ends[i]], t_qty[fed:ends[i]])
        fed = int(ends[i])
        strategy.account = core.view()
        row = strategy.decide(bars, i)
        if row is None:
            continue
        signal = _with_ids(check_signals(pl.DataFrame([row], schema=SIGNAL_SCHEMA,
                                                      orient="row"), name), len(decided))
        core.submit(tester.submissions(signal))
        decided.append(signal)
    core.trades_ticks(t_ts[fed:], t_px[fed:], t_qty[fed:])
    strategy.account = core.view()
    signals = pl.concat(decided) if decided else _with_ids(
        check_signals(pl.DataFrame(schema=SIGNAL_SCHEMA), name), 0)
    return core, signals
