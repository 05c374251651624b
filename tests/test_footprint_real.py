"""Footprint on real trades (../shared) against independently built OHLCV, and the freqtrade
preset against a pandas-free re-implementation of freqtrade's orderflow converter."""

from __future__ import annotations

import gzip
import json
import math
from collections import defaultdict

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botclave_cli.engine.footprint.builder import FootprintSpec, build_footprint, freqtrade_columns
from tests.conftest import shared_file


def xrp_eth_trades() -> list[tuple[int, float, float, str]]:
    """(ts_ms, price, amount, side) as ccxt returns them (aggregate trades)."""
    path = shared_file("binance-rest/xrpeth_aggtrades_ccxt_20191011.json.gz")
    with gzip.open(path, "rt") as fh:
        raw = json.load(fh)
    return [(t["timestamp"], t["price"], t["amount"], t["side"]) for t in raw]


def capture_trades(name: str) -> list[tuple[int, float, float, str]]:
    """Trade messages of a Binance capture: (T ms, p, q, side); m = true -> aggressor sold."""
    out = []
    with gzip.open(shared_file(f"binance-ws/{name}"), "rt") as fh:
        for line in fh:
            if "@trade" not in line:
                continue
            msg = json.loads(line.split(" ", 1)[1])["data"]
            out.append((msg["t"], msg["T"], float(msg["p"]), float(msg["q"]),
                        "sell" if msg["m"] else "buy"))
    out.sort()
    return [(t, p, q, s) for _, t, p, q, s in out]


def frame(rows) -> pl.DataFrame:
    return pl.DataFrame({
        "ts": [r[0] * 1000 for r in rows], "price": [r[1] for r in rows],
        "qty": [r[2] for r in rows], "side": [r[3] for r in rows],
    }).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def ohlcv(rows, interval_ms: int) -> dict[int, tuple]:
    """Independent OHLCV: bucket start ms -> (open, high, low, close, volume, count, buy vol)."""
    out: dict[int, list] = {}
    for ts, p, q, side in rows:
        k = ts // interval_ms * interval_ms
        if k not in out:
            out[k] = [p, p, p, p, 0.0, 0, 0.0]
        b = out[k]
        b[1], b[2], b[3] = max(b[1], p), min(b[2], p), p
        b[4] += q
        b[5] += 1
        b[6] += q if side == "buy" else 0.0
    return {k: tuple(v) for k, v in out.items()}


def check_against_ohlcv(rows, tick: float, bar: str, interval_ms: int) -> int:
    res = build_footprint(frame(rows), FootprintSpec(bar=bar, tick_size=tick, row_size=10))
    want = ohlcv(rows, interval_ms)
    got = res.bars
    assert got.height == len(want)
    for b in got.rows(named=True):
        key = int(b["bar_start"].timestamp() * 1000)
        o, h, low, c, v, n, buy = want[key]
        assert (b["open"], b["high"], b["low"], b["close"]) == pytest.approx((o, h, low, c),
                                                                             rel=1e-12)
        assert b["volume"] == pytest.approx(v, rel=1e-9)
        assert b["buy_volume"] == pytest.approx(buy, rel=1e-9, abs=1e-9)
        assert b["trade_count"] == n
    return got.height


def test_xrp_eth_rest_trades_match_ohlcv() -> None:
    rows = xrp_eth_trades()
    assert check_against_ohlcv(rows, 1e-8, "1m", 60_000) > 1000
    assert check_against_ohlcv(rows, 1e-8, "1h", 3_600_000) > 50


@pytest.mark.parametrize("name,tick", [("spot_btcusdt_20240808.gz", 0.01),
                                       ("spot_ethusdt_20240808.gz", 0.01),
                                       ("usdm_btcusdt_20240808.gz", 0.1)])
def test_binance_capture_trades_match_ohlcv(name: str, tick: float) -> None:
    rows = capture_trades(name)
    assert check_against_ohlcv(rows, tick, "1m", 60_000) >= 6
    assert check_against_ohlcv(rows, tick, "5s", 5_000) > 60


# ---- freqtrade, re-implemented from freqtrade/data/converter/orderflow.py (no pandas) ---------

