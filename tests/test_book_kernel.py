"""DOM builder on hand-made streams: sequencing rules, gaps, crossed and stale books, live API."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from botclave_cli.engine.book import kernel as K
from botclave_cli.engine.book.dom_builder import DOMBuilder
from botclave_cli.engine.book.stream import BookStream
from botclave_cli.engine.book.tick_grid import infer_step, polars_steps, to_grid
from botclave_cli.errors import DataError


def frames(messages):
    """messages: ("snap", L, bids, asks) or ("diff", U, u, pu, ts_ms, bids, asks), seq = index."""
    snaps, diffs = [], []
    for seq, m in enumerate(messages):
        if m[0] == "snap":
            _, last, bids, asks = m
            for side, levels in (("bid", bids), ("ask", asks)):
                for i, (p, q) in enumerate(levels):
                    snaps.append({"seq": seq, "last_update_id": last, "side": side, "level": i,
                                  "price": p, "qty": q, "ts": None})
        else:
            _, first, last, prev, ts_ms, bids, asks = m
            rows = [("bid", p, q) for p, q in bids] + [("ask", p, q) for p, q in asks]
            for side, p, q in rows or [(None, None, None)]:
                diffs.append({"seq": seq, "first_update_id": first, "last_update_id": last,
                              "prev_update_id": prev, "side": side, "price": p, "qty": q,
                              "ts": ts_ms * 1000})
    snap_schema = {"seq": pl.Int64, "last_update_id": pl.Int64, "side": pl.String,
                   "level": pl.Int32, "price": pl.Float64, "qty": pl.Float64, "ts": pl.Int64}
    diff_schema = {"seq": pl.Int64, "first_update_id": pl.Int64, "last_update_id": pl.Int64,
                   "prev_update_id": pl.Int64, "side": pl.String, "price": pl.Float64,
                   "qty": pl.Float64, "ts": pl.Int64}
    to_ts = pl.col("ts").cast(pl.Datetime("us", "UTC"))
    return (pl.DataFrame(snaps, schema=snap_schema).with_columns(to_ts),
            pl.DataFrame(diffs, schema=diff_schema).with_columns(to_ts))


def stream(messages, tick=0.5, lot=0.1):
    snap, diff = frames(messages)
    return BookStream.from_frames(snap, diff, tick, lot)


SNAP = ("snap", 10, [(100.0, 1.0), (99.5, 2.0), (99.0, 3.0)], [(100.5, 1.5), (101.0, 2.5)])


def apply_diff(ref, msg):
    """Apply a diff message's levels to a plain dict book {"bid": {px: qty}, "ask": {...}}
    (qty 0 removes the level): the independent reference the kernel is checked against."""
    for side, levels in (("bid", msg[5]), ("ask", msg[6])):
        for p, q in levels:
            if q == 0:
                ref[side].pop(p, None)
            else:
                ref[side][p] = q


def book(builder, depth=10):
    s = builder.state(depth)
    return (s.valid, list(zip(s.bid_price, s.bid_qty, strict=True)),
            list(zip(s.ask_price, s.ask_qty, strict=True)))


def test_spot_buffers_diffs_before_snapshot_and_applies_the_straddling_one():
    msgs = [
        ("diff", 5, 8, None, 1000, [(99.5, 9.0)], []),      # u <= L: dropped
        ("diff", 9, 12, None, 1100, [(100.0, 4.0)], []),    # U <= L+1 <= u: first applied
        SNAP,
        ("diff", 13, 13, None, 1200, [(99.0, 0.0)], [(100.5, 0.0), (102.0, 0.7)]),
    ]
    b = DOMBuilder("spot")
    r = b.replay(stream(msgs))
    assert r.status.tolist() == [K.ST_DROPPED, K.ST_APPLIED, K.ST_SNAPSHOT, K.ST_APPLIED]
    valid, bids, asks = book(b)
    assert valid
    assert bids == [(100.0, 4.0), (99.5, 2.0)]
    assert asks == [(101.0, 2.5), (102.0, pytest.approx(0.7))]
    assert r.counts["diffs_applied"] == 2 and r.counts["level_updates_applied"] == 4


def test_spot_rule_rejects_a_diff_that_ends_at_L_but_futures_rule_applies_it():
    # a diff ending exactly at L: spot drops it (u <= L), futures applies it (U <= L <= u)
    msgs = [("diff", 8, 10, 7, 1000, [(100.0, 5.0)], []), SNAP,
            ("diff", 11, 12, 10, 1100, [], [(100.5, 3.0)])]
    spot = DOMBuilder("spot")
    r = spot.replay(stream(msgs))
    assert r.status.tolist() == [K.ST_DROPPED, K.ST_SNAPSHOT, K.ST_APPLIED]
    assert book(spot)[1][0] == (100.0, 1.0)
    fut = DOMBuilder("usdm")
    r = fut.replay(stream(msgs))
    assert r.status.tolist() == [K.ST_APPLIED, K.ST_SNAPSHOT, K.ST_APPLIED]
    assert book(fut)[1][0] == (100.0, 5.0)
    assert book(fut)[2][0] == (100.5, 3.0)


def test_futures_chain_uses_pu_not_U():
    msgs = [SNAP, ("diff", 9, 11, 8, 1000, [(100.0, 2.0)], []),
            ("diff", 15, 20, 11, 1100, [(100.0, 3.0)], []),   # U jumps, pu chains: fine
            ("diff", 21, 22, 19, 1200, [(100.0, 4.0)], [])]   # pu != 20: gap
    calls = []
    b = DOMBuilder("usdm", on_resync=lambda reason, seq: calls.append((reason, seq)))
    r = b.replay(stream(msgs))
    assert r.status.tolist() == [K.ST_SNAPSHOT, K.ST_APPLIED, K.ST_APPLIED, K.ST_GAP]
    assert calls == [("gap", 3)]
    assert not b.valid and not b.state().valid and b.state().bid_price.size == 0


def test_gap_invalidates_until_next_snapshot_and_samples_are_invalid_meanwhile():
    msgs = [SNAP,
            ("diff", 11, 11, None, 1000, [(100.0, 2.0)], []),
            ("diff", 13, 13, None, 2500, [(100.0, 3.0)], []),   # 12 missing: gap
            ("diff", 14, 14, None, 3500, [(100.0, 4.0)], []),   # buffered, covered by snapshot
            ("snap", 14, [(99.0, 1.0)], [(99.5, 1.0)]),           # no exchange time
            ("diff", 15, 15, None, 4500, [(98.5, 1.0)], []),
            ("diff", 16, 16, None, 5500, [(98.0, 1.0)], [])]
    calls = []
    b = DOMBuilder("spot", on_resync=lambda reason, seq: calls.append((reason, seq)))
    r = b.replay(stream(msgs), sample_interval_us=1_000_000, sample_depth=2)
    # the diff that revealed the gap is buffered and later covered by the new snapshot
    assert r.status.tolist() == [K.ST_SNAPSHOT, K.ST_APPLIED, K.ST_DROPPED, K.ST_DROPPED,
                                 K.ST_SNAPSHOT, K.ST_APPLIED, K.ST_APPLIED]
    assert r.event.tolist() == [-1, -1, K.ST_GAP, -1, -1, -1, -1]
    assert calls == [("gap", 2)]
    assert r.counts["gaps"] == 1 and r.counts["syncs"] == 2 and r.counts["valid_at_end"]
    # samples at 1 s, 2 s (book after the diff at 1.0 s), 3 s (waiting), 4 s (the untimed
    # snapshot arrived at an unknown time before 4.5 s: not trusted yet), 5 s
    assert r.samples["ts"].tolist() == [1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000]
    assert r.samples["valid"].tolist() == [1, 1, 0, 0, 1]
    assert r.samples["bid_qty"][1].tolist() == [20, 20]  # 2.0 and 2.0 lots of 0.1
    frame = r.samples_frame()
    assert sorted(set(frame["seq"].to_list())) == [1_000_000, 2_000_000, 5_000_000]
    # the 5 s sample: the new snapshot plus the diff at 4.5 s (the next diff comes at 5.5 s)
    assert frame.filter(pl.col("seq") == 5_000_000)["price"].to_list() == [99.5, 99.0, 98.5]


def test_crossed_book_and_stale_snapshot_invalidate():
    crossed = [SNAP, ("diff", 11, 11, None, 1000, [(101.0, 1.0)], [])]
    b = DOMBuilder("spot")
    r = b.replay(stream(crossed))
    assert r.status.tolist() == [K.ST_SNAPSHOT, K.ST_CROSSED] and not b.valid
    stale = [("diff", 20, 21, None, 1000, [(100.0, 1.0)], []), SNAP,
             ("diff", 22, 22, None, 1100, [(100.0, 1.0)], [])]
    b = DOMBuilder("spot")
    r = b.replay(stream(stale))
    assert r.status.tolist() == [K.ST_STALE, K.ST_SNAPSHOT, K.ST_BUFFERED]
    assert r.counts["stale_snapshots"] == 1 and not b.valid


def test_empty_diff_advances_the_chain():
    msgs = [SNAP, ("diff", 11, 11, None, 1000, [], []),
            ("diff", 12, 12, None, 1100, [(99.0, 0.0)], [])]
    b = DOMBuilder("spot")
    r = b.replay(stream(msgs))
    assert r.status.tolist() == [K.ST_SNAPSHOT, K.ST_APPLIED, K.ST_APPLIED]
    assert [p for p, _ in book(b)[1]] == [100.0, 99.5]


def test_small_capacity_grows_and_gives_the_same_book():
    rng = np.random.default_rng(1)
    msgs = [SNAP]
    for i in range(200):
        bid_px = rng.choice(np.arange(50.0, 100.0, 0.5), 5, replace=False)
        ask_px = rng.choice(np.arange(100.5, 150.0, 0.5), 5, replace=False)
        bids = [(float(p), float(q))
                for p, q in zip(bid_px, rng.integers(0, 4, 5) / 10, strict=True)]
        asks = [(float(p), float(q))
                for p, q in zip(ask_px, rng.integers(0, 4, 5) / 10, strict=True)]
        msgs.append(("diff", 11 + i, 11 + i, None, 1000 + i, bids, asks))
    s = stream(msgs)
    big, small = DOMBuilder("spot"), DOMBuilder("spot", capacity=4)
    big.replay(s)
    small.replay(s)
    assert small.keys.shape[1] > 4
    assert book(big, 500) == book(small, 500)
    # independent reference: a dict book
    ref = {"bid": {}, "ask": {}}
    for side, levels in (("bid", SNAP[2]), ("ask", SNAP[3])):
        ref[side].update(dict(levels))
    for m in msgs[1:]:
        apply_diff(ref, m)
    valid, bids, asks = book(big, 500)
    assert [p for p, _ in bids] == sorted(ref["bid"], reverse=True)
    assert [p for p, _ in asks] == sorted(ref["ask"])
    want = [ref["bid"][p] for p in sorted(ref["bid"], reverse=True)]
    assert np.allclose([q for _, q in bids], want)


def test_live_api_buffers_and_resyncs_like_replay():
    calls = []
    b = DOMBuilder("spot", tick_size=0.5, lot_size=0.1,
                   on_resync=lambda reason, seq: calls.append(reason))
    assert not b.on_diff(9, 12, None, [(100.0, 4.0)], [])
    assert b.on_snapshot(10, SNAP[2], SNAP[3])
    assert book(b)[1][0] == (100.0, 4.0)
    assert b.on_diff(13, 13, None, [], [(100.5, 0.0)])
    assert not b.on_diff(15, 15, None, [(99.0, 7.0)], [])  # 14 missing
    assert calls == ["gap"]
    assert not b.state().valid
    assert b.on_snapshot(14, [(99.0, 1.0)], [(100.0, 2.0)])  # buffered diff 15 applied
    assert book(b)[1] == [(99.0, 7.0)]


def test_book_at_a_timestamp():
    msgs = [SNAP, ("diff", 11, 11, None, 1000, [(100.0, 2.0)], []),
            ("diff", 12, 12, None, 2000, [(100.0, 3.0)], [])]
    s = stream(msgs)
    b = DOMBuilder("spot")
    assert b.book_at(s, 1_500_000).bid_qty[0] == pytest.approx(2.0)
    assert b.book_at(s, 2_000_000).bid_qty[0] == pytest.approx(3.0)


def test_grid_helpers():
    assert infer_step(np.array([61837.63, 1.5])) == pytest.approx(0.01)
    assert infer_step(np.array([3.78826, 0.00105])) == pytest.approx(1e-5)
    assert to_grid(np.array([61837.63]), 0.01, "price").tolist() == [6183763]
    with pytest.raises(DataError, match="price 100.25 is not a multiple of 0.5"):
        to_grid(np.array([100.25]), 0.5, "price")


@pytest.mark.parametrize("step", [0.01, 0.1, 0.5, 1e-8, 0.001, 0.25])
def test_polars_steps_equal_polars_division_and_rounding(step: float):
    """Values on and beside exact halves of the step, where ``values / step`` would differ
    from Polars' reciprocal multiplication on about one in ten."""
    rng = np.random.default_rng(7)
    values = np.round(rng.uniform(1, 100_000, 200_000) / step * 2) / 2 * step
    values = np.concatenate([values, np.nextafter(values, 0), np.nextafter(values, np.inf)])
    want = (pl.Series(values) / step).round().cast(pl.Int64).to_numpy()
    assert np.array_equal(polars_steps(values, step), want)
    if step not in (0.5, 0.25):  # else the reciprocal is exact (a power of two)
        # the plain division really is a different computation
        assert not np.array_equal(np.round(values / step).astype(np.int64), want)


