"""The evaluator interface of the validation: what one evaluation takes and gives back.

An EVALUATOR is a picklable callable ``evaluate(params, start_us, end_us) -> EvaluationResult``
that trades the parameter set ``params`` (dotted strategy keys -> values, applied over the base
strategy config) on the bars ``[start_us, end_us)`` of a regular ``Timeline`` and returns one
fractional return per bar, the closed trades' returns and metrics. It may read bars BEFORE
``start_us`` (indicator warm-up: that is the past) but nothing at or after ``end_us``.

``run_task`` is what a worker process runs: one evaluation, reduced to an ``Outcome``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import polars as pl

from botclave_cli.backtest.metrics import MetricsCalculator
from botclave_cli.validate import overfitting as ovf
from botclave_cli.validate.splits import Window

YEAR_US = 365 * 86_400 * 1_000_000
METRIC_KEYS = ("sharpe", "sortino", "profit_factor", "return_dd", "total_return",
               "max_drawdown", "trades")


@dataclass(frozen=True)
class Timeline:
    """Regular bars ``start_us, start_us + bar_us, ...`` up to ``end_us`` (exclusive)."""

    start_us: int
    end_us: int
    bar_us: int

    @property
    def n_bars(self) -> int:
        return (self.end_us - self.start_us) // self.bar_us

    def times(self, w: Window) -> tuple[int, int]:
        """``[start_us, end_us)`` of a window (as ``splits.window_times``, without the array)."""
        return self.start_us + w.start * self.bar_us, self.start_us + w.end * self.bar_us


@dataclass(frozen=True)
class EvaluationResult:
    """One evaluation: per-bar fractional returns over the window (one per timeline bar), the
    closed trades' returns (fraction of equity, net of costs), and metrics (see METRIC_KEYS)."""

    returns: np.ndarray
    trade_returns: np.ndarray
    metrics: dict[str, float | None]  # None where a figure is undefined (no trades, no losses)


class Evaluator(Protocol):
    def __call__(self, params: dict[str, Any], start_us: int, end_us: int) -> EvaluationResult:
        ...


def evaluation_metrics(
    returns: np.ndarray, trade_returns: np.ndarray, periods_per_year: float
) -> dict[str, float | None]:
    """``MetricsCalculator``'s figures for per-bar returns and closed trades' returns, plus
    ``return_dd`` (total return / |max drawdown|). Annualised with ``periods_per_year``;
    ``max_drawdown`` is <= 0 as in MetricsCalculator; undefined values are None, except a
    profit factor or return/drawdown with gains and no loss, which is +inf (shown as null)."""
    r = np.asarray(returns, dtype=np.float64)
    equity = np.cumprod(np.concatenate([[1.0], 1.0 + r]))
    t = np.asarray(trade_returns, dtype=np.float64)
    trades = pl.DataFrame({"pnl": t}) if t.size else None
    calc = MetricsCalculator()
    out: dict[str, Any] = {**calc.returns_stats(equity, periods_per_year),
                           **calc.drawdown_stats(equity, None), **calc.trade_stats(trades)}
    total, dd = out["total_return"], out["max_drawdown"]
    # undefined because nothing was lost: rank such a set first, not last
    out["return_dd"] = total / abs(dd) if dd else (math.inf if total > 0 else None)
    if out["profit_factor"] is None and t.size and bool((t > 0).any()):
        out["profit_factor"] = math.inf
    return out


def objective_value(metrics: dict[str, Any], objective: str) -> float:
    """The objective from a metrics dict; None, NaN and missing values rank last."""
    value = metrics.get(objective)
    if value is None or not isinstance(value, int | float) or math.isnan(value):
        return -math.inf
    return float(value)


@dataclass(frozen=True)
class Outcome:
    """What a worker sends back: metrics and the per-bar Sharpe moments always, the series only
    when asked for (shipping hundreds of full series back costs more than computing them)."""

    metrics: dict[str, float | None]
    n_bars: int
    sr_per_bar: float
    skew: float
    kurtosis: float
    returns: np.ndarray = field(default_factory=lambda: np.zeros(0))
    trade_returns: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True)
class Task:
    evaluator: Evaluator
    params: dict[str, Any]
    start_us: int
    end_us: int
    keep_series: bool

    @property
    def weight(self) -> int:
        """The window's length in us: an evaluation's cost grows with the trades (bars) in its
        window, so ``--jobs auto`` weighs the work still to come by it."""
        return self.end_us - self.start_us


def run_task(task: Task) -> Outcome:
    res = task.evaluator(task.params, task.start_us, task.end_us)
    r = np.asarray(res.returns, dtype=np.float64)
    skew, kurt = ovf.moments(r)
    series = (r, np.asarray(res.trade_returns, dtype=np.float64)) if task.keep_series else ()
    return Outcome(dict(res.metrics), len(r), ovf.sharpe_per_period(r), skew, kurt, *series)
