"""MetricsCalculator against quantstats (independent implementation) and hand-worked trade stats."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest

from botclave_cli.backtest.metrics import MetricsCalculator

qs = pytest.importorskip("quantstats")


def curve(seed: int, n: int = 500) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0004, 0.01, n)
    equity = 10_000 * np.cumprod(np.concatenate([[1.0], 1 + r]))
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    ts = [start + dt.timedelta(days=i) for i in range(n + 1)]
    return pl.DataFrame({"ts": ts, "equity": equity})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_return_metrics_agree_with_quantstats(seed: int) -> None:
    eq = curve(seed)
    m = MetricsCalculator().compute(eq, None, periods_per_year=365)
    idx = pd.DatetimeIndex(eq["ts"].dt.replace_time_zone(None).to_list())
    returns = pd.Series(eq["equity"].to_numpy(), index=idx).pct_change().dropna()
    assert m["sharpe"] == pytest.approx(qs.stats.sharpe(returns, periods=365), abs=1e-9)
    assert m["sortino"] == pytest.approx(qs.stats.sortino(returns, periods=365), abs=1e-9)
    assert m["volatility"] == pytest.approx(qs.stats.volatility(returns, periods=365), abs=1e-9)
    assert m["max_drawdown"] == pytest.approx(qs.stats.max_drawdown(returns), abs=1e-9)
    assert m["total_return"] == pytest.approx(qs.stats.comp(returns), abs=1e-9)
    assert m["periods"] == 500


def test_drawdown_depth_and_duration_by_hand() -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    values = [100.0, 110.0, 99.0, 105.0, 111.0, 100.0]
    eq = pl.DataFrame({"ts": [start + dt.timedelta(hours=i) for i in range(6)], "equity": values})
    m = MetricsCalculator().compute(eq, None, periods_per_year=24 * 365)
    assert m["max_drawdown"] == pytest.approx(99 / 110 - 1)
    # below the 110 peak from hour 2 to hour 3, recovered at hour 4; below 111 at hour 5 (end)
    assert m["max_drawdown_duration_periods"] == 2
    assert m["max_drawdown_duration_s"] == pytest.approx(3 * 3600)
    assert m["total_return"] == pytest.approx(0.0)


def test_trade_statistics_by_hand() -> None:
    trades = pl.DataFrame({
        "pnl": [50.0, -20.0, -10.0, -30.0, 40.0, -5.0],
        "r_multiple": [2.5, -1.0, -0.5, None, 2.0, -0.25],
        "side": ["long", "short", "long", "long", "short", "long"],
        "fees": [1.0] * 6,
    })
    eq = pl.DataFrame({"ts": [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)], "equity": [1.0]})
    m = MetricsCalculator().compute(eq, trades, periods_per_year=365)
    assert m["trades"] == 6 and m["long_trades"] == 4 and m["short_trades"] == 2
    assert m["win_rate"] == pytest.approx(2 / 6)
    assert m["profit_factor"] == pytest.approx(90 / 65)
    assert m["payoff_ratio"] == pytest.approx(45 / 16.25)
    assert m["expectancy"] == pytest.approx(25 / 6)
    assert m["avg_r"] == pytest.approx((2.5 - 1.0 - 0.5 + 2.0 - 0.25) / 5)
    assert m["longest_losing_streak"] == 3
    assert m["fees"] == pytest.approx(6.0)


def test_exposure_and_undefined_values() -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    eq = pl.DataFrame({"ts": [start + dt.timedelta(minutes=i) for i in range(4)],
                       "equity": [100.0] * 4, "position_qty": [0.0, 1.0, 1.0, 0.0]})
    m = MetricsCalculator().compute(eq, None, periods_per_year=525_600)
    assert m["exposure"] == pytest.approx(0.5)
    assert m["sharpe"] is None and m["sortino"] is None and m["trades"] == 0
    assert m["win_rate"] is None
