"""``sma_sweep``: every pair's trades and final equity equal a single bars-only run of that
pair, byte for byte; a hand-worked cross; bad pairs are one-line config errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.backtest.sweep import sma_sweep, summary
from botclave_cli.config import ExchangeConfig, FeeSchedule
from botclave_cli.errors import ConfigError, DataError
from botclave_cli.strategy.params import SmaCrossParams, StrategyParams

EX = ExchangeConfig(fees=FeeSchedule(maker=0.001, taker=0.001))


def make_bars(n: int, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(42_000 * np.exp(np.cumsum(rng.normal(0, 0.003, n))), 2)
    open_ = np.round(np.concatenate([[42_000.0], close[:-1]]) + rng.normal(0, 5, n), 2)
    start = np.int64(1_704_067_200_000_000) + np.arange(n, dtype=np.int64) * 60_000_000

    def ts(us: np.ndarray) -> pl.Series:
        return pl.Series(us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")

    return pl.DataFrame({
        "bar_start": ts(start), "bar_end": ts(start + 60_000_000), "open": open_,
        "high": np.round(np.maximum(open_, close) + rng.exponential(20, n), 2),
        "low": np.round(np.minimum(open_, close) - rng.exponential(20, n), 2),
        "close": close, "volume": np.full(n, 10.0),
    })


def params(**risk: float) -> StrategyParams:
    p = StrategyParams(name="sma_cross")
    p.risk.sizing, p.risk.fraction = "equity_fraction", 0.5
    p.risk.cooldown_losses = 0
    p.execution.latency_ms = p.execution.slippage_bps = 0
    for k, v in risk.items():
        setattr(p.risk, k, v)
    return p


def single(bars: pl.DataFrame, p: StrategyParams, fast: int, slow: int):
    one = p.model_copy(deep=True)
    one.sma_cross = SmaCrossParams(fast=fast, slow=slow)
    return Backtester(one, EX, tick_size=0.01, lot_size=1e-8).run(bars=bars, bars_only=True)


PAIRS = [(3, 8), (5, 20), (10, 30), (2, 50), (10, 30), (1, 2), (20, 21)]


@pytest.mark.parametrize("risk,path", [
    ({}, "ohlc"),
    ({"max_drawdown": 0.03, "max_daily_loss": 0.01}, "nearest"),  # halts fire in some pairs
])
def test_each_pair_equals_its_single_run(risk: dict, path: str) -> None:
    bars = make_bars(6_000)
    p = params(**risk)
    p.execution.bars_path = path
    runs = sma_sweep(bars, PAIRS, p, EX, tick_size=0.01, lot_size=1e-8)
    assert [(r.fast, r.slow) for r in runs] == PAIRS
    assert sum(r.trades.height for r in runs) > 100
    for run in runs:
        res = single(bars, p, run.fast, run.slow)
        assert_frame_equal(run.trades, res.trades)
        assert run.final_equity == res.final_equity
        assert run.open_positions == res.open_positions
    table = summary(runs)
    assert table["trades"].to_list() == [r.trades.height for r in runs]
    assert table["final_equity"].to_list() == [r.final_equity for r in runs]


def test_halts_happen_in_the_halting_case() -> None:
    """The second identity case really exercises the risk halts (else it proves less)."""
    bars = make_bars(6_000)
    runs = sma_sweep(bars, PAIRS, params(max_drawdown=0.03, max_daily_loss=0.01), EX,
                     tick_size=0.01, lot_size=1e-8)
    reasons = set(pl.concat([r.trades for r in runs])["exit_reason"].to_list())
    assert "halt" in reasons


def test_hand_worked_cross() -> None:
    """fast 1 / slow 2 over closes 10, 9, 11, 12, 8, 9, 9.5: the close crosses its 2-bar mean
    up at bar 2 (11 > 10 after 9 < 9.5), down at bar 4 (8 < 10 after 12 > 11.5) and up again
    at bar 5 (9 > 8.5 after 8 < 10). Fills at the next bars' opens (each bar opens at the close
    before it): long at bar 3's open (11), closed at bar 5's open (8); the second long opens at
    bar 6's open (9) and stays open."""
    closes = [10.0, 9.0, 11.0, 12.0, 8.0, 9.0, 9.5]
    opens = [10.0, *closes[:-1]]
    bars = make_bars(7).with_columns(
        pl.Series("open", opens), pl.Series("close", closes),
        pl.Series("high", [max(o, c) + 0.5 for o, c in zip(opens, closes, strict=True)]),
        pl.Series("low", [min(o, c) - 0.5 for o, c in zip(opens, closes, strict=True)]))
    p = params(max_drawdown=1.0, max_daily_loss=1.0)
    (run,) = sma_sweep(bars, [(1, 2)], p, EX, tick_size=0.01, lot_size=1e-8)
    assert run.trades.height == 1
    trade = run.trades.row(0, named=True)
    assert (trade["entry_price"], trade["exit_price"]) == (pytest.approx(11.0),
                                                          pytest.approx(8.0))
    assert (trade["entry_ts"], trade["exit_ts"]) == (bars["bar_start"][3], bars["bar_start"][5])
    assert trade["exit_reason"] == "signal_exit"
    assert run.open_positions == 1
    # half the equity at 11 in whole 1e-8 lots, 0.1 % fee on each side
    assert trade["pnl"] == pytest.approx(trade["qty"] * (8.0 - 11.0) - trade["fees"])
    assert trade["fees"] == pytest.approx(trade["qty"] * (11.0 + 8.0) * 0.001)


@pytest.mark.parametrize("pair", [(30, 10), (5, 5), (0, 3), ("a", 3), (3,)])
def test_bad_pair_is_one_line(pair: tuple) -> None:
    with pytest.raises(ConfigError, match=r"^sweep pair .*1 <= fast < slow"):
        sma_sweep(make_bars(50), [pair], params(), EX, tick_size=0.01, lot_size=1e-8)


def test_no_bars() -> None:
    with pytest.raises(DataError, match="no bars"):
        sma_sweep(make_bars(5).head(0), [(1, 2)], params(), EX, tick_size=0.01, lot_size=1e-8)


def test_unsorted_bars_give_the_sorted_result() -> None:
    bars = make_bars(800)
    a = sma_sweep(bars, [(3, 9)], params(), EX, tick_size=0.01, lot_size=1e-8)[0]
    b = sma_sweep(bars.reverse(), [(3, 9)], params(), EX, tick_size=0.01, lot_size=1e-8)[0]
    assert_frame_equal(a.trades, b.trades)
    assert a.final_equity == b.final_equity
    assert dt.timedelta(0) < a.trades["exit_ts"][0] - a.trades["entry_ts"][0]
