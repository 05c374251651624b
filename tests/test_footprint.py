"""Footprint engine: hand-computed bars, an independent pure-Python reference, invariants."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from botclave_cli.engine.footprint.bars import parse_bar_spec
from botclave_cli.engine.footprint.builder import (
    FootprintChart,
    FootprintSpec,
    build_footprint,
    build_footprint_chunked,
)
from botclave_cli.errors import DataError, UsageError

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
T0_US = 1_704_067_200_000_000


def trades(rows: list[tuple[float, float, float, str]]) -> pl.DataFrame:
    """rows: (seconds after T0, price, qty, side)."""
    return pl.DataFrame({
        "ts": [T0 + dt.timedelta(seconds=s) for s, *_ in rows],
        "price": [r[1] for r in rows], "qty": [r[2] for r in rows], "side": [r[3] for r in rows],
    }, schema={"ts": pl.Datetime("us", "UTC"), "price": pl.Float64, "qty": pl.Float64,
               "side": pl.String})


# bar 0 (00:00): worked by hand in the comments below; bars 1-3 exercise POC ties and value area
HAND = trades([
    (1, 10.3, 2, "buy"), (2, 10.4, 6, "buy"), (3, 10.5, 9, "buy"), (4, 10.6, 1, "buy"),
    (5, 10.6, 1, "sell"), (6, 10.2, 2, "sell"), (7, 10.1, 4, "sell"), (8, 10.3, 1, "sell"),
    (9, 10.0, 1, "sell"), (10, 10.0, 1, "buy"), (11, 10.2, 1, "buy"),
    # bar 1: 10.0 and 10.2 tie at 2; close 10.1 is equally near -> the lower price, 10.0
    (61, 10.0, 2, "buy"), (62, 10.2, 2, "sell"), (63, 10.1, 1, "buy"),
    # bar 2: 10.0 and 10.3 tie at 2; close 10.2 is nearer 10.3
    (121, 10.0, 2, "buy"), (122, 10.3, 2, "sell"), (123, 10.2, 1, "buy"),
    # bar 3: equal pair sums around the POC add both sides at once
    (181, 10.2, 5, "buy"), (182, 10.0, 1, "sell"), (183, 10.1, 1, "sell"), (184, 10.3, 1, "buy"),
    (185, 10.4, 1, "buy"),
])
SPEC = FootprintSpec(bar="1m", tick_size=0.1, row_size=1)


def test_hand_bar_every_field() -> None:
    res = build_footprint(HAND, SPEC)
    b = res.bars.row(0, named=True)
    # levels: 10.0 b1/a1, 10.1 b4, 10.2 b2/a1, 10.3 b1/a2, 10.4 a6, 10.5 a9, 10.6 b1/a1
    assert b["bar_start"] == T0 and b["bar_end"] == T0 + dt.timedelta(minutes=1)
    assert (b["open"], b["high"], b["low"], b["close"]) == (10.3, 10.6, 10.0, 10.2)
    assert (b["volume"], b["buy_volume"], b["sell_volume"], b["delta"]) == (29, 20, 9, 11)
    assert b["delta_pct"] == pytest.approx(11 / 29 * 100)
    # running delta: 2 8 17 18 17 15 11 10 9 10 11
    assert (b["delta_max"], b["delta_min"], b["trade_count"]) == (18, 2, 11)
    # POC 10.5 (9); target 20.3: below pair 10.4+10.3 = 9 beats above 10.6 = 2 -> 18; then
    # 10.2+10.1 = 7 beats 2 -> 25 >= 20.3
    assert (b["poc"], b["val"], b["vah"]) == (10.5, 10.1, 10.5)
    assert b["unfinished_high"] and b["unfinished_low"]
    # buy imbalances (ask p vs bid p-1): 10.4 (6 vs 1), 10.5 (9 vs 0), 10.6 (1 vs 0) -> stacked
    # sell imbalances (bid p vs ask p+1): 10.0 (1 vs 0), 10.1 (4 vs 1): a run of 2 < 3
    assert (b["imbalance_buy_count"], b["imbalance_sell_count"]) == (3, 2)
    assert (b["stacked_buy_count"], b["stacked_buy_low"], b["stacked_buy_high"]) == (1, 10.4, 10.6)
    assert (b["stacked_sell_count"], b["stacked_sell_low"]) == (0, None)
    lv = res.levels.filter(pl.col("bar_id") == b["bar_id"])
    assert lv["price"].to_list() == [10.0, 10.1, 10.2, 10.3, 10.4, 10.5, 10.6]
    assert lv["bid_volume"].to_list() == [1, 4, 2, 1, 0, 0, 1]
    assert lv["ask_volume"].to_list() == [1, 0, 1, 2, 6, 9, 1]
    assert lv["bid_count"].to_list() == [1, 1, 1, 1, 0, 0, 1]
    assert lv["ask_count"].to_list() == [1, 0, 1, 1, 1, 1, 1]
    assert lv["delta"].to_list() == [0, -4, -1, 1, 6, 9, 0]
    assert lv["imbalance_buy"].to_list() == [False, False, False, False, True, True, True]
    assert lv["imbalance_sell"].to_list() == [True, True, False, False, False, False, False]
    assert lv["stacked_buy"].to_list() == [False] * 4 + [True] * 3
    assert not lv["stacked_sell"].any()
    runs = res.stacked_runs()
    # bar 3 stacks too: 10.2 (5 vs 1), 10.3 and 10.4 (1 vs 0)
    assert runs.select("bar_start", "side", "price_low", "price_high", "levels").rows() == [
        (T0, "buy", 10.4, 10.6, 3), (T0 + dt.timedelta(minutes=3), "buy", 10.2, 10.4, 3)]


def test_poc_ties_and_value_area() -> None:
    bars = build_footprint(HAND, SPEC).bars
    assert bars.select("poc", "val", "vah").rows()[1:] == [
        (10.0, 10.0, 10.2),  # tie, close level 10.1 equidistant -> lower; above pair 1+2 fills
        (10.3, 10.0, 10.3),  # tie -> nearer the close 10.2; below pairs 10.2+10.1 then 10.0
        (10.2, 10.0, 10.4),  # above 1+1 == below 1+1 -> both added at once
    ]
    assert bars["delta_max"][1] == 2 and bars["delta_min"][1] == 0  # running 2, 0, 1


def test_imbalance_min_volume_and_count_basis() -> None:
    lv = build_footprint(HAND, SPEC.model_copy(update={"imbalance_min_volume": 2.0})).levels
    first = lv.filter(pl.col("bar_start") == T0)
    # 10.6's ask (1) is below the minimum now, 10.0's bid (1) too
    assert first["imbalance_buy"].to_list() == [False] * 4 + [True, True, False]
    assert first["imbalance_sell"].to_list() == [False, True] + [False] * 5
    cnt = build_footprint(HAND, SPEC.model_copy(update={"imbalance_basis": "count"})).levels
    first = cnt.filter(pl.col("bar_start") == T0)
    # counts: 10.4 ask 1 vs bid(10.3) 1 -> no; 10.1 bid 1 vs ask(10.2) 1 -> no
    assert first["imbalance_buy"].to_list() == [False] * 5 + [True, True]
    assert first["imbalance_sell"].to_list() == [True] + [False] * 6


def test_exact_ticks_no_float_drift() -> None:
    # 0.1 + 0.2 style prices: 0.3 must land on level 0.3 (tick 0.1), not 0.2
    df = trades([(1, 0.1 + 0.2, 1, "buy"), (2, 0.7 - 0.4, 1, "sell"), (3, 1.1 * 3, 1, "buy")])
    lv = build_footprint(df, FootprintSpec(bar="1m", tick_size=0.1)).levels
    assert lv["price"].to_list() == [0.3, 3.3]
    assert lv["ask_volume"].to_list() == [1.0, 1.0]
    rows = build_footprint(df, FootprintSpec(bar="1m", tick_size=0.01, row_size=25)).levels
    assert rows["price"].to_list() == [0.25, 3.25]


def test_volume_bars_split_the_crossing_trade() -> None:
    df = trades([(1, 10.0, 3, "buy"), (2, 10.1, 4, "sell"), (3, 10.2, 2, "buy"),
                 (4, 10.0, 6, "sell")])
    bars = build_footprint(df, FootprintSpec(bar="vol:5", tick_size=0.1)).bars
    # cumulative 3 | 7 | 9 | 15: bar0 = 3 + 2 of the 4, bar1 = 2 + 2 + 1 of the 6, bar2 = 5
    assert bars["volume"].to_list() == [5, 5, 5]
    assert bars["buy_volume"].to_list() == [3, 2, 0]
    assert bars["trade_count"].to_list() == [2, 3, 1]
    assert bars["open"].to_list() == [10.0, 10.1, 10.0]
    assert bars["bar_start"].to_list() == [T0 + dt.timedelta(seconds=s) for s in (1, 2, 4)]
    assert bars["bar_end"].to_list() == [T0 + dt.timedelta(seconds=s) for s in (2, 4, 4)]


def test_trade_and_range_bars_never_split() -> None:
    prices = [10.0, 10.1, 10.3, 10.2, 10.4, 10.1, 10.0]
    df = trades([(i, p, 1, "buy") for i, p in enumerate(prices)])
    tb = build_footprint(df, FootprintSpec(bar="trades:3", tick_size=0.1)).bars
    assert tb["trade_count"].to_list() == [3, 3, 1]
    rb = build_footprint(df, FootprintSpec(bar="range:2", tick_size=0.1)).bars
    # 10.0 10.1 | 10.3 10.2 10.4 | 10.1 10.0 (10.3 would stretch the first bar to 3 ticks)
    assert rb["trade_count"].to_list() == [2, 3, 2]
    assert rb.select("low", "high").rows() == [(10.0, 10.1), (10.2, 10.4), (10.0, 10.1)]


@pytest.mark.parametrize("text", ["2x", "vol:", "range:1.5", "trades:0", "7m", "vol:-1", "1w"])
def test_bad_bar_specs(text: str) -> None:
    with pytest.raises(UsageError):
        parse_bar_spec(text)


def test_missing_aggressor_side() -> None:
    df = HAND.with_columns(pl.when(pl.col("price") == 10.3).then(None).otherwise(pl.col("side"))
                           .alias("side"))
    with pytest.raises(DataError, match="without aggressor side"):
        build_footprint(df, SPEC)


def test_chart_classes() -> None:
    chart = FootprintChart(SPEC)
    chart.build(HAND)
    assert len(chart) == 4
    bar = chart.bar(0)
    assert bar.metrics.poc == 10.5 and bar.metrics.volume == 29 and len(bar.levels) == 7


# ---- independent reference (pure Python, dicts and Fractions-free integer ticks) ----------------

def reference(rows, bar_kind: str, size: int, row: int, ratio: float = 3.0, n_stack: int = 3,
              share: float = 0.7):
    """Bars as dicts from (ts_us, tick, lots, is_buy) rows, written from the rules in DECISIONS."""
    groups: dict[int, list] = {}
    order: list[int] = []
    cum = 0
    count = 0
    hi = lo = None
    rid = 0
    for ts, px, q, b in rows:
        if bar_kind == "time":
            pieces = [(ts // size, q)]
        elif bar_kind == "trades":
            pieces = [(count // size, q)]
        elif bar_kind == "range":
            if hi is not None and max(hi, px) - min(lo, px) > size:
                rid += 1
                hi = lo = None
            hi = px if hi is None else max(hi, px)
            lo = px if lo is None else min(lo, px)
            pieces = [(rid, q)]
        else:
            pieces = []
            start, end = cum, cum + q
            bid_ = start // size
            while True:
                take = min(end, (bid_ + 1) * size) - max(start, bid_ * size)
                pieces.append((bid_, max(take, 0)))
                if (bid_ + 1) * size >= end:
                    break
                bid_ += 1
            cum = end
        count += 1
        for bar_id, piece in pieces:
            if bar_id not in groups:
                groups[bar_id] = []
                order.append(bar_id)
            groups[bar_id].append((ts, px, piece, b))
    out = []
    for bar_id in order:
        g = groups[bar_id]
        cells: dict[int, list[int]] = {}
        run, runs = 0, []
        for _, px, q, b in g:
            c = cells.setdefault(px // row * row, [0, 0, 0, 0])
            c[0 if b else 1] += q
            c[2 if b else 3] += 1
            run += q if b else -q
            runs.append(run)
        lvls = sorted(cells)
        grid = list(range(lvls[0], lvls[-1] + row, row))
        vol = [sum(cells[p][:2]) if p in cells else 0 for p in grid]
        close_i = (g[-1][1] // row * row - grid[0]) // row
        poc = min(range(len(grid)), key=lambda i: (-vol[i], abs(i - close_i), i))
        a = z = poc
        area = vol[poc]
        while area < share * sum(vol) and (a > 0 or z < len(grid) - 1):
            up = sum(vol[z + 1:z + 3]) if z < len(grid) - 1 else -1
            dn = sum(vol[max(a - 2, 0):a]) if a > 0 else -1
            if up >= dn:
                area, z = area + up, min(z + 2, len(grid) - 1)
            if dn >= up:
                area, a = area + dn, max(a - 2, 0)

        def imb(x, y):
            return x > 0 and (y == 0 or x >= ratio * y)

        buy = {p: p > lvls[0] and imb(cells[p][0], cells.get(p - row, [0, 0])[1]) for p in lvls}
        sell = {p: p < lvls[-1] and imb(cells[p][1], cells.get(p + row, [0, 0])[0]) for p in lvls}

        def stacked(flags, grid=grid):
            marked, n_runs, p = set(), 0, None
            for q in grid + [None]:
                if q is not None and flags.get(q):
                    p = q if p is None else p
                    continue
                if p is not None:
                    span = list(range(p, (q if q is not None else grid[-1] + row), row))
                    if len(span) >= n_stack:
                        marked |= set(span)
                        n_runs += 1
                p = None
            return marked, n_runs

        sb, nb = stacked(buy)
        ss, ns = stacked(sell)
        out.append({
            "open": g[0][1], "high": max(x[1] for x in g), "low": min(x[1] for x in g),
            "close": g[-1][1], "volume": sum(x[2] for x in g),
            "buy": sum(x[2] for x in g if x[3]), "n": len(g), "dmax": max(runs),
            "dmin": min(runs), "poc": grid[poc], "val": grid[a], "vah": grid[z],
            "uh": cells[lvls[-1]][0] > 0 and cells[lvls[-1]][1] > 0,
            "ul": cells[lvls[0]][0] > 0 and cells[lvls[0]][1] > 0,
            "stacked_buy": nb, "stacked_sell": ns,
            "levels": [(p, cells[p][1], cells[p][0], cells[p][3], cells[p][2], buy[p], sell[p],
                        p in sb, p in ss) for p in lvls],
        })
    return out


trade_rows = st.lists(
    st.tuples(st.integers(0, 400_000_000), st.integers(990, 1010), st.integers(0, 50),
              st.booleans()),
    min_size=1, max_size=120,
).map(lambda rows: sorted(rows, key=lambda r: r[0]))

BAR_CASES = [("1m", "time", 60_000_000), ("trades:7", "trades", 7), ("vol:0.5", "volume", 50),
             ("range:4", "range", 4)]


def _frame(rows) -> pl.DataFrame:
    return pl.DataFrame({
        "ts": [T0_US + r[0] for r in rows], "price": [r[1] / 100 for r in rows],
        "qty": [r[2] / 100 for r in rows], "side": ["buy" if r[3] else "sell" for r in rows],
    }).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


@settings(max_examples=40, deadline=None)
@given(trade_rows, st.sampled_from(BAR_CASES), st.integers(1, 3))
def test_matches_reference(rows, case, row) -> None:
    bar, kind, size = case
    spec = FootprintSpec(bar=bar, tick_size=0.01, row_size=row, qty_step=0.01)
    res = build_footprint(_frame(rows), spec)
    ref = reference([(T0_US + r[0], r[1], r[2], r[3]) for r in rows], kind, size, row)
    got = res.bars.rows(named=True)
    assert len(got) == len(ref)
    for g, r in zip(got, ref, strict=True):
        assert round(g["open"] * 100) == r["open"] and round(g["close"] * 100) == r["close"]
        assert round(g["high"] * 100) == r["high"] and round(g["low"] * 100) == r["low"]
        assert round(g["volume"] * 100) == r["volume"] and round(g["buy_volume"] * 100) == r["buy"]
        assert g["trade_count"] == r["n"]
        assert round(g["delta_max"] * 100) == r["dmax"] and round(g["delta_min"] * 100) == r["dmin"]
        assert [round(g[k] * 100) for k in ("poc", "val", "vah")] == [r["poc"], r["val"], r["vah"]]
        assert (g["unfinished_high"], g["unfinished_low"]) == (r["uh"], r["ul"])
        assert (g["stacked_buy_count"], g["stacked_sell_count"]) == (r["stacked_buy"],
                                                                     r["stacked_sell"])
        lv = res.levels.filter(pl.col("bar_id") == g["bar_id"])
        mine = [(round(x["price"] * 100), round(x["bid_volume"] * 100),
                 round(x["ask_volume"] * 100), x["bid_count"], x["ask_count"], x["imbalance_buy"],
                 x["imbalance_sell"], x["stacked_buy"], x["stacked_sell"])
                for x in lv.rows(named=True)]
        assert mine == r["levels"]


@settings(max_examples=40, deadline=None)
@given(trade_rows, st.sampled_from(BAR_CASES), st.lists(st.integers(0, 120), max_size=4))
def test_invariants_and_chunked_equals_one_pass(rows, case, cuts) -> None:
    spec = FootprintSpec(bar=case[0], tick_size=0.01, row_size=2, qty_step=0.01)
    df = _frame(rows)
    one = build_footprint(df, spec)
    bounds = sorted({0, df.height, *[min(c, df.height) for c in cuts]})
    chunks = [df.slice(a, b - a) for a, b in zip(bounds, bounds[1:], strict=False)]
    chunked = build_footprint_chunked(chunks, spec)
    assert_frame_equal(one.bars, chunked.bars)
    assert_frame_equal(one.levels, chunked.levels)
    sums = one.levels.group_by("bar_id").agg(
        (pl.col("bid_volume") + pl.col("ask_volume")).sum().alias("v"),
        (pl.col("ask_volume") - pl.col("bid_volume")).sum().alias("d"))
    joined = one.bars.join(sums, on="bar_id")
    assert (joined["v"] - joined["volume"]).abs().max() < 1e-9
    assert (joined["d"] - joined["delta"]).abs().max() < 1e-9
    low_level = (joined["low"] / 0.02).floor() * 0.02 - 1e-9
    for col in ("poc", "val", "vah"):
        assert ((joined[col] >= low_level) & (joined[col] <= joined["high"])).all()
    assert (joined["val"] <= joined["poc"]).all() and (joined["poc"] <= joined["vah"]).all()
    lv = one.levels
    assert (lv["delta"] - (lv["ask_volume"] - lv["bid_volume"])).abs().max() < 1e-9
