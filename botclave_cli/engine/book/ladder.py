"""The book's data structure: a price ladder around the mid plus sorted arrays for the far levels.

Prices in integer ticks, sizes in integer lots; numba functions over plain arrays, called by the
sequencing kernel (``kernel``): ``apply_rows`` once per message, the rest rarely.

Why a ladder: most updates land within a few thousand ticks of the touch (USD-M BTC: 90 % within
6,000 ticks) and on every depth of a thin book (the synthetic market), so a dense array indexed
by ``price - base`` (one per side, ``lad[side]``) makes an update O(1) with no shifting. Levels
outside the window ``[base, base + W)`` (the far tails, 4 % of USD-M updates) live in per-side
sorted arrays ``keys[side, :n]`` / ``qty[side, :n]``: bids store the price, asks minus the price,
so on both sides the best level is the *last* element. A removed overflow level stays as a
tombstone (qty 0) so deep levels that flicker cost no shift; trailing tombstones are trimmed at
once and the side is compacted when they pile up. When the mid leaves the middle half of the
window, ``recentre`` moves the window onto it (O(W + levels), rare: the price must travel W/4).

State slots (``bs``): the window base (ticks), the ladder's best index per side (bid: -1 when
none, ask: W when none), levels held in the ladder per side, overflow length and tombstones per
side. ``keys`` must hold every level of a side (ladder + overflow) so that re-centring never
runs out of room; the caller grows it before a message that could overflow it.
"""

from __future__ import annotations

import numba
import numpy as np

BASE, BEST_BID, BEST_ASK, LAD_BID, LAD_ASK, OV_BID, OV_ASK, TOMB_BID, TOMB_ASK = range(9)
BOOK_STATE_SIZE = 9


def new_book(ladder_ticks: int, capacity: int) -> tuple[np.ndarray, ...]:
    """Empty book arrays: ladder (2, W), overflow keys and qty (2, capacity), state slots."""
    lad = np.zeros((2, ladder_ticks), np.int64)
    bs = np.zeros(BOOK_STATE_SIZE, np.int64)
    bs[BEST_BID], bs[BEST_ASK] = -1, ladder_ticks
    return lad, np.zeros((2, capacity), np.int64), np.zeros((2, capacity), np.int64), bs


@numba.njit(cache=True)
def _overflow_set(keys, qty, bs, s, key, q):
    """Set one level of side ``s`` in the sorted arrays (key: bid price, ask -price)."""
    n, tomb = bs[OV_BID + s], bs[TOMB_BID + s]
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[s, mid] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < n and keys[s, lo] == key:
        if q == 0:
            if qty[s, lo] != 0:
                qty[s, lo] = 0
                tomb += 1
                while n > 0 and qty[s, n - 1] == 0:
                    n -= 1
                    tomb -= 1
        else:
            if qty[s, lo] == 0:
                tomb -= 1
            qty[s, lo] = q
    elif q != 0:  # removing a level the book does not hold is allowed
        t = n
        if tomb > 0:  # a tombstone close by takes the shift: only the levels in between move
            t = lo
            lim = min(n, lo + 16)
            while t < lim and qty[s, t] != 0:
                t += 1
            if t == lim:
                t = lo - 1
                lim = max(-1, lo - 17)
                while t > lim and qty[s, t] != 0:
                    t -= 1
                if t == lim:
                    t = n
        if t >= lo:  # shift [lo, t) up by one (t = n: append room at the end)
            for j in range(t, lo, -1):
                keys[s, j] = keys[s, j - 1]
                qty[s, j] = qty[s, j - 1]
            keys[s, lo] = key
            qty[s, lo] = q
        else:  # shift (t, lo) down by one
            for j in range(t, lo - 1):
                keys[s, j] = keys[s, j + 1]
                qty[s, j] = qty[s, j + 1]
            keys[s, lo - 1] = key
            qty[s, lo - 1] = q
        if t == n:
            n += 1
        else:
            tomb -= 1
    if tomb > 64 and 2 * tomb > n:
        w = 0
        for r in range(n):
            if qty[s, r] != 0:
                keys[s, w] = keys[s, r]
                qty[s, w] = qty[s, r]
                w += 1
        n, tomb = w, 0
    bs[OV_BID + s], bs[TOMB_BID + s] = n, tomb


