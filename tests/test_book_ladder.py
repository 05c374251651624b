"""The ladder book (window + sorted overflow + re-centring) against a dict book, on random
streams whose mid wanders far outside small windows, so that every path runs: updates in the
window and beyond it on both ends, tombstones, compaction, growth and re-centring."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from botclave_cli.engine.book import kernel as K
from botclave_cli.engine.book.dom_builder import DOMBuilder
from tests.test_book_kernel import stream

row = st.tuples(st.sampled_from(["bid", "ask"]), st.integers(0, 40),
                st.sampled_from([0, 0, 1, 2, 3]))
diff = st.tuples(st.integers(-9, 9), st.lists(row, max_size=8))


def set_level(book, px, q):
    if q:
        book[px] = q
    else:
        book.pop(px, None)


def build(mid0, snap_depth, steps):
    """Snapshot + diffs (prices in ticks, tick = lot = 1) and the dict book after each diff.

    Adding a level on one side first removes the other side's levels at or through its price
    (as a market move does), so the book never crosses and every diff applies.
    """
    bids = {mid0 - 1 - k: 1 + k % 3 for k in range(snap_depth)}
    asks = {mid0 + k: 1 + k % 2 for k in range(snap_depth)}
    msgs = [("snap", 10, sorted(bids.items(), reverse=True), sorted(asks.items()))]
    books, mid = [], mid0
    for i, (move, rows) in enumerate(steps):
        mid = min(max(mid + move, 60), 400)
        b_rows, a_rows = [], []
        for side, off, q in rows:
            if side == "bid":
                px = mid - 1 - off
                if q:
                    for p in sorted(p for p in asks if p <= px):
                        a_rows.append((p, 0))
                        del asks[p]
                b_rows.append((px, q))
                set_level(bids, px, q)
            else:
                px = mid + off
                if q:
                    for p in sorted(p for p in bids if p >= px):
                        b_rows.append((p, 0))
                        del bids[p]
                a_rows.append((px, q))
                set_level(asks, px, q)
        msgs.append(("diff", 11 + i, 11 + i, None, 1 + i,
                     [(float(p), float(q)) for p, q in b_rows],
                     [(float(p), float(q)) for p, q in a_rows]))
        books.append((sorted(bids.items(), reverse=True), sorted(asks.items())))
    return msgs, books


@settings(max_examples=60, deadline=None)
@given(mid0=st.integers(80, 300), snap_depth=st.integers(1, 12),
       steps=st.lists(diff, min_size=1, max_size=40),
       ladder=st.sampled_from([4, 8, 16, 64, 65_536]), capacity=st.sampled_from([2, 8, 1024]))
def test_ladder_book_matches_a_dict_book_after_every_diff(mid0, snap_depth, steps, ladder,
                                                         capacity):
    msgs, books = build(mid0, snap_depth, steps)
    builder = DOMBuilder("spot", capacity=capacity, ladder_ticks=ladder)
    depth = 200
    replay = builder.replay(stream(msgs, tick=1.0, lot=1.0), sample_interval_us=1000,
                            sample_depth=depth)
    assert (replay.status[1:] == K.ST_APPLIED).all()
    smp = replay.samples
    for i, (bids, asks) in enumerate(books):
        # top of book right after diff i (price and qty 0 for an empty side)
        top = tuple(int(x) for x in replay.top[i + 1])
        assert top == (*(bids[0] if bids else (0, 0)), *(asks[0] if asks else (0, 0))), i
        # the whole book: diff i has ts i + 1 ms, and the sample at i + 1 ms (sample i, taken
        # when the next diff arrives) holds the book after it
        if i >= len(smp["ts"]):
            break
        assert smp["valid"][i]
        got_b = [(int(p), int(q)) for p, q in zip(smp["bid_px"][i], smp["bid_qty"][i],
                                                   strict=True) if q]
        got_a = [(int(p), int(q)) for p, q in zip(smp["ask_px"][i], smp["ask_qty"][i],
                                                   strict=True) if q]
        assert got_b == bids[:depth] and got_a == asks[:depth], i
    state = builder.state(depth)
    final_b, final_a = books[-1]
    assert list(zip(state.bid_price.tolist(), state.bid_qty.tolist(), strict=True)) == \
        [(float(p), float(q)) for p, q in final_b]
    assert list(zip(state.ask_price.tolist(), state.ask_qty.tolist(), strict=True)) == \
        [(float(p), float(q)) for p, q in final_a]