def freqtrade_reference(rows, timeframe_ms: int, scale: float, ratio: float, volume: float,
                        stacked_range: int) -> dict[int, dict]:
    candles: dict[int, list] = defaultdict(list)
    for r in rows:
        candles[r[0] // timeframe_ms * timeframe_ms].append(r)
    out = {}
    for start, trades in candles.items():
        levels: dict[float, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0.0])
        for _, p, q, side in trades:
            lvl = round(p / scale) * scale  # numpy/pandas round: half to even, like Python's
            cell = levels[lvl]
            if side == "sell":
                cell[0] += 1
                cell[2] += q
            else:
                cell[1] += 1
                cell[3] += q
        prices = sorted(levels)
        bid = [levels[p][0] for p in prices]
        ask = [levels[p][1] for p in prices]
        total = [levels[p][2] + levels[p][3] for p in prices]

        def div(x, y):
            if y == 0:
                return math.inf if x > 0 else math.nan
            return x / y

        bid_imb, ask_imb = [], []
        for i in range(len(prices)):
            nxt = ask[i + 1] if i + 1 < len(prices) else math.nan
            bi = (div(bid[i], nxt) > ratio) if not math.isnan(nxt) else False
            ai = (div(nxt, bid[i]) > ratio) if not math.isnan(nxt) else False
            bid_imb.append(False if total[i] < volume else bi)
            ask_imb.append(False if total[i] < volume else ai)

        def stacked(flags, prices=prices):
            starts, count = [], 0
            for i, f in enumerate(flags):
                count = count + 1 if f else 0
                if count >= stacked_range:
                    starts.append(prices[i - (stacked_range - 1)])
            return starts

        run, runs = 0.0, []
        for _, _, q, side in trades:
            run += q if side == "buy" else -q
            runs.append(run)
        out[start] = {
            "bid": sum(q for _, _, q, s in trades if s == "sell"),
            "ask": sum(q for _, _, q, s in trades if s == "buy"),
            "min_delta": min(runs), "max_delta": max(runs), "total_trades": len(trades),
            "levels": [(p, bid[i], ask[i], levels[p][2], levels[p][3], bid_imb[i], ask_imb[i])
                       for i, p in enumerate(prices)],
            "stacked_bid": stacked(bid_imb), "stacked_ask": stacked(ask_imb),
        }
    return out


def check_freqtrade(rows, tick: float, row: int, ratio: float, volume: float, n: int) -> None:
    spec = FootprintSpec(bar="1m", tick_size=tick, row_size=row, preset="freqtrade",
                         imbalance_ratio=ratio, imbalance_min_volume=volume, stacked_min_levels=n)
    res = build_footprint(frame(rows), spec)
    ref = freqtrade_reference(rows, 60_000, tick * row, ratio, volume, n)
    cols = freqtrade_columns(res)
    assert cols.height == len(ref)
    by_bar = res.levels.partition_by("bar_id", as_dict=True)
    for c in cols.rows(named=True):
        key = int(c["bar_start"].timestamp() * 1000)
        r = ref[key]
        for name in ("bid", "ask", "min_delta", "max_delta"):
            assert c[name] == pytest.approx(r[name], rel=1e-9, abs=1e-9), name
        assert c["total_trades"] == r["total_trades"]
        assert c["stacked_imbalances_bid"] == pytest.approx(r["stacked_bid"], rel=1e-12)
        assert c["stacked_imbalances_ask"] == pytest.approx(r["stacked_ask"], rel=1e-12)
        lv = by_bar[(c["bar_id"],)]
        assert len(lv) == len(r["levels"])
        for mine, theirs in zip(lv.rows(named=True), r["levels"], strict=True):
            p, bid, ask, bid_amt, ask_amt, bid_imb, ask_imb = theirs
            assert mine["price"] == pytest.approx(p, rel=1e-12)
            assert (mine["bid_count"], mine["ask_count"]) == (bid, ask)
            assert mine["bid_volume"] == pytest.approx(bid_amt, rel=1e-9, abs=1e-12)
            assert mine["ask_volume"] == pytest.approx(ask_amt, rel=1e-9, abs=1e-12)
            assert (mine["imbalance_sell"], mine["imbalance_buy"]) == (bid_imb, ask_imb)


def test_freqtrade_preset_on_real_trades() -> None:
    rows = xrp_eth_trades()
    check_freqtrade(rows, 1e-8, 50, 3.0, 0.0, 3)
    check_freqtrade(rows, 1e-8, 7, 1.5, 100.0, 2)
    btc = capture_trades("spot_btcusdt_20240808.gz")
    check_freqtrade(btc, 0.01, 50, 3.0, 0.0, 3)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 180_000), st.integers(0, 40), st.integers(1, 30),
                          st.sampled_from(["buy", "sell"])), min_size=1, max_size=80),
       st.sampled_from([2, 4]), st.sampled_from([1.0, 3.0]), st.integers(1, 3))
def test_freqtrade_preset_random(raw, row, ratio, n) -> None:
    # prices on a 0.25 grid so that freqtrade's float rounding is exact (halves included)
    rows = sorted((t, 100 + p * 0.25, q / 4, s) for t, p, q, s in raw)
    check_freqtrade(rows, 0.25, row, ratio, 1.0, n)