@numba.njit(cache=True)
def apply_rows(lad, keys, qty, bs, lv_side, lv_px, lv_qty, start, end):
    """Apply level rows ``[start, end)`` (side 0 bid / 1 ask / -1 none, price in ticks, qty in
    lots, qty 0 removes the level) in order; re-centre the window if the mid left its middle.

    Returns (best bid px, qty, best ask px, qty, ``levels_held``); qty 0 for an empty side.
    One call per message: the per-level work is written out here, not in helpers, because
    each numba call that takes arrays pays reference counting (~100 ns for four arrays).
    """
    w = lad.shape[1]
    base = bs[BASE]
    bb, ba = bs[BEST_BID], bs[BEST_ASK]
    nb, na = bs[LAD_BID], bs[LAD_ASK]
    for r in range(start, end):
        s = lv_side[r]
        if s < 0:
            continue
        px, q = lv_px[r], lv_qty[r]
        i = px - base
        if i < 0 or i >= w:
            _overflow_set(keys, qty, bs, s, px if s == 0 else -px, q)
            continue
        old = lad[s, i]
        lad[s, i] = q
        if s == 0:
            if q != 0:
                if old == 0:
                    nb += 1
                    bb = max(bb, i)
            elif old != 0:
                nb -= 1
                if i == bb:
                    if nb == 0:
                        bb = -1
                    else:
                        while lad[0, bb] == 0:
                            bb -= 1
        elif q != 0:
            if old == 0:
                na += 1
                ba = min(ba, i)
        elif old != 0:
            na -= 1
            if i == ba:
                if na == 0:
                    ba = w
                else:
                    while lad[1, ba] == 0:
                        ba += 1
    bs[BEST_BID], bs[BEST_ASK], bs[LAD_BID], bs[LAD_ASK] = bb, ba, nb, na
    # the best of each side: the ladder's unless an overflow level lies beyond it
    ob, oa = bs[OV_BID], bs[OV_ASK]
    bpx, bq, apx, aq = 0, 0, 0, 0
    if bb >= 0 and (ob == 0 or base + bb > keys[0, ob - 1]):
        bpx, bq = base + bb, lad[0, bb]
    elif ob > 0:
        bpx, bq = keys[0, ob - 1], qty[0, ob - 1]
    if ba < w and (oa == 0 or base + ba < -keys[1, oa - 1]):
        apx, aq = base + ba, lad[1, ba]
    elif oa > 0:
        apx, aq = -keys[1, oa - 1], qty[1, oa - 1]
    if bq != 0 and aq != 0:
        centre = (bpx + apx) // 2
    else:
        centre = bpx if bq != 0 else apx if aq != 0 else base + w // 2
    if centre - base < w // 4 or centre - base >= w - w // 4:
        recentre(lad, keys, qty, bs, centre)
    held = max(bs[LAD_BID] + bs[OV_BID], bs[LAD_ASK] + bs[OV_ASK])  # levels_held, inline
    return bpx, bq, apx, aq, held


@numba.njit(cache=True)
def clear(lad, bs, centre):
    """Empty the book and centre the window on ``centre`` ticks."""
    if bs[LAD_BID] or bs[LAD_ASK]:  # the counts are exact: a ladder holding none is all zeros
        lad[:, :] = 0
    w = lad.shape[1]
    bs[:] = 0
    bs[BASE] = centre - w // 2
    bs[BEST_BID], bs[BEST_ASK] = -1, w


@numba.njit(cache=True)
def side_levels(lad, keys, qty, bs, s, out_px, out_q):
    """Best ``len(out_px)`` levels of side ``s``, best first; returns how many there are."""
    base = bs[BASE]
    left = bs[LAD_BID + s]  # ladder levels not yet emitted (stops the scan at the last one)
    i = bs[BEST_BID + s]
    r = bs[OV_BID + s] - 1
    step = -1 if s == 0 else 1
    sign = 1 if s == 0 else -1
    k = 0
    while k < out_px.shape[0]:
        while r >= 0 and qty[s, r] == 0:
            r -= 1
        if left > 0:
            while lad[s, i] == 0:
                i += step
        if left == 0 and r < 0:
            break
        # bids descend, asks ascend: the overflow level comes first when it is better
        if r >= 0 and (left == 0 or keys[s, r] > sign * (base + i)):
            out_px[k] = sign * keys[s, r]
            out_q[k] = qty[s, r]
            r -= 1
        else:
            out_px[k] = base + i
            out_q[k] = lad[s, i]
            i += step
            left -= 1
        k += 1
    return k


@numba.njit(cache=True)
def recentre(lad, keys, qty, bs, centre):
    """Move the window onto ``centre``: every level goes to the ladder or the overflow anew."""
    w = lad.shape[1]
    old_base = bs[BASE]
    new_base = centre - w // 2
    for s in range(2):
        n_lad = bs[LAD_BID + s]
        n = n_lad + bs[OV_BID + s]
        tk = np.empty(n, np.int64)
        tq = np.empty(n, np.int64)
        # every level in ascending key order (bid: price, ask: -price), merging ladder and overflow
        k, r = 0, 0
        i = 0 if s == 0 else w - 1
        step = 1 if s == 0 else -1
        left = n_lad
        lkey = 0
        while left > 0 or r < bs[OV_BID + s]:
            if r < bs[OV_BID + s] and qty[s, r] == 0:
                r += 1
                continue
            if left > 0:
                while lad[s, i] == 0:
                    i += step
                lkey = old_base + i if s == 0 else -(old_base + i)
            if left > 0 and (r >= bs[OV_BID + s] or lkey < keys[s, r]):
                tk[k], tq[k] = lkey, lad[s, i]
                lad[s, i] = 0
                i += step
                left -= 1
            else:
                tk[k], tq[k] = keys[s, r], qty[s, r]
                r += 1
            k += 1
        n_ov, n_lad, best_i = 0, 0, -1 if s == 0 else w
        for j in range(k):
            px = tk[j] if s == 0 else -tk[j]
            i = px - new_base
            if 0 <= i < w:
                lad[s, i] = tq[j]
                n_lad += 1
                best_i = i  # keys ascend, so the last one placed is the best
            else:
                keys[s, n_ov], qty[s, n_ov] = tk[j], tq[j]
                n_ov += 1
        bs[LAD_BID + s], bs[OV_BID + s], bs[TOMB_BID + s], bs[BEST_BID + s] = n_lad, n_ov, 0, best_i
    bs[BASE] = new_base


@numba.njit(cache=True)
def levels_held(bs):
    """Most levels one side may hold (tombstones included): the room the sorted arrays need."""
    return max(bs[LAD_BID] + bs[OV_BID], bs[LAD_ASK] + bs[OV_ASK])
