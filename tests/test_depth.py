"""Depth analytics on small fixtures whose numbers are worked out by hand."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from botclave_cli.engine.book.dom_builder import DOMBuilder
from botclave_cli.engine.depth.analyzer import DepthAnalyzer, DepthParams
from botclave_cli.engine.depth.series import DepthSnapshot, ofi_events
from tests.test_book_kernel import SNAP, stream

# snapshot (untimed): bids 100.0 x 1, 99.5 x 2, 99.0 x 3; asks 100.5 x 1.5, 101.0 x 2.5
MSGS = [
    SNAP,
    ("diff", 11, 11, None, 500, [(100.0, 2.0)], []),     # bid size 1 -> 2
    ("diff", 12, 12, None, 1200, [], [(100.5, 0.0)]),    # best ask 100.5 pulled -> 101.0 x 2.5
    ("diff", 13, 13, None, 1700, [(100.5, 1.0)], []),    # new best bid 100.5 x 1
    ("diff", 14, 14, None, 2500, [], []),
]


@pytest.fixture()
def replay():
    return DOMBuilder("spot").replay(stream(MSGS), sample_interval_us=1_000_000, sample_depth=5)


def test_series_by_hand(replay):
    params = DepthParams(levels=2, band_bps=30.0)
    s = DepthAnalyzer(params).series(replay.samples_frame(), replay.events())
    assert s["ts"].dt.epoch("us").to_list() == [1_000_000, 2_000_000]
    one, two = s.row(0, named=True), s.row(1, named=True)
    # 1 s: bid 100.0 x 2, ask 100.5 x 1.5
    assert one["mid"] == 100.25 and one["spread"] == 0.5
    assert one["microprice"] == pytest.approx((100.0 * 1.5 + 100.5 * 2.0) / 3.5)
    assert one["imbalance"] == pytest.approx(0.0)  # 2 levels: bids 2 + 2, asks 1.5 + 2.5
    # 30 bps of 100.25 = 0.30075: only the two best levels are inside
    assert one["imbalance_band"] == pytest.approx((2.0 - 1.5) / 3.5)
    assert (one["depth_bid_25bps"], one["depth_ask_25bps"]) == (2.0, 1.5)  # 0.25 = 24.94 bps
    assert (one["depth_bid_10bps"], one["depth_ask_10bps"]) == (0.0, 0.0)
    assert (one["depth_bid_100bps"], one["depth_ask_100bps"]) == (4.0, 4.0)
    # 2 s: bid 100.5 x 1, ask 101.0 x 2.5
    assert two["mid"] == 100.75
    assert two["microprice"] == pytest.approx((100.5 * 2.5 + 101.0 * 1.0) / 3.5)
    assert two["imbalance"] == pytest.approx((3.0 - 2.5) / 5.5)
    # OFI: (0, 0.5 s] diff 11: bid same price, 2 - 1 = +1;
    # (1 s, 2 s] diff 12: ask rose, + old ask size 1.5; diff 13: bid rose, + new bid size 1.0
    assert one["ofi"] == pytest.approx(1.0)
    assert two["ofi"] == pytest.approx(2.5)


def test_ofi_events_by_hand(replay):
    e = ofi_events(replay.events())
    assert e["e"].to_list() == pytest.approx([1.0, 1.5, 1.0, 0.0])


def test_series_agrees_with_the_per_book_snapshot(replay):
    params = DepthParams(levels=3, band_bps=60.0)
    s = DepthAnalyzer(params).series(replay.samples_frame(), replay.events())
    state = DOMBuilder("spot").book_at(stream(MSGS), 2_000_000, depth=5)
    snap = DepthSnapshot.from_state(state, levels=3, band_bps=60.0)
    row = s.row(1, named=True)
    for name in ("best_bid", "best_ask", "bid_qty", "ask_qty", "spread", "mid", "microprice",
                 "imbalance", "imbalance_band"):
        assert row[name] == pytest.approx(getattr(snap, name)), name
    for band, (b, a) in snap.depth_bps.items():
        assert (row[f"depth_bid_{band}bps"], row[f"depth_ask_{band}bps"]) == (b, a)


def _ts(seconds):
    return dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)


def _us(seconds):
    return int(_ts(seconds).timestamp()) * 1_000_000


def _book(seconds, extra):
    """Samples: 10 bid levels 99.9..99.0 and 10 ask levels 100.1..101.0, size 1, plus extras."""
    rows = []
    for t in range(seconds):
        for i in range(10):
            bid_p, ask_p = round(99.9 - i * 0.1, 1), round(100.1 + i * 0.1, 1)
            rows.append((_ts(t), "bid", i, bid_p, extra.get((t, "bid", bid_p), 1.0)))
            rows.append((_ts(t), "ask", i, ask_p, extra.get((t, "ask", ask_p), 1.0)))
    return pl.DataFrame(rows, schema={"ts": pl.Datetime("us", "UTC"), "side": pl.String,
                                      "level": pl.Int32, "price": pl.Float64, "qty": pl.Float64},
                        orient="row")


def test_walls_found_with_how_they_ended():
    extra = {}
    extra.update({(t, "bid", 99.5): 20.0 for t in range(10, 81)})   # 71 s, then traded through
    extra.update({(t, "ask", 100.5): 30.0 for t in range(20, 51)})  # 31 s, then pulled
    extra.update({(t, "ask", 100.8): 50.0 for t in range(60, 63)})  # 3 s flash: not a wall
    extra.update({(t, "bid", 99.2): 15.0 for t in range(90, 100)})  # still there at the end
    samples = _book(100, extra)
    trades = pl.DataFrame({"ts": [_ts(81.5), _ts(55.0)], "price": [99.5, 100.4],
                           "qty": [20.0, 0.1], "side": ["sell", "buy"]})
    walls = DepthAnalyzer(DepthParams(wall_k=10.0, wall_min_us=10_000_000)).walls(samples, trades)
    got = [(w.side, w.price, w.first_seen_us // 1_000_000 % 3600, w.duration_us // 1_000_000,
            w.peak_qty, w.ended) for w in walls]
    assert got == [("bid", 99.5, 10, 70, 20.0, "traded_through"),
                   ("ask", 100.5, 20, 30, 30.0, "pulled"),
                   ("bid", 99.2, 90, 9, 15.0, "open")]
    assert walls[0].typical_qty == 1.0


def test_absorption_needs_refill_and_no_break():
    # 0..60 s: 40 sold into the 99.9 bid that keeps showing 2 (refilled), price holds;
    # 60..120 s: 40 sold into the 99.8 bid too, but then price trades down to 99.4 (broken)
    extra = {(t, "bid", 99.9): 2.0 for t in range(0, 60)}
    samples = _book(120, extra)
    sells = [(_ts(1 + i * 1.5), 99.9, 1.0, "sell") for i in range(40)]
    sells += [(_ts(61 + i * 1.0), 99.8, 1.0, "sell") for i in range(40)]
    sells += [(_ts(110), 99.4, 0.1, "sell")]
    noise = [(_ts(t + 0.5), 100.1 + (t % 3) / 10, 0.1, "buy") for t in range(120)]
    trades = pl.DataFrame(sells + noise, schema={"ts": pl.Datetime("us", "UTC"),
                                                 "price": pl.Float64, "qty": pl.Float64,
                                                 "side": pl.String}, orient="row")
    zones = DepthAnalyzer(DepthParams(absorption_window_us=60_000_000, absorption_volume_k=20,
                                      absorption_refill=2.0)).absorption(samples, trades, 0.1)
    assert len(zones) == 1
    z = zones[0]
    assert (z.side, z.price, z.absorbed_qty, z.trades) == ("bid", 99.9, 40.0, 40)
    assert z.shown_qty == 2.0
    assert (z.start_us, z.end_us) == (_us(0), _us(60))


def test_support_and_resistance_from_persistent_clusters():
    extra = {(t, "bid", 99.3): 8.0 for t in range(50)}
    extra.update({(t, "ask", 100.7): 6.0 for t in range(50)})
    samples = _book(50, extra)
    sr = DepthAnalyzer(DepthParams(cluster_ticks=1)).support_resistance(samples, 0.1, top=1)
    rows = sr.select("kind", "price_low", "presence").rows()
    assert [(k, round(p, 1), pres) for k, p, pres in rows] == [
        ("resistance", 100.7, 1.0), ("support", 99.3, 1.0)]
    assert sr["strength"].to_list() == [6.0, 8.0]


def test_heatmap_matrix_and_png():
    from botclave_cli.report.heatmap import depth_heatmap, heatmap_matrix

    samples = _book(3, {(1, "bid", 99.5): 7.0})
    times, edges, matrix = heatmap_matrix(samples, row_price=0.1)
    assert times.tolist() == [_us(0), _us(1), _us(2)]
    row = int(round((99.5 - edges[0]) / 0.1))
    assert matrix[row].tolist() == [1.0, 7.0, 1.0]
    assert matrix.sum() == pytest.approx(3 * 20 + 6.0)
    trades = pl.DataFrame({"ts": [_ts(1.5), _ts(1.7)], "price": [99.9, 100.1],
                           "qty": [1.0, 2.0], "side": ["sell", "buy"]})
    chart = depth_heatmap(samples, trades, row_price=0.1)
    assert chart.png[:8] == b"\x89PNG\r\n\x1a\n"
    assert chart.data["trades"] == {"buy": 1, "sell": 1}


def test_a_wall_that_leaves_the_sampled_view_is_not_called_pulled():
    extra = {(t, "bid", 99.5): 20.0 for t in range(0, 30)}
    samples = _book(40, extra)
    # from 30 s on the book shows only 99.9..99.6: the wall's price is beyond the sampled depth
    samples = samples.filter(~((pl.col("ts") >= _ts(30)) & (pl.col("side") == "bid")
                               & (pl.col("price") < 99.55)))
    walls = DepthAnalyzer(DepthParams(wall_min_us=10_000_000)).walls(samples, None)
    assert [(w.price, w.ended) for w in walls] == [(99.5, "out_of_view")]
