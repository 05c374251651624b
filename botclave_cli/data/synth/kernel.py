"""The sequential heart of the synthetic market: one L2 book, trades against it, diffs out.

Everything is integer: prices are tick offsets from a base, sizes are lots. Per book interval
``k`` (``[t0 + k*dt, t0 + (k+1)*dt)``) the kernel

1. executes the interval's aggressive orders in time order at the best ask (buy) or best bid
   (sell); an order larger than the level walks the book, one print per level;
2. moves the best bid to ``target[k]``: ``mode`` 0 sweeps (aggressive prints at every level
   taken, the usual way price moves here, so that price and CVD move together), mode 1 shifts
   (the levels are cancelled, no prints: price moves on passive flow);
3. applies the active overrides (walls, the refilling absorption level);
4. keeps ``depth`` levels per side, one per tick from the touch (new orders fill empty ticks,
   levels beyond the depth are cancelled), and replaces one random level (order churn);
5. publishes a diff of every level that changed since the previous diff, and the quote.

So after every diff the best bid is ``target[k]`` and the best ask is ``target[k] + 1``, and the
book never crosses. Sweep prints of interval ``k`` carry the time ``t0 + (k+1)*dt - 2``; the diff
carries ``t0 + (k+1)*dt - 1``, after every trade of its interval.
"""

from __future__ import annotations

import numpy as np
from numba import njit

BID = 0
ASK = 1


@njit(cache=True)
def _touch(book, flags, dirty, n_dirty, side, p):
    if flags[side, p] == 0:
        flags[side, p] = 1
        dirty[n_dirty, 0] = side
        dirty[n_dirty, 1] = p
        n_dirty += 1
    return n_dirty


@njit(cache=True)
def _pinned(ov_k0, ov_k1, ov_side, ov_tick, k, side, p):
    for o in range(ov_k0.shape[0]):
        if ov_k0[o] <= k < ov_k1[o] and ov_side[o] == side and ov_tick[o] == p:
            return True
    return False


