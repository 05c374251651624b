"""Bars-only mode against backtesting.py (an independent engine) on a moving-average cross.

Same bars, same assumptions: long only, decided on a bar's close, filled at the next bar's
open, 0.1 % commission per side, half the equity per entry in 1e-8 BTC units
(FractionalBacktest's satoshis = our lot), no slippage, open positions left open at the end.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.config import ExchangeConfig, FeeSchedule
from botclave_cli.strategy.params import StrategyParams
from botclave_cli.strategy.strategy import SmaCross

peer = pytest.importorskip("tests.peers.backtesting_py", reason="backtesting.py (test extra) "
                           "is not installed")


def make_bars(seed: int, n: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(42_000 * np.exp(np.cumsum(rng.normal(0, 0.002, n))), 2)
    open_ = np.round(np.concatenate([[42_000.0], close[:-1]]) + rng.normal(0, 5, n), 2)
    high = np.round(np.maximum(open_, close) + rng.exponential(20, n), 2)
    low = np.round(np.minimum(open_, close) - rng.exponential(20, n), 2)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    bar_start = [start + dt.timedelta(minutes=i) for i in range(n)]
    return pl.DataFrame({
        "bar_start": bar_start, "bar_end": [t + dt.timedelta(minutes=1) for t in bar_start],
        "open": open_, "high": high, "low": low, "close": close,
        "volume": np.full(n, 10.0), "buy_volume": None, "sell_volume": None,
        "delta": None, "delta_pct": None, "trade_count": None,
    })


def ours(bars: pl.DataFrame, fast: int, slow: int, strategy: type[SmaCross] = SmaCross):
    p = StrategyParams(name="sma_cross")
    p.sma_cross.fast, p.sma_cross.slow = fast, slow
    p.risk.sizing, p.risk.fraction = "equity_fraction", 0.5
    p.risk.cooldown_losses = 0
    p.risk.max_daily_loss = p.risk.max_drawdown = 1.0
    p.execution.latency_ms = 0
    p.execution.slippage_bps = 0
    ex = ExchangeConfig(fees=FeeSchedule(maker=0.001, taker=0.001))
    return Backtester(p, ex, tick_size=0.01, lot_size=1e-8, strategy=strategy(p)).run(
        bars=bars, bars_only=True)


class SmaCrossReversing(SmaCross):
    """Ours, long and short: the down-cross is a short entry (the long is closed first)."""

    def signals(self, bars: pl.DataFrame) -> pl.DataFrame:
        return super().signals(bars).with_columns(
            pl.when(pl.col("action") == 0).then(-1).otherwise(pl.col("action"))
            .cast(pl.Int8).alias("action"))


def peer_reversing(bars: pl.DataFrame, fast: int, slow: int):
    """backtesting.py, same rule long and short: ``position.close()`` then buy/sell half the
    equity (the close is processed first, the new order sized from the margin left after it)."""
    from backtesting.lib import FractionalBacktest, crossover

    class Reversing(peer.SmaCross):
        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.position.close()
                self.buy(size=0.5)
            elif crossover(self.slow, self.fast):
                self.position.close()
                self.sell(size=0.5)

    df = peer.sma_cross_backtest(bars)._data  # the peer's own frame of our bars
    bt = FractionalBacktest(df, Reversing, cash=10_000, commission=0.001, fractional_unit=1e-8)
    return peer.run_sma_cross(bt, fast, slow)


@pytest.mark.parametrize("seed, fast, slow", [(1, 5, 20), (2, 10, 30), (3, 3, 12)])
def test_same_trades_and_final_equity_as_backtesting_py(seed: int, fast: int, slow: int) -> None:
    bars = make_bars(seed, 1500)
    check_same(ours(bars, fast, slow), peer.run_sma_cross(peer.sma_cross_backtest(bars), fast,
                                                          slow))


@pytest.mark.parametrize("seed, fast, slow", [(4, 5, 20), (5, 3, 12)])
def test_reversals_same_trades_and_final_equity_as_backtesting_py(seed: int, fast: int,
                                                                   slow: int) -> None:
    # every cross reverses: the closed position and the new one share a bar open, and the new
    # one is sized from the equity after the close, in both engines
    bars = make_bars(seed, 1500)
    mine = ours(bars, fast, slow, SmaCrossReversing)
    check_same(mine, peer_reversing(bars, fast, slow))
    sides = mine.trades["side"].to_list()
    assert set(sides) == {"long", "short"}
    assert all(a != b for a, b in zip(sides, sides[1:], strict=False))
    assert (mine.trades["exit_ts"][:-1] == mine.trades["entry_ts"][1:]).all()
    assert mine.orders.filter(pl.col("status") == "rejected").height == 0


def check_same(mine, stats) -> None:
    ref = stats["_trades"]
    closed = ref[ref["ExitTime"].notna()] if "ExitTime" in ref else ref
    t = mine.trades
    assert t.height == len(closed) and t.height > 10
    assert t["entry_ts"].dt.replace_time_zone(None).to_list() == list(closed["EntryTime"])
    assert t["exit_ts"].dt.replace_time_zone(None).to_list() == list(closed["ExitTime"])
    signed = np.where(t["side"].to_numpy() == "short", -1.0, 1.0) * t["qty"].to_numpy()
    np.testing.assert_allclose(signed, closed["Size"].to_numpy(), rtol=1e-12)  # short < 0
    np.testing.assert_allclose(t["entry_price"].to_numpy(), closed["EntryPrice"].to_numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(t["exit_price"].to_numpy(), closed["ExitPrice"].to_numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(t["pnl"].to_numpy(), closed["PnL"].to_numpy(), rtol=1e-9,
                               atol=1e-9)
    assert mine.final_equity == pytest.approx(stats["Equity Final [$]"], rel=1e-9)
