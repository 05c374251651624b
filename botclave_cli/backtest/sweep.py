"""Parameter sweeps of the bars-only moving-average cross: many (fast, slow) pairs, one call.

``sma_sweep(bars, pairs, params, exchange_config, tick_size=..., lot_size=...) -> list[SweepRun]``

Each pair's closed trades and final equity are those of a single bars-only run of that
pair (``Backtester(params with sma_cross.fast/slow = pair).run(bars=bars, bars_only=True)``),
byte for byte (tests/test_backtest_sweep.py). What the sweep shares between pairs: the bars'
pseudo-trades (computed once), each distinct window's moving average (computed once), and
the execution core's parameters. What it leaves out: the equity curve and the metrics that
need it (it marks equity once per span instead of every ``execution.equity_interval``: marks
are outputs only, they never change a fill). Run the chosen pair once with the Backtester for
those.

Units: bar prices in quote currency, ``final_equity`` in quote currency, trade quantities in
base units (``BacktestResult.trades`` columns).

Called by the ``backtest --sweep`` CLI and the cluster executor (issue 19): ``pairs`` may be
any subset, in any order; the result keeps that order, one ``SweepRun`` per pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from pydantic import ValidationError

from botclave_cli.backtest.backtester import Backtester, _trades_frame
from botclave_cli.backtest.bars_path import pseudo_trades
from botclave_cli.config import ExchangeConfig
from botclave_cli.errors import ConfigError, DataError
from botclave_cli.execution import layout as K
from botclave_cli.execution.core import ExecutionCore
from botclave_cli.strategy.base import check_signals, with_signal_ids
from botclave_cli.strategy.params import SmaCrossParams, StrategyParams
from botclave_cli.strategy.strategy import cross_actions, cross_signals, sma


@dataclass(frozen=True)
class SweepRun:
    """One pair's outcome: its closed trades (``BacktestResult.trades`` columns), its final
    equity (cash plus open positions at the last close, quote currency) and how many
    positions are still open at the end."""

    fast: int
    slow: int
    trades: pl.DataFrame
    final_equity: float
    open_positions: int


def sma_sweep(bars: pl.DataFrame, pairs: Sequence[tuple[int, int]],
              params: StrategyParams | None = None,
              exchange_config: ExchangeConfig | None = None, *, symbol: str = "BTC/USDT",
              tick_size: float | None = None, lot_size: float | None = None) -> list[SweepRun]:
    """Bars-only SmaCross over ``bars`` (``bar_start``, ``bar_end``, open, high, low, close)
    for every ``(fast, slow)`` pair (bars, fast < slow); everything else (risk, fees,
    ``execution.bars_path``) from ``params`` and ``exchange_config``. Raises ConfigError for
    a bad pair, DataError for no bars."""
    if bars.height == 0:
        raise DataError("sweep: no bars")
    checked = [_pair(p) for p in pairs]
    base = (params or StrategyParams()).model_copy(deep=True)
    base.name = "sma_cross"
    tester = Backtester(base, exchange_config, symbol=symbol, tick_size=tick_size,
                        lot_size=lot_size)
    if not bars["bar_start"].is_sorted():
        bars = bars.sort("bar_start")
    t_ts, t_px, t_qty = pseudo_trades(bars, base.execution.bars_path, tester.tick_size)
    if np.any(np.diff(t_ts) < 0) or np.any(t_px <= 0):
        raise DataError("sweep: bars overlap in time or have prices <= 0 (expected bars in "
                        "time order, each ending before the next starts)")
    core_params = tester.core_params(continuous=True)
    # one mark over the whole span: marks are outputs only (no fill depends on them)
    core_params[K.P_EQ_INTERVAL_US] = float(int(t_ts[-1] - t_ts[0]) + 1)
    close = bars["close"]
    means: dict[int, np.ndarray] = {}

    def mean(n: int) -> np.ndarray:
        if n not in means:
            means[n] = sma(close, n)
        return means[n]

    out = []
    for fast, slow in checked:
        raw = cross_signals(bars["bar_end"], cross_actions(mean(fast), mean(slow)))
        signals = with_signal_ids(check_signals(raw, type(tester.strategy).__name__))
        out.append(_run(tester, core_params, signals, (t_ts, t_px, t_qty), fast, slow))
    return out


def summary(runs: Sequence[SweepRun]) -> pl.DataFrame:
    """One row per pair: fast, slow, trades, wins, net pnl of closed trades, fees, final
    equity, open positions (money in quote currency)."""
    return pl.DataFrame({
        "fast": [r.fast for r in runs], "slow": [r.slow for r in runs],
        "trades": [r.trades.height for r in runs],
        "wins": [int((r.trades["pnl"] > 0).sum()) for r in runs],
        "pnl": [float(r.trades["pnl"].sum()) for r in runs],
        "fees": [float(r.trades["fees"].sum()) for r in runs],
        "final_equity": [r.final_equity for r in runs],
        "open_positions": [r.open_positions for r in runs],
    }, schema_overrides={"fast": pl.Int64, "slow": pl.Int64, "trades": pl.Int64,
                         "wins": pl.Int64, "open_positions": pl.Int64})


def _pair(pair: tuple[int, int]) -> tuple[int, int]:
    try:
        fast, slow = (int(x) for x in pair)
        p = SmaCrossParams(fast=fast, slow=slow)
    except (TypeError, ValueError, ValidationError) as exc:
        msg = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise ConfigError(f"sweep pair {pair!r}: expected (fast, slow) bars with "
                          f"1 <= fast < slow ({msg.removeprefix('Value error, ')})") from None
    return p.fast, p.slow


def _run(tester: Backtester, core_params: np.ndarray, signals: pl.DataFrame,
         trades: tuple[np.ndarray, np.ndarray, np.ndarray], fast: int, slow: int) -> SweepRun:
    t_ts, t_px, t_qty = trades
    core = ExecutionCore(core_params, depth=0, symbol=tester.symbol, marks=4,
                         orders=2 * signals.height + 16)
    core.submit(tester.submissions(signals))
    core.trades_ticks(t_ts, t_px, t_qty, checked=True)  # checked once in sma_sweep
    out = core.outputs()
    s_i = out["slots_i"]
    open_mask = s_i[:, K.S_ACTIVE] == 1
    last_px = float(t_px[-1]) * tester.tick_size
    final = float(core.state.fv[K.V_CASH]) + float(
        np.sum(s_i[open_mask, K.S_SIDE] * s_i[open_mask, K.S_QTY])) * tester.lot_size * last_px
    frame = _trades_frame(out["trades_i"], out["trades_f"], signals, tester.tick_size,
                          tester.lot_size)
    return SweepRun(fast, slow, frame, final, int(open_mask.sum()))