@njit(cache=True)
def simulate(
    n_ticks, depth, t0, dt,
    tr_k, tr_t, tr_buy, tr_lots,
    target, mode,
    ov_k0, ov_k1, ov_side, ov_tick, ov_lots, ov_reset,
    pool, jig_side, jig_off,
    snap_k, snap_levels,
    cap_prints, cap_rows,
    k_lo, k_hi, book, pub, flags, dirty, scal,
):
    """Run the book over intervals ``k_lo..k_hi-1`` (a day: the orders, ``jig_*`` and
    snapshots given are that span's; ``target``, ``mode`` and the overrides cover the whole
    plan). The book carries over from the previous span in ``book``, ``pub``, ``flags``,
    ``dirty`` and ``scal`` (pool cursor, best bid, best ask, lowest bid and highest ask kept,
    started), which the call updates in place. Returns the output arrays and their fill
    counts; a negative count means the capacity was too small (the caller restores the carried
    state and retries with more)."""
    n_k = k_hi - k_lo
    pool_mask = pool.shape[0] - 1
    cur = scal[0]

    p_t = np.empty(cap_prints, np.int64)
    p_tick = np.empty(cap_prints, np.int64)
    p_lots = np.empty(cap_prints, np.int64)
    p_buy = np.empty(cap_prints, np.int8)
    n_p = 0
    d_k = np.empty(cap_rows, np.int64)
    d_side = np.empty(cap_rows, np.int8)
    d_tick = np.empty(cap_rows, np.int64)
    d_lots = np.empty(cap_rows, np.int64)
    n_d = 0
    q = np.empty((n_k, 4), np.int64)  # bid tick, bid lots, ask tick, ask lots after each diff
    n_snap = snap_k.shape[0]
    s_idx = np.empty(n_snap * 2 * snap_levels, np.int64)
    s_side = np.empty(n_snap * 2 * snap_levels, np.int8)
    s_level = np.empty(n_snap * 2 * snap_levels, np.int64)
    s_tick = np.empty(n_snap * 2 * snap_levels, np.int64)
    s_lots = np.empty(n_snap * 2 * snap_levels, np.int64)
    n_s = 0
    next_snap = 0

    bb, ba, bid_min, ask_max = scal[1], scal[2], scal[3], scal[4]
    if scal[5] == 0:
        bb = target[k_lo]
        for i in range(depth):
            book[BID, bb - i] = pool[cur & pool_mask]
            cur += 1
            book[ASK, bb + 1 + i] = pool[cur & pool_mask]
            cur += 1
        ba = bb + 1
        bid_min = bb - depth + 1
        ask_max = bb + depth
        for side in range(2):
            for p in range(n_ticks):
                pub[side, p] = book[side, p]
        scal[5] = 1

    ti = 0
    n_tr = tr_k.shape[0]
    for k in range(k_lo, k_hi):
        if next_snap < n_snap and snap_k[next_snap] == k:
            for side in range(2):
                level = 0
                p = bb if side == BID else ba
                while level < snap_levels and bid_min <= p <= ask_max:
                    if book[side, p] > 0:
                        s_idx[n_s] = next_snap
                        s_side[n_s] = side
                        s_level[n_s] = level
                        s_tick[n_s] = p
                        s_lots[n_s] = book[side, p]
                        n_s += 1
                        level += 1
                    p = p - 1 if side == BID else p + 1
            next_snap += 1
        n_dirty = 0
        # 1. aggressive orders of this interval
        while ti < n_tr and tr_k[ti] == k:
            left = tr_lots[ti]
            buy = tr_buy[ti] == 1
            while left > 0:
                p = ba if buy else bb
                if p < bid_min or p > ask_max:
                    break  # the side is empty: the rest of the order is not filled
                side = ASK if buy else BID
                fill = min(left, book[side, p])
                if fill > 0:
                    if n_p >= cap_prints:
                        return (p_t, p_tick, p_lots, p_buy, -1, d_k, d_side, d_tick, d_lots, n_d,
                                q, s_idx, s_side, s_level, s_tick, s_lots, n_s)
                    p_t[n_p] = tr_t[ti]
                    p_tick[n_p] = p
                    p_lots[n_p] = fill
                    p_buy[n_p] = 1 if buy else 0
                    n_p += 1
                    book[side, p] -= fill
                    left -= fill
                    n_dirty = _touch(book, flags, dirty, n_dirty, side, p)
                if book[side, p] == 0:
                    if buy:
                        ba += 1
                        while ba <= ask_max and book[ASK, ba] == 0:
                            ba += 1
                    else:
                        bb -= 1
                        while bb >= bid_min and book[BID, bb] == 0:
                            bb -= 1
            ti += 1
        # 2. move the touch to the target
        tgt = target[k]
        ts_end = t0 + (k + 1) * dt - 2
        if tgt > bb:
            for p in range(max(ba, bid_min), min(tgt, ask_max) + 1):
                if book[ASK, p] > 0:
                    if mode[k] == 0:
                        if n_p >= cap_prints:
                            return (p_t, p_tick, p_lots, p_buy, -1, d_k, d_side, d_tick, d_lots,
                                    n_d, q, s_idx, s_side, s_level, s_tick, s_lots, n_s)
                        p_t[n_p] = ts_end
                        p_tick[n_p] = p
                        p_lots[n_p] = book[ASK, p]
                        p_buy[n_p] = 1
                        n_p += 1
                    book[ASK, p] = 0
                    n_dirty = _touch(book, flags, dirty, n_dirty, ASK, p)
        elif tgt < bb:
            for p in range(min(bb, ask_max), max(tgt, bid_min - 1), -1):
                if book[BID, p] > 0:
                    if mode[k] == 0:
                        if n_p >= cap_prints:
                            return (p_t, p_tick, p_lots, p_buy, -1, d_k, d_side, d_tick, d_lots,
                                    n_d, q, s_idx, s_side, s_level, s_tick, s_lots, n_s)
                        p_t[n_p] = ts_end
                        p_tick[n_p] = p
                        p_lots[n_p] = book[BID, p]
                        p_buy[n_p] = 0
                        n_p += 1
                    book[BID, p] = 0
                    n_dirty = _touch(book, flags, dirty, n_dirty, BID, p)
        bb = tgt
        ba = tgt + 1
        # 3. overrides (walls, the refilling absorption level); a wall that ends is pulled back
        # to an ordinary size unless it was traded away
        for o in range(ov_k0.shape[0]):
            p = ov_tick[o]
            side = ov_side[o]
            inside = (side == BID and p <= bb) or (side == ASK and p >= ba)
            if ov_k0[o] <= k < ov_k1[o] and inside:
                book[side, p] = ov_lots[o]
                n_dirty = _touch(book, flags, dirty, n_dirty, side, p)
            elif k == ov_k1[o] and ov_reset[o] == 1 and book[side, p] > 0:
                book[side, p] = pool[cur & pool_mask]
                cur += 1
                n_dirty = _touch(book, flags, dirty, n_dirty, side, p)
        # 4. depth maintenance: fill every tick next to the touch, cancel beyond the depth
        lo = bb - depth + 1
        hi = bb + depth
        for p in range(bid_min, min(lo, bb + 1)):
            if book[BID, p] > 0:
                book[BID, p] = 0
                n_dirty = _touch(book, flags, dirty, n_dirty, BID, p)
        for p in range(max(hi + 1, ba), ask_max + 1):
            if book[ASK, p] > 0:
                book[ASK, p] = 0
                n_dirty = _touch(book, flags, dirty, n_dirty, ASK, p)
        for p in range(lo, bb + 1):
            if book[BID, p] == 0:
                book[BID, p] = pool[cur & pool_mask]
                cur += 1
                n_dirty = _touch(book, flags, dirty, n_dirty, BID, p)
        for p in range(ba, hi + 1):
            if book[ASK, p] == 0:
                book[ASK, p] = pool[cur & pool_mask]
                cur += 1
                n_dirty = _touch(book, flags, dirty, n_dirty, ASK, p)
        bid_min = lo
        ask_max = hi
        side = jig_side[k - k_lo]
        p = bb - jig_off[k - k_lo] if side == BID else ba + jig_off[k - k_lo]
        if not _pinned(ov_k0, ov_k1, ov_side, ov_tick, k, side, p):
            book[side, p] = pool[cur & pool_mask]
            cur += 1
            n_dirty = _touch(book, flags, dirty, n_dirty, side, p)
        # 5. publish
        emitted = 0
        for j in range(n_dirty):
            side = dirty[j, 0]
            p = dirty[j, 1]
            flags[side, p] = 0
            if book[side, p] != pub[side, p]:
                if n_d >= cap_rows:
                    return (p_t, p_tick, p_lots, p_buy, n_p, d_k, d_side, d_tick, d_lots, -1,
                            q, s_idx, s_side, s_level, s_tick, s_lots, n_s)
                d_k[n_d] = k
                d_side[n_d] = side
                d_tick[n_d] = p
                d_lots[n_d] = book[side, p]
                n_d += 1
                pub[side, p] = book[side, p]
                emitted += 1
        if emitted == 0:  # an empty diff still advances the update id: one null row
            if n_d >= cap_rows:
                return (p_t, p_tick, p_lots, p_buy, n_p, d_k, d_side, d_tick, d_lots, -1,
                        q, s_idx, s_side, s_level, s_tick, s_lots, n_s)
            d_k[n_d] = k
            d_side[n_d] = -1
            d_tick[n_d] = 0
            d_lots[n_d] = 0
            n_d += 1
        q[k - k_lo, 0] = bb
        q[k - k_lo, 1] = book[BID, bb]
        q[k - k_lo, 2] = ba
        q[k - k_lo, 3] = book[ASK, ba]
    scal[0], scal[1], scal[2], scal[3], scal[4] = cur, bb, ba, bid_min, ask_max
    return (p_t, p_tick, p_lots, p_buy, n_p, d_k, d_side, d_tick, d_lots, n_d,
            q, s_idx, s_side, s_level, s_tick, s_lots, n_s)