def test_random_stream_matches_a_dict_book_after_every_diff():
    """Tombstones, their reuse and compaction never change what the book shows."""
    rng = np.random.default_rng(5)
    msgs = [("snap", 10, [(100.0 - i * 0.5, 1.0) for i in range(40)],
             [(100.5 + i * 0.5, 1.0) for i in range(40)])]
    for i in range(1500):
        bids = [(float(p), float(q)) for p, q in zip(
            100.0 - rng.integers(0, 60, 6) * 0.5, rng.integers(0, 3, 6) / 10, strict=True)]
        asks = [(float(p), float(q)) for p, q in zip(
            100.5 + rng.integers(0, 60, 6) * 0.5, rng.integers(0, 3, 6) / 10, strict=True)]
        bids = list(dict(bids).items())  # one update per price within a diff, as on Binance
        asks = list(dict(asks).items())
        msgs.append(("diff", 11 + i, 11 + i, None, 1 + i, bids, asks))
    replay = DOMBuilder("spot", capacity=16).replay(stream(msgs), sample_interval_us=1000,
                                                     sample_depth=80)
    ref = {"bid": dict(msgs[0][2]), "ask": dict(msgs[0][3])}
    smp = replay.samples
    for i, m in enumerate(msgs[1:]):
        apply_diff(ref, m)
        k = i  # the sample at (i + 1) ms, the first one, holds the book after diff i (ts i + 1 ms)
        if k >= len(smp["ts"]):
            break
        ticks = {side: sorted(((round(p * 2), round(q * 10)) for p, q in ref[side].items()),
                              reverse=side == "bid")[:80] for side in ("bid", "ask")}
        got = {side: [(int(px), int(q)) for px, q in zip(smp[f"{side}_px"][k],
                                                          smp[f"{side}_qty"][k], strict=True)
                      if q] for side in ("bid", "ask")}
        assert got == ticks, i
