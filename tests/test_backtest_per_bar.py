"""The per-bar driver: a BarStrategy decides each closing bar and sees the core's state.

Checked against independent sources: a strategy that ignores the account gives the bytes of the
same signals fed at once (the vectorised driver); the account a strategy is shown at a bar's end
equals the equity mark the core records at that instant (equity, net position) and the fills
the result lists before it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.config import ExchangeConfig
from botclave_cli.strategy.base import BarStrategy, Strategy, TradeSignal
from botclave_cli.strategy.params import StrategyParams
from tests.test_backtest_run import random_trades


class Breakout(BarStrategy):
    """Ignores the account: long on a 20-bar high."""

    warmup_bars = 20

    def on_bar(self, history):
        last = history.row(-1, named=True)
        if last["close"] > history["high"][-21:-1].max():
            return TradeSignal("long", stop_price=last["close"] - 20.0,
                               target_price=last["close"] + 40.0, setup="breakout")
        return None


class Replayed(Strategy):
    """Vectorised: returns signals decided elsewhere."""

    given: pl.DataFrame

    def signals(self, bars):
        return self.given


class FlatOnly(BarStrategy):
    """Reads its state: enters only when flat and nothing is working, leaves after 3 bars;
    every view it was shown is kept."""

    def __init__(self, params, tick_size=0.01):
        super().__init__(params, tick_size)
        self.seen: list[tuple[object, object]] = []

    def on_bar(self, history):
        last = history.row(-1, named=True)
        acc = self.account
        self.seen.append((last["bar_end"], acc))
        if acc.positions:
            opened = acc.positions[0].entry_ts_us
            if int(last["bar_end"].timestamp() * 1e6) - opened >= 3 * 60_000_000:
                return TradeSignal("exit", setup="time_up")
            return None
        if not acc.orders and len(history) % 7 == 0:
            return TradeSignal("long", order_type="limit", limit_price=last["close"] - 1.0,
                               stop_price=last["close"] - 30.0, expiry_bars=2, setup="dip")
        return None


def _tester(strategy=None) -> Backtester:
    p = StrategyParams()
    p.exit.on_opposite_signal = False
    return Backtester(p, ExchangeConfig(), tick_size=0.01, lot_size=1e-5, strategy=strategy)


def test_a_strategy_that_ignores_the_account_gives_the_bytes_of_its_signals_fed_at_once():
    trades = random_trades()
    params = StrategyParams()
    per_bar = Backtester(params, ExchangeConfig(), tick_size=0.01, lot_size=1e-5,
                         strategy=Breakout(params)).run(trades)
    assert per_bar.trades.height > 3
    replayed = Replayed(params)
    replayed.given = per_bar.signals.drop("signal_id")
    whole = Backtester(params, ExchangeConfig(), tick_size=0.01, lot_size=1e-5,
                       strategy=replayed).run(trades)
    for name in ("signals", "orders", "fills", "trades", "equity"):
        assert getattr(per_bar, name).equals(getattr(whole, name)), name
    assert per_bar.final_equity == whole.final_equity


def test_the_account_shows_positions_orders_equity_and_fills_as_of_the_bar_end():
    strategy = FlatOnly(StrategyParams())
    res = _tester(strategy).run(random_trades())
    assert res.trades.height >= 3
    assert set(res.trades["exit_reason"]) >= {"signal_exit"}
    # it saw its own position: never two at once, and every trade lasted >= 3 bars or stopped
    entries, exits = res.trades["entry_ts"].to_list(), res.trades["exit_ts"].to_list()
    assert all(nxt >= prev for prev, nxt in zip(exits, entries[1:], strict=False))
    marks = dict(zip(res.equity["ts"].to_list(), zip(res.equity["equity"].to_list(),
                                                     res.equity["position_qty"].to_list(),
                                                     strict=True), strict=True))
    fills_ts = res.fills["ts"].dt.epoch("us").to_numpy()
    saw_position = saw_order = 0
    for bar_end, acc in strategy.seen:
        eq, pos = marks[bar_end]
        assert acc.equity == pytest.approx(eq, rel=0, abs=1e-9)
        assert acc.position_qty == pytest.approx(pos, abs=1e-12)
        end_us = int(bar_end.timestamp() * 1e6)
        n_before = int(np.searchsorted(fills_ts, end_us, side="left"))
        assert len(acc.last_fills) == min(n_before, 20)
        if acc.last_fills:
            assert acc.last_fills[-1].price == res.fills["price"][n_before - 1]
        saw_position += bool(acc.positions)
        for order in acc.orders:
            saw_order += 1
            assert order.arrival_ts_us < end_us
            if order.purpose == "entry":
                assert order.type == "limit" and order.limit_price is not None
    assert saw_position and saw_order
    with pytest.raises(dataclasses.FrozenInstanceError):
        strategy.seen[0][1].equity = 0.0


def test_a_bar_strategy_without_a_driver_says_how_to_run_it():
    from botclave_cli.strategy.base import StrategyError

    with pytest.raises(StrategyError, match="decides bar by bar"):
        Breakout(StrategyParams()).signals(pl.DataFrame())
