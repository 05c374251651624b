"""Indicators on hand-made inputs: CVD and sessions, volume profile, developing POC, divergence,
absorption, liquidity voids."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botclave_cli.engine.footprint.builder import FootprintSpec, build_footprint
from botclave_cli.engine.signals.flow_events import absorption, liquidity_voids, track_revisits
from botclave_cli.engine.signals.indicators import (
    OrderFlowIndicators,
    cvd_bars,
    cvd_trades,
    delta_divergence,
    developing_poc,
    volume_profile,
)
from botclave_cli.engine.signals.order_flow_signal import to_signals
from botclave_cli.errors import UsageError

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def trades(rows) -> pl.DataFrame:
    """rows: (seconds after T0, price, qty, side)."""
    return pl.DataFrame({
        "ts": [T0 + dt.timedelta(seconds=s) for s, *_ in rows],
        "price": [float(r[1]) for r in rows], "qty": [float(r[2]) for r in rows],
        "side": [r[3] for r in rows],
    }).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def test_cvd_trades_and_resets() -> None:
    h = 3600
    df = trades([(0, 1, 2, "buy"), (h, 1, 1, "sell"), (7 * h, 1, 5, "buy"), (9 * h, 1, 1, "sell"),
                 (25 * h, 1, 3, "sell")])
    assert cvd_trades(df)["cvd"].to_list() == [2, 1, 6, 5, 2]
    assert cvd_trades(df, "daily")["cvd"].to_list() == [2, 1, 6, 5, -3]
    # sessions start 08:00 and 20:00: [00:00-08:00) belongs to the 20:00 session of the day
    # before; 09:00 opens a new one; day 2 01:00 is still in day 1's 20:00 session
    assert cvd_trades(df, ["08:00", "20:00"])["cvd"].to_list() == [2, 1, 6, -1, -3]
    with pytest.raises(UsageError):
        cvd_trades(df, ["25:00"])


def test_cvd_bars_with_intrabar_extremes() -> None:
    df = trades([(1, 10, 2, "buy"), (2, 10, 3, "sell"), (61, 10, 4, "buy"), (62, 10, 1, "sell")])
    bars = cvd_bars(build_footprint(df, FootprintSpec(bar="1m", tick_size=1.0)).bars)
    assert bars["cvd"].to_list() == [-1, 2]
    # bar 1 runs -1 -> 3 -> 2: CVD high 3, low 2 (the running delta after each trade)
    assert bars["cvd_high"].to_list() == [2, 3] and bars["cvd_low"].to_list() == [-1, 2]


def test_volume_profile_by_hand() -> None:
    # rows (price: volume): 1:1 2:6 3:2 4:1 5:1 6:7 7:2; 8 and 9 empty; 10:4
    vols = {1: 1, 2: 6, 3: 2, 4: 1, 5: 1, 6: 7, 7: 2, 10: 4}
    levels = pl.DataFrame({"price": [float(p) for p in vols], "bid_volume": [0.0] * len(vols),
                           "ask_volume": [float(v) for v in vols.values()]})
    vp = volume_profile(levels, 1.0, smooth=1, min_prominence=0.2, close=6.0)
    assert vp.levels["price"].to_list() == [float(p) for p in range(1, 11)]
    assert vp.levels["volume"].to_list() == [1, 6, 2, 1, 1, 7, 2, 0, 0, 4]
    # total 24, target 16.8: POC 6 (7); above 7+8 = 2 vs below 5+4 = 2 -> both (11);
    # then above 9+10 = 4 vs below 3+2 = 8 -> below (19)
    assert (vp.poc, vp.val, vp.vah) == (6.0, 2.0, 8.0)
    # peaks with prominence >= 0.2 * 7: 2 (6 - 1 = 5), 6 (7), 10 (4 - 0 = 4)
    assert vp.hvn["price"].to_list() == [2.0, 6.0, 10.0]
    assert vp.hvn["prominence"].to_list() == [5.0, 7.0, 4.0]
    # troughs: 4..5 (depth 5, reported at its first row 4), 8..9 (depth 2)
    assert vp.lvn["price"].to_list() == [4.0, 8.0]


def test_developing_poc() -> None:
    df = trades([(1, 10, 1, "buy"), (2, 12, 2, "buy"), (61, 10, 2, "sell"), (62, 11, 1, "buy"),
                 (121, 12, 5, "sell")])
    res = build_footprint(df, FootprintSpec(bar="1m", tick_size=1.0))
    out = developing_poc(res.bars, res.levels, 1.0)
    # bar 0: {10:1, 12:2} -> 12; bar 1: {10:3, 11:1, 12:2} -> 10; bar 2: {12:7} -> 12
    assert out["developing_poc"].to_list() == [12.0, 10.0, 12.0]


def _bars(highs, lows, deltas) -> pl.DataFrame:
    n = len(highs)
    return pl.DataFrame({
        "bar_start": [T0 + dt.timedelta(minutes=i) for i in range(n)],
        "high": [float(x) for x in highs], "low": [float(x) for x in lows],
        "close": [float(x) for x in lows], "delta": [float(x) for x in deltas],
        "delta_max": [max(0.0, float(d)) for d in deltas],
        "delta_min": [min(0.0, float(d)) for d in deltas],
    }).with_columns(pl.col("bar_start").cast(pl.Datetime("us", "UTC")))


def test_divergences_on_confirmed_swings() -> None:
    # swing highs at 2 (price 12) and 6 (14); swing low at 4 (7)
    highs = [10, 11, 12, 11, 9, 12, 14, 12, 11]
    lows = [8, 9, 10, 9, 7, 10, 12, 10, 9]
    # CVD: 5, 10, 12, 9, 7, 8, 9, 4, 3 -> at swing 2: 12, at swing 6: 9 -> lower high: bearish
    deltas = [5, 5, 2, -3, -2, 1, 1, -5, -1]
    sig = delta_divergence(_bars(highs, lows, deltas), k=2)
    assert sig.select("kind", "side", "price_low", "price_high").rows() == [
        ("bearish_divergence", "bearish", 12.0, 14.0)]
    assert sig["time"][0] == T0 + dt.timedelta(minutes=8)  # confirmed 2 bars after bar 6
    assert sig["start"][0] == T0 + dt.timedelta(minutes=2)
    assert sig["strength"][0] == pytest.approx(3 / (sum(map(abs, deltas)) / len(deltas)))
    # CVD rising into the second high: no divergence
    assert delta_divergence(_bars(highs, lows, [1] * 9), k=2).height == 0
    bullish = delta_divergence(_bars([-x for x in lows], [-x for x in highs],
                                     [-d for d in deltas]), k=2)
    assert bullish.select("kind", "price_low", "price_high").rows() == [
        ("bullish_divergence", -14.0, -12.0)]
    assert to_signals(bullish)[0].side == "bullish"


def test_absorption_from_trades() -> None:
    rows = []
    # 5 quiet minutes: 1-lot trades wandering 100..104
    for m in range(5):
        for s in range(0, 60, 5):
            rows.append((m * 60 + s, 100 + (s // 5) % 5, 1, "buy" if s % 10 else "sell"))
    # minutes 5-6: 48 lots a minute sold into 100 (4x the 12-lot median minute), 6 into 99
    for m in (5, 6):
        for s in range(0, 60, 2):
            rows.append((m * 60 + s, 100 if s % 10 else 99, 2 if s % 10 else 1, "sell"))
    rows.sort()
    sig = absorption(trades(rows), 1.0)
    assert sig.select("kind", "side", "price_low", "price_high").rows() == [
        ("absorption", "bid", 100.0, 100.0)]
    assert sig["start"][0] == T0 + dt.timedelta(minutes=5)
    assert sig["time"][0] == T0 + dt.timedelta(minutes=7)
    assert sig["strength"][0] == pytest.approx(48 * 2 / (12 * 2))
    # price trading 3 ticks through the level: not absorbed
    through = [(t, 97 if (t % 60 == 30) else p, q, s) for t, p, q, s in rows]
    assert absorption(trades(through), 1.0).height == 0


def test_liquidity_voids() -> None:
    rows = [(s, 100 + s % 3, 1, "buy") for s in range(0, 30)]
    rows += [(30, 110, 1, "buy")] + [(s, 110 + s % 2, 1, "sell") for s in range(31, 60)]
    rows += [(s, 130 + s % 2, 1, "buy") for s in range(60, 90)]
    res = build_footprint(trades(rows), FootprintSpec(bar="1m", tick_size=1.0))
    v = liquidity_voids(res, min_levels=5)
    # inside bar 0: 103..110 untraded (7 rows); between bars: 112..130 (bar 1 low 130 vs 111)
    assert v.select("side", "price_low", "price_high").rows() == [
        ("up", 103.0, 110.0), ("up", 111.0, 130.0)]
    assert v["strength"].to_list() == [7.0, 19.0]
    assert liquidity_voids(res, min_levels=8).select("price_low").rows() == [(111.0,)]
    ind = OrderFlowIndicators(res)
    assert ind.voids(min_levels=5).height == 2 and ind.cvd()["cvd"][-1] == pytest.approx(32.0)


def test_void_revisits() -> None:
    rows = [(s, 100 + s % 2, 1, "buy") for s in range(0, 60)]
    rows += [(s, 120 + s % 2, 1, "buy") for s in range(60, 120)]  # gap 101..120
    rows += [(s, 115 - (s - 120) // 10, 1, "sell") for s in range(120, 180)]  # enters to 110
    rows += [(s, 100 + (s - 180) % 25, 1, "sell") for s in range(180, 240)]  # spans 100..124
    res = build_footprint(trades(rows), FootprintSpec(bar="1m", tick_size=1.0))
    v = track_revisits(liquidity_voids(res, min_levels=5), res.bars)
    assert v.select("price_low", "price_high").rows() == [(101.0, 120.0)]
    assert v["revisited_at"][0] == T0 + dt.timedelta(minutes=2)
    assert v["filled_at"][0] == T0 + dt.timedelta(minutes=3)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(-30, 30)), min_size=8, max_size=60),
       st.integers(1, 3), st.data())
def test_divergence_never_looks_ahead(moves, k, data) -> None:
    """Signals found on a prefix of the bars are exactly the full run's signals known by then."""
    price, highs, lows, deltas = 100, [], [], []
    for step, delta in moves:
        price += step - 20
        highs.append(price + 2)
        lows.append(price - 2)
        deltas.append(delta)
    bars = _bars(highs, lows, deltas)
    cut = data.draw(st.integers(1, bars.height))
    full = delta_divergence(bars, k=k, flow="delta")
    part = delta_divergence(bars.head(cut), k=k, flow="delta")
    last = bars["bar_start"][cut - 1]
    known = full.filter(pl.col("time") <= last)
    assert part.drop("strength").rows() == known.drop("strength").rows()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(95, 105), st.integers(1, 9),
                          st.booleans()), min_size=1, max_size=60))
def test_developing_poc_ends_at_the_session_poc(rows) -> None:
    rows = sorted(rows)
    df = trades([(t, p, q, "buy" if b else "sell") for t, p, q, b in rows])
    res = build_footprint(df, FootprintSpec(bar="1m", tick_size=1.0))
    dev = developing_poc(res.bars, res.levels, 1.0, reset="none")
    vp = volume_profile(res.levels, 1.0, close=float(res.bars["close"][-1]))
    assert dev["developing_poc"][-1] == vp.poc
