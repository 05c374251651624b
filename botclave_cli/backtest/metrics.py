"""Performance metrics: one pure function over an equity curve and a trade list.

The same call serves backtests, walk-forward folds and Monte Carlo runs:
``MetricsCalculator().compute(equity, trades, periods_per_year=...) -> dict``.

Definitions (returns are the equity curve's simple period returns ``e[t] / e[t-1] - 1``):
- ``total_return``: last / first equity - 1 (first = ``initial_equity`` when given).
- ``annual_return``: ``(1 + total_return) ** (periods_per_year / n_returns) - 1`` (CAGR over the
  curve's own length).
- ``volatility``: sample std (ddof 1) of returns x sqrt(periods_per_year).
- ``sharpe``: mean / sample std x sqrt(periods_per_year), risk-free 0 (quantstats ``sharpe``).
- ``sortino``: mean / sqrt(sum(r^2 for r < 0) / n) x sqrt(periods_per_year) (quantstats).
- ``max_drawdown``: min over t of e[t] / max(e[..t]) - 1 (<= 0); ``max_drawdown_duration_s`` /
  ``_periods``: longest stretch below a previous peak (to recovery or the end).
- ``calmar``: annual_return / |max_drawdown|.
- trade stats over closed trades' net ``pnl``: ``win_rate`` (pnl > 0), ``profit_factor`` (gross
  wins / |gross losses|), ``payoff_ratio`` (mean win / |mean loss|), ``expectancy`` (mean pnl),
  ``avg_r`` (mean R multiple where the trade had a stop), ``longest_losing_streak``.
- ``exposure``: share of equity marks with an open position (when ``position_qty`` is given).
Undefined values (no trades, zero variance) are None.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
from numba import njit


def _f(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


class MetricsCalculator:
    """Stateless; ``compute`` is the whole API."""

    def compute(self, equity: pl.DataFrame, trades: pl.DataFrame | None = None, *,
                periods_per_year: float, initial_equity: float | None = None) -> dict[str, Any]:
        e = equity["equity"].to_numpy().astype(np.float64)
        if initial_equity is not None and (len(e) == 0 or e[0] != initial_equity):
            e = np.concatenate([[initial_equity], e])
        out: dict[str, Any] = {}
        out.update(self.returns_stats(e, periods_per_year))
        out.update(self.drawdown_stats(e, equity["ts"] if "ts" in equity.columns else None))
        dd = out["max_drawdown"]
        ar = out["annual_return"]
        out["calmar"] = _f(ar / abs(dd)) if ar is not None and dd else None
        if "position_qty" in equity.columns and equity.height:
            out["exposure"] = float(np.mean(equity["position_qty"].to_numpy() != 0))
        else:
            out["exposure"] = None
        out.update(self.trade_stats(trades))
        return out

    @staticmethod
    def returns_stats(e: np.ndarray, periods_per_year: float) -> dict[str, Any]:
        if len(e) < 2:
            return {"start_equity": _f(e[0]) if len(e) else None,
                    "final_equity": _f(e[-1]) if len(e) else None, "total_return": 0.0,
                    "annual_return": None, "volatility": None, "sharpe": None, "sortino": None,
                    "periods": 0, "periods_per_year": periods_per_year}
        r = e[1:] / e[:-1] - 1.0
        n = len(r)
        total = e[-1] / e[0] - 1.0
        ann = math.sqrt(periods_per_year)
        std = float(np.std(r, ddof=1)) if n > 1 else float("nan")
        mean = float(np.mean(r))
        downside = math.sqrt(float(np.sum(r[r < 0] ** 2)) / n)
        growth = float(1.0 + total)
        try:
            annual = growth ** (periods_per_year / n) - 1.0 if growth > 0 else -1.0
        except OverflowError:
            annual = float("inf")
        return {
            "start_equity": float(e[0]), "final_equity": float(e[-1]),
            "total_return": float(total),
            "annual_return": _f(annual),
            "volatility": _f(std * ann),
            "sharpe": _f(mean / std * ann) if std > 0 else None,
            "sortino": _f(mean / downside * ann) if downside > 0 else None,
            "periods": n, "periods_per_year": periods_per_year,
        }

    @staticmethod
    def drawdown_stats(e: np.ndarray, ts: pl.Series | None) -> dict[str, Any]:
        if len(e) == 0:
            return {"max_drawdown": 0.0, "max_drawdown_duration_periods": 0,
                    "max_drawdown_duration_s": 0.0}
        max_dd, longest, start_of_longest = _drawdown(np.ascontiguousarray(e, np.float64))
        seconds = 0.0
        if ts is not None and longest and len(ts) >= len(e) - 1:
            us = ts.dt.epoch("us").to_numpy()
            offset = len(e) - len(us)  # initial equity prepended without a time
            lo = max(start_of_longest - 1 - offset, 0)
            hi = min(start_of_longest + longest - offset, len(us) - 1)
            seconds = float(us[hi] - us[lo]) / 1e6
        return {"max_drawdown": float(max_dd), "max_drawdown_duration_periods": int(longest),
                "max_drawdown_duration_s": seconds}

    @staticmethod
    def trade_stats(trades: pl.DataFrame | None) -> dict[str, Any]:
        if trades is None or trades.height == 0:
            return {"trades": 0, "long_trades": 0, "short_trades": 0, "win_rate": None,
                    "profit_factor": None, "payoff_ratio": None, "expectancy": None,
                    "avg_win": None, "avg_loss": None, "avg_r": None, "best_trade": None,
                    "worst_trade": None, "longest_losing_streak": 0, "fees": 0.0}
        pnl = trades["pnl"].to_numpy().astype(np.float64)
        wins, losses = pnl[pnl > 0], pnl[pnl < 0]
        streak = best = 0
        for x in pnl:
            streak = streak + 1 if x < 0 else 0
            best = max(best, streak)
        r = trades["r_multiple"].drop_nulls().to_numpy() if "r_multiple" in trades.columns \
            else np.zeros(0)
        side = trades["side"] if "side" in trades.columns else pl.Series([], dtype=pl.String)
        avg_win = float(wins.mean()) if len(wins) else None
        avg_loss = float(losses.mean()) if len(losses) else None
        return {
            "trades": int(len(pnl)),
            "long_trades": int((side == "long").sum()),
            "short_trades": int((side == "short").sum()),
            "win_rate": float(len(wins) / len(pnl)),
            "profit_factor": _f(wins.sum() / -losses.sum()) if len(losses) else None,
            "payoff_ratio": _f(avg_win / -avg_loss) if avg_win is not None and avg_loss else None,
            "expectancy": float(pnl.mean()),
            "avg_win": avg_win, "avg_loss": avg_loss,
            "avg_r": float(r.mean()) if len(r) else None,
            "best_trade": float(pnl.max()), "worst_trade": float(pnl.min()),
            "longest_losing_streak": int(best),
            "fees": float(trades["fees"].sum()) if "fees" in trades.columns else None,
        }


@njit(cache=True)
def _drawdown(e: np.ndarray) -> tuple[float, int, int]:  # pragma: no cover - compiled
    """(min of e / running max - 1, length and start of the first longest run below a previous
    peak) in one pass; the same arithmetic as ``e / np.maximum.accumulate(e) - 1``."""
    peak = e[0]
    worst = e[0] / peak - 1.0
    longest = start_of_longest = run = run_start = 0
    for i in range(e.shape[0]):
        if e[i] > peak:
            peak = e[i]
        dd = e[i] / peak - 1.0
        if dd < worst:
            worst = dd
        if dd < 0:
            if run == 0:
                run_start = i
            run += 1
            if run > longest:
                longest, start_of_longest = run, run_start
        else:
            run = 0
    return worst, longest, start_of_longest
