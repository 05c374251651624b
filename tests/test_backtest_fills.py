"""Hand-built scenarios with fills, fees, slippage and PnL worked out by hand (in comments)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.config import ExchangeConfig, FeeSchedule
from botclave_cli.strategy.base import SIGNAL_SCHEMA, Strategy
from botclave_cli.strategy.params import StrategyParams

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def trades(rows: list[tuple[float, float, float]]) -> pl.DataFrame:
    """(seconds after T0, price, qty); the side alternates (it does not matter for fills)."""
    return pl.DataFrame({
        "ts": [at(s) for s, _, _ in rows], "price": [p for _, p, _ in rows],
        "qty": [q for _, _, q in rows], "side": ["buy" if i % 2 else "sell"
                                                for i in range(len(rows))],
    }, schema={"ts": pl.Datetime("us", "UTC"), "price": pl.Float64, "qty": pl.Float64,
               "side": pl.String})


class Fixed(Strategy):
    """Emits the signals it was given, whatever the bars."""

    def __init__(self, params: StrategyParams, rows: list[dict]) -> None:
        super().__init__(params)
        self.rows = rows

    def signals(self, bars: pl.DataFrame) -> pl.DataFrame:
        full = [{c: r.get(c) for c in SIGNAL_SCHEMA} for r in self.rows]
        return pl.DataFrame(full, schema=SIGNAL_SCHEMA, orient="row")


def make_tester(signals: list[dict], *, maker: float = 0.0, taker: float = 0.0,
                **sets) -> Backtester:
    params = StrategyParams()
    params.risk.cooldown_losses = 0
    params.execution.latency_ms = 0
    params.execution.slippage_bps = 0
    for key, value in sets.items():
        section, name = key.split("__")
        setattr(getattr(params, section), name, value)
    ex = ExchangeConfig(fees=FeeSchedule(maker=maker, taker=taker))
    return Backtester(params, ex, symbol="BTC/USDT", tick_size=0.01, lot_size=0.001,
                      strategy=Fixed(params, signals))


def sig(seconds: float, action: int, **kw) -> dict:
    return {"ts": at(seconds), "action": action, "order_type": "market", "setup": "test", **kw}


def test_market_entry_waits_for_latency_and_takes_next_trades_prices() -> None:
    # decided at 60 s, reaches the exchange 500 ms later: the 60.2 s trade is too early
    bt = make_tester([sig(60, 1, stop_price=99.0)], taker=0.001, execution__latency_ms=500,
                execution__slippage_bps=10.0)
    res = bt.run(trades([(10, 100.0, 1), (30, 100.0, 1), (60.2, 100.5, 5), (60.7, 101.0, 0.3),
                         (61.0, 101.5, 100)]))
    f = res.fills
    assert f["ts"].to_list() == [at(60.7), at(61.0)]
    # fill 1: 101.00 + 10 bps = 101.101; size at the first fill = 10000 x 1% / (101.101 - 99)
    # = 47.596 BTC (rounded down to the 0.001 lot); the trade holds only 0.3 -> partial
    # fill 2: the rest, 47.296, at 101.50 x 1.001 = 101.6015
    assert f["price"].to_list() == pytest.approx([101.101, 101.6015], abs=1e-9)
    assert f["qty"].to_list() == pytest.approx([0.3, 47.296], abs=1e-12)
    assert f["fee"].to_list() == pytest.approx([101.101 * 0.3 * 0.001,
                                                101.6015 * 47.296 * 0.001], rel=1e-12)
    assert f["slippage"].to_list() == pytest.approx([0.101 * 0.3, 0.1015 * 47.296], rel=1e-9)
    assert f["liquidity"].to_list() == ["taker", "taker"]
    entry = res.orders.filter(pl.col("purpose") == "entry").row(0, named=True)
    assert entry["status"] == "filled" and entry["arrival_ts"] == at(60.5)
    assert entry["qty"] == pytest.approx(47.596)
    # still open at the end: marked at the last price 101.50
    cost = 101.101 * 0.3 + 101.6015 * 47.296
    fees = (101.101 * 0.3 + 101.6015 * 47.296) * 0.001
    assert res.open_positions == 1 and res.trades.height == 0
    pos = res.positions[0]
    assert (pos.side, pos.stop_price, pos.entry_ts) == ("long", 99.0, at(60.7))
    assert pos.qty == pytest.approx(47.596)
    assert pos.entry_price == pytest.approx((101.101 * 0.3 + 101.6015 * 47.296) / 47.596)
    assert res.final_equity == pytest.approx(10_000 - cost - fees + 47.596 * 101.5, rel=1e-12)


@pytest.mark.parametrize("mode, fill_at", [("through", 60.3), ("touch", 60.2)])
def test_limit_fills_only_when_price_trades_through(mode: str, fill_at: float) -> None:
    bt = make_tester([sig(60, 1, order_type="limit", limit_price=100.0, stop_price=99.0)],
                maker=0.0002, taker=0.001, execution__limit_fill=mode, risk__per_trade=0.001)
    res = bt.run(trades([(1, 100.3, 1), (60.1, 100.2, 1), (60.2, 100.0, 1), (60.3, 99.99, 0.5),
                         (60.4, 99.98, 50)]))
    f = res.fills
    # size: 10000 x 0.1% / (100.00 - 99.00) = 10 BTC, filled AT the limit as a maker
    assert f["ts"][0] == at(fill_at)
    assert set(f["price"].to_list()) == {100.0}
    assert f["liquidity"].unique().to_list() == ["maker"]
    assert f["qty"].sum() == pytest.approx(10.0)
    expected_qty = [0.5, 9.5] if mode == "through" else [1.0, 0.5, 8.5]
    assert f["qty"].to_list() == pytest.approx(expected_qty)
    assert f["fee"].sum() == pytest.approx(100.0 * 10 * 0.0002, rel=1e-12)


@pytest.mark.parametrize("stop_first", [False, True])
def test_stop_and_target_in_one_bar_resolved_by_trade_order(stop_first: bool) -> None:
    # entry 50 BTC at 100.00 (risk 0.5% of 10000 over a 1.00 stop); SL 99.00, TP 102.00.
    # The next bar [120 s, 180 s) has the same OHLC either way; only the trade order differs.
    inside = [(130, 98.9, 100), (140, 102.5, 100)] if stop_first else \
        [(130, 102.01, 100), (140, 98.5, 100)]
    bt = make_tester([sig(60, 1, stop_price=99.0, target_price=102.0)], risk__per_trade=0.005)
    res = bt.run(trades([(0, 100.0, 1), (60, 100.0, 100), (121, 100.0, 1), *inside,
                         (179, 100.0, 1)]))
    t = res.trades.row(0, named=True)
    assert res.trades.height == 1 and t["qty"] == pytest.approx(50.0)
    assert t["entry_price"] == pytest.approx(100.0)
    if stop_first:
        # the stop triggers on the 98.90 trade and sells at that trade's price
        assert t["exit_reason"] == "stop_loss" and t["exit_ts"] == at(130)
        assert t["exit_price"] == pytest.approx(98.9)
        assert t["pnl"] == pytest.approx(50 * (98.9 - 100.0))
        assert t["r_multiple"] == pytest.approx(-1.1)
    else:
        # the target is a resting limit: the 102.01 print trades through it, fill at 102.00
        assert t["exit_reason"] == "take_profit" and t["exit_ts"] == at(130)
        assert t["exit_price"] == pytest.approx(102.0)
        assert t["pnl"] == pytest.approx(100.0)
        assert t["r_multiple"] == pytest.approx(2.0)
    tp = res.orders.filter(pl.col("purpose") == "take_profit").row(0, named=True)
    assert tp["status"] == ("cancelled" if stop_first else "filled")
    assert res.trade_list()[0].exit_reason == t["exit_reason"]


def test_partial_fills_take_a_share_of_each_trade() -> None:
    # equity_fraction 0.5 at 125.00, no fees: 5000 / 125 = 40 BTC; participation 50 %
    bt = make_tester([sig(60, 1)], risk__sizing="equity_fraction", risk__fraction=0.5,
                     execution__participation=0.5)
    res = bt.run(trades([(0, 125.0, 1), (61, 125.0, 20), (62, 125.1, 40), (63, 125.2, 100)]))
    f = res.fills
    assert f["qty"].to_list() == pytest.approx([10.0, 20.0, 10.0])
    assert f["price"].to_list() == pytest.approx([125.0, 125.1, 125.2])
    assert res.orders["status"][0] == "filled"
    # 125 x 10 + 125.1 x 20 + 125.2 x 10 = 5004 for 40 BTC; marked at 125.20 -> 5008
    assert res.final_equity == pytest.approx(10_000 - 5004.0 + 40 * 125.2)


def test_daily_loss_halt_closes_and_refuses_entries_until_the_next_day() -> None:
    day2 = 86_400
    bt = make_tester([sig(60, 1), sig(600, 1), sig(day2 + 60, 1)],
                     risk__sizing="equity_fraction", risk__fraction=1.0,
                     risk__max_daily_loss=0.02)
    res = bt.run(trades([(0, 125.0, 1), (61, 125.0, 1000), (120, 124.0, 1), (180, 122.5, 1),
                         (181, 122.4, 1000), (601, 122.0, 1000), (day2 + 61, 98.0, 1000),
                         (day2 + 62, 98.5, 1)]))
    # 80 BTC at 125.00; at 122.50 equity is 9800 <= 10000 x 98 %: everything is closed with a
    # market order on the next trade, 122.40 -> pnl 80 x -2.60 = -208
    t = res.trades.row(0, named=True)
    assert t["qty"] == pytest.approx(80.0)
    assert t["exit_reason"] == "halt" and t["exit_price"] == pytest.approx(122.4)
    assert t["pnl"] == pytest.approx(-208.0)
    entries = res.orders.filter(pl.col("purpose") == "entry")
    assert entries["status"].to_list() == ["filled", "rejected", "filled"]
    assert entries["reject_reason"].to_list() == ["", "halted_day", ""]
    # next day: the largest lot multiple affordable with 9792 at 98.00 is 99.918 BTC
    qty = res.fills["qty"][-1]
    assert qty == pytest.approx(99.918)
    assert qty * 98.0 <= 9792.0 < (qty + 0.001) * 98.0
    assert res.final_equity == pytest.approx(9792.0 + qty * 0.5)


def test_cooldown_and_max_concurrent_are_enforced_by_the_engine() -> None:
    bt = make_tester([sig(60, 1, stop_price=99.0), sig(120, 1, stop_price=99.0),
                 sig(300, 1, stop_price=98.0), sig(500, 1, stop_price=98.0)],
                risk__per_trade=0.001, risk__cooldown_losses=1, risk__cooldown_minutes=5)
    res = bt.run(trades([(0, 100.0, 1), (61, 100.0, 100), (121, 100.0, 1), (200, 98.9, 100),
                         (301, 99.0, 100), (600, 99.0, 1)]))
    entries = res.orders.filter(pl.col("purpose") == "entry")
    # 2nd: one position is open already; 3rd: after the losing stop at 200 s the cooldown runs
    # to 500 s; 4th arrives at 500 s: accepted
    assert entries["reject_reason"].to_list() == ["", "max_concurrent", "cooldown", ""]
    assert res.trades["exit_reason"].to_list() == ["stop_loss"]


def test_trailing_stop_follows_the_best_price() -> None:
    # long 10 BTC at 100.00 (risk 0.1% over a 1.00 stop), trailing 1.00 behind the best price:
    # best 102.00 -> stop 101.00; the 100.90 print triggers it and sells at that price
    bt = make_tester([sig(60, 1, stop_price=99.0, trail_dist=1.0)], risk__per_trade=0.001)
    res = bt.run(trades([(0, 100.0, 1), (60, 100.0, 100), (62, 101.5, 1), (63, 102.0, 1),
                         (64, 101.2, 1), (65, 100.9, 100), (70, 100.0, 1)]))
    t = res.trades.row(0, named=True)
    assert t["exit_reason"] == "trailing_stop" and t["exit_ts"] == at(65)
    assert t["exit_price"] == pytest.approx(100.9) and t["pnl"] == pytest.approx(9.0)
    assert t["mfe"] == pytest.approx(20.0) and t["mae"] == pytest.approx(0.0)


def test_time_stop_closes_after_the_holding_bars() -> None:
    bt = make_tester([sig(60, 1, stop_price=99.0, hold_bars=2)], risk__per_trade=0.001)
    res = bt.run(trades([(0, 100.0, 1), (60, 100.0, 100), (120, 100.5, 1), (179.9, 100.6, 1),
                         (180, 100.7, 100), (200, 100.0, 1)]))
    t = res.trades.row(0, named=True)
    # entered at 60 s, 2 one-minute bars -> the first trade at or after 180 s closes it
    assert t["exit_reason"] == "time_stop" and t["exit_ts"] == at(180)
    assert t["pnl"] == pytest.approx(10 * 0.7)


@pytest.mark.parametrize("path, reason, exit_price", [("ohlc", "take_profit", 102.5),
                                                      ("olhc", "stop_loss", 98.0),
                                                      ("nearest", "take_profit", 102.5)])
def test_bars_only_path_assumption(path: str, reason: str, exit_price: float) -> None:
    bars = pl.DataFrame({
        "bar_start": [at(0), at(60), at(120)], "bar_end": [at(60), at(120), at(180)],
        "open": [100.0, 100.0, 101.0], "high": [100.5, 103.0, 101.5],
        "low": [99.5, 97.0, 100.5], "close": [100.0, 101.0, 101.0], "volume": [1.0] * 3,
    })
    bt = make_tester([sig(60, 1, stop_price=98.0, target_price=102.5)], risk__per_trade=0.002,
                     execution__bars_path=path)
    res = bt.run(bars=bars, bars_only=True)
    t = res.trades.row(0, named=True)
    # entry at the next bar's open (100.00), 10 BTC; the path decides which level comes first,
    # and a level crossed between two path points fills at its own price
    assert t["entry_ts"] == at(60) and t["entry_price"] == pytest.approx(100.0)
    assert t["qty"] == pytest.approx(10.0)
    assert t["exit_reason"] == reason and t["exit_price"] == pytest.approx(exit_price)


def test_funding_is_paid_by_longs_at_the_last_price() -> None:
    bt = make_tester([sig(60, 1, stop_price=99.0), sig(150, 0)], risk__per_trade=0.001)
    funding = pl.DataFrame({"ts": [at(90), at(200)], "funding_rate": [0.0001, 0.0001]},
                           schema={"ts": pl.Datetime("us", "UTC"), "funding_rate": pl.Float64})
    res = bt.run(trades([(0, 100.0, 1), (60, 100.0, 100), (80, 102.0, 1), (100, 101.0, 1),
                         (151, 101.0, 100), (210, 101.0, 1)]), funding=funding)
    t = res.trades.row(0, named=True)
    # 10 BTC held through the 90 s funding (last price 102.00): pays 10 x 102 x 0.0001 = 0.102;
    # flat at 200 s: nothing more
    assert t["funding"] == pytest.approx(0.102)
    assert t["exit_reason"] == "signal_exit"
    assert t["pnl"] == pytest.approx(10 * 1.0 - 0.102)
    assert res.final_equity == pytest.approx(10_000 + 10 - 0.102)


def test_unfilled_limit_expires_and_touch_does_not_fill_a_through_order() -> None:
    bt = make_tester([sig(60, 1, order_type="limit", limit_price=99.0, stop_price=98.0,
                          expiry_bars=2)], risk__per_trade=0.001)
    res = bt.run(trades([(0, 100.0, 1), (61, 99.5, 1), (100, 99.0, 5), (179, 99.2, 1),
                         (180, 98.5, 5), (200, 99.0, 1)]))
    # 99.00 is touched at 100 s (no fill: must trade through); the order expires at 60 + 2 bars
    # = 180 s, before the 98.50 print at 180 s could fill it
    o = res.orders.row(0, named=True)
    assert o["status"] == "expired" and o["done_ts"] == at(180) and o["filled_qty"] == 0
    assert res.fills.height == 0


def test_drawdown_halt_stops_the_whole_run() -> None:
    day2 = 86_400
    bt = make_tester([sig(60, 1), sig(day2 + 60, 1)], risk__sizing="equity_fraction",
                     risk__fraction=1.0, risk__max_daily_loss=1.0, risk__max_drawdown=0.1)
    res = bt.run(trades([(0, 125.0, 1), (61, 125.0, 1000), (120, 118.0, 1), (180, 112.5, 1),
                         (181, 112.0, 1000), (day2 + 61, 110.0, 1000)]))
    # 80 BTC at 125.00; at 112.50 equity 9000 = peak 10000 x 90 %: closed at 112.00 (-1040),
    # and no entry is accepted afterwards, not even the next day
    t = res.trades.row(0, named=True)
    assert t["exit_reason"] == "halt" and t["pnl"] == pytest.approx(-1040.0)
    entries = res.orders.filter(pl.col("purpose") == "entry")
    assert entries["reject_reason"].to_list() == ["", "halted_drawdown"]
    assert res.final_equity == pytest.approx(8960.0)
