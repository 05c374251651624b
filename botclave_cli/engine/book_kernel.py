"""The order-book state machine: integer ticks and lots over numpy arrays, compiled by numba.

One call replays a whole message stream (REST snapshots and depth diffs in capture ``seq``
order) and applies Binance's sequencing rules; the live recorder calls the same function with
one message at a time. The Python side (``dom_builder``) turns Polars frames into the flat
arrays below and back; nothing here knows Polars, the network or the terminal.

Book layout: ``keys[side, :n]`` sorted ascending, ``qty[side, :n]`` beside them; bids store the
price in ticks, asks store minus the price in ticks, so on both sides the best level is the
*last* element and the frequent updates near the top shift only a few elements.

Messages: ``kind`` (SNAPSHOT / DIFF), first/last/previous update ids ``U``/``u``/``pu`` (a
snapshot has ``U = u = lastUpdateId``), exchange time ``ts`` in us (-1 when unknown), and the
half-open range ``[lv_start, lv_end)`` of its rows in the level arrays (side 0 bid / 1 ask /
-1 none, price in ticks, quantity in lots; 0 removes the level).

Sequencing (Binance's documented procedures, see ../shared/README.md):
- diffs that arrive while no book is synced are buffered (``meta[BUFFER_FROM]`` marks where the
  buffer starts); a snapshot with last update id L replays the buffer, then the stream;
- spot: drop ``u <= L``; the first applied diff has ``U <= L + 1 <= u``; then ``U == prev u + 1``;
- futures: drop ``u < L``; the first applied diff has ``U <= L <= u``; then ``pu == prev u``;
- a break (gap), a crossed book after a diff, or a snapshot older than the buffered stream
  (stale) invalidates the book until the next snapshot; ``meta[RESYNCS]`` counts the requests.
"""

from __future__ import annotations

import numba
import numpy as np

# message kinds
SNAPSHOT = 0
DIFF = 1

# per-message status codes (``out_status``)
ST_UNSEEN = -1
ST_APPLIED = 0
ST_DROPPED = 1  # already covered by the snapshot
ST_BUFFERED = 2  # arrived while no book was synced, and no later snapshot used it
ST_GAP = 3  # broke the update-id chain: book invalid
ST_SNAPSHOT = 4  # snapshot loaded
ST_STALE = 5  # snapshot (or the diff that revealed it) older than the stream: book invalid
ST_SNAPSHOT_IGNORED = 6  # snapshot while the book was already synced
ST_CROSSED = 7  # diff applied, book crossed: invalid

# book status (``meta[STATUS]``)
WAIT_SNAPSHOT = 0
SYNCING = 1
SYNCED = 2

# meta slots
N_BID, N_ASK, STATUS, LAST_U, SNAP_L, SEGMENT, BUFFER_FROM, NEXT_SAMPLE = 0, 1, 2, 3, 4, 5, 6, 7
N_SAMPLES, LEVELS_APPLIED, DIFFS_APPLIED, GAPS = 8, 9, 10, 11
CROSSED, STALE, SYNCS, STOP = 12, 13, 14, 15
CUR_TS, RESYNCS, SNAPSHOT_LEVELS, LAST_APPLIED_MSG, UNTIMED_SYNC = 16, 17, 18, 19, 20
TOMB_BID, TOMB_ASK = 21, 22  # removed levels still in the arrays (qty 0), per side
META_SIZE = 24

# stop codes (``meta[STOP]``)
STOP_DONE = 0
STOP_NEED_GROW = 1
STOP_AT_TS = 2


def new_meta() -> np.ndarray:
    meta = np.zeros(META_SIZE, dtype=np.int64)
    meta[STATUS] = WAIT_SNAPSHOT
    meta[BUFFER_FROM] = 0
    meta[NEXT_SAMPLE] = -1
    meta[SEGMENT] = -1
    meta[CUR_TS] = -1
    meta[LAST_APPLIED_MSG] = -1
    return meta


@numba.njit(cache=True, inline="always")
def _set_level(keys, qty, n, key, q, tomb):
    """Set one level on one side; returns (level count, tombstones).

    A removed level stays as a tombstone (qty 0) so that removing and re-adding the deep levels
    that flicker costs no shift; trailing tombstones are trimmed at once, so ``keys[n - 1]`` is
    always the best level, and the caller compacts when tombstones pile up.
    """
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < n and keys[lo] == key:
        if q == 0:
            if qty[lo] != 0:
                qty[lo] = 0
                tomb += 1
                while n > 0 and qty[n - 1] == 0:
                    n -= 1
                    tomb -= 1
            return n, tomb
        if qty[lo] == 0:
            tomb -= 1
        qty[lo] = q
        return n, tomb
    if q == 0:
        return n, tomb  # removing a level the book does not hold is allowed
    if tomb > 0:
        # a tombstone close by takes the shift: only the levels in between move
        t = lo
        lim = min(n, lo + 16)
        while t < lim and qty[t] != 0:
            t += 1
        if t < lim:
            for j in range(t, lo, -1):
                keys[j] = keys[j - 1]
                qty[j] = qty[j - 1]
            keys[lo] = key
            qty[lo] = q
            return n, tomb - 1
        t = lo - 1
        lim = max(-1, lo - 17)
        while t > lim and qty[t] != 0:
            t -= 1
        if t > lim:
            for j in range(t, lo - 1):
                keys[j] = keys[j + 1]
                qty[j] = qty[j + 1]
            keys[lo - 1] = key
            qty[lo - 1] = q
            return n, tomb - 1
    for j in range(n, lo, -1):
        keys[j] = keys[j - 1]
        qty[j] = qty[j - 1]
    keys[lo] = key
    qty[lo] = q
    return n + 1, tomb


@numba.njit(cache=True)
def _compact(keys, qty, n):
    w = 0
    for r in range(n):
        if qty[r] != 0:
            keys[w] = keys[r]
            qty[w] = qty[r]
            w += 1
    return w


@numba.njit(cache=True)
def _apply_levels(keys, qty, meta, lv_side, lv_px, lv_qty, start, end):
    # counts in locals (registers), written back once: meta may alias nothing, numba can't know
    nb, na, tb, ta = meta[N_BID], meta[N_ASK], meta[TOMB_BID], meta[TOMB_ASK]
    bk, bq, ak, aq = keys[0], qty[0], keys[1], qty[1]
    for r in range(start, end):
        side = lv_side[r]
        if side == 0:
            nb, tb = _set_level(bk, bq, nb, lv_px[r], lv_qty[r], tb)
        elif side == 1:
            na, ta = _set_level(ak, aq, na, -lv_px[r], lv_qty[r], ta)
    if tb > 64 and 2 * tb > nb:
        nb = _compact(bk, bq, nb)
        tb = 0
    if ta > 64 and 2 * ta > na:
        na = _compact(ak, aq, na)
        ta = 0
    meta[N_BID], meta[N_ASK], meta[TOMB_BID], meta[TOMB_ASK] = nb, na, tb, ta


@numba.njit(cache=True, inline="always")
def _record_top(m, keys, qty, meta, out_bb_px, out_bb_qty, out_ba_px, out_ba_qty, out_segment):
    nb, na = meta[N_BID], meta[N_ASK]
    out_bb_px[m] = keys[0, nb - 1] if nb > 0 else 0
    out_bb_qty[m] = qty[0, nb - 1] if nb > 0 else 0
    out_ba_px[m] = -keys[1, na - 1] if na > 0 else 0
    out_ba_qty[m] = qty[1, na - 1] if na > 0 else 0
    out_segment[m] = meta[SEGMENT]


@numba.njit(cache=True, inline="always")
def _crossed(keys, meta):
    nb, na = meta[N_BID], meta[N_ASK]
    return nb > 0 and na > 0 and keys[0, nb - 1] >= -keys[1, na - 1]


@numba.njit(cache=True, inline="always")
def _invalidate(meta, m, out_status, out_event, code):
    out_event[m] = code  # kept even if a later snapshot re-uses (and re-labels) this diff
    meta[STATUS] = WAIT_SNAPSHOT
    meta[BUFFER_FROM] = m  # the offending diff itself may be applicable after a new snapshot
    meta[RESYNCS] += 1
    out_status[m] = code


@numba.njit(cache=True, inline="always")
def _on_diff(m, U, u, pu, lv_start, lv_end, lv_side, lv_px, lv_qty, futures, keys, qty, meta,
             out_status, out_event, out_bb_px, out_bb_qty, out_ba_px, out_ba_qty, out_segment):
    status = meta[STATUS]
    if status == WAIT_SNAPSHOT:
        out_status[m] = ST_BUFFERED
        return
    if status == SYNCING:
        snap = meta[SNAP_L]
        if futures:
            if u[m] < snap:
                out_status[m] = ST_DROPPED
                return
            if U[m] > snap:
                meta[STALE] += 1
                _invalidate(meta, m, out_status, out_event, ST_STALE)
                return
        else:
            if u[m] <= snap:
                out_status[m] = ST_DROPPED
                return
            if U[m] > snap + 1:
                meta[STALE] += 1
                _invalidate(meta, m, out_status, out_event, ST_STALE)
                return
        meta[STATUS] = SYNCED
    else:
        chained = pu[m] == meta[LAST_U] if futures else U[m] == meta[LAST_U] + 1
        if not chained:
            meta[GAPS] += 1
            _invalidate(meta, m, out_status, out_event, ST_GAP)
            return
    _apply_levels(keys, qty, meta, lv_side, lv_px, lv_qty, lv_start[m], lv_end[m])
    meta[LAST_U] = u[m]
    meta[DIFFS_APPLIED] += 1
    meta[LEVELS_APPLIED] += lv_end[m] - lv_start[m]
    meta[LAST_APPLIED_MSG] = m
    if _crossed(keys, meta):
        meta[CROSSED] += 1
        _invalidate(meta, m, out_status, out_event, ST_CROSSED)
        return
    out_status[m] = ST_APPLIED
    _record_top(m, keys, qty, meta, out_bb_px, out_bb_qty, out_ba_px, out_ba_qty, out_segment)


@numba.njit(cache=True)
def _emit_sample(keys, qty, meta, samp_ts, samp_valid, samp_msg, samp_bpx, samp_bq, samp_apx,
                 samp_aq):
    k = meta[N_SAMPLES]
    if k >= samp_ts.shape[0]:
        return
    depth = samp_bpx.shape[1]
    samp_ts[k] = meta[NEXT_SAMPLE]
    # a loaded snapshot is the exact book at its id; one without exchange time counts only from
    # the next timed message on (it arrived at an unknown time before that message)
    valid = meta[STATUS] != WAIT_SNAPSHOT and meta[UNTIMED_SYNC] == 0
    samp_valid[k] = valid
    samp_msg[k] = meta[LAST_APPLIED_MSG]
    for side in range(2):
        px_out = samp_bpx if side == 0 else samp_apx
        q_out = samp_bq if side == 0 else samp_aq
        sign = 1 if side == 0 else -1
        r = meta[N_BID + side] - 1
        for i in range(depth):
            while valid and r >= 0 and qty[side, r] == 0:
                r -= 1
            if valid and r >= 0:
                px_out[k, i] = sign * keys[side, r]
                q_out[k, i] = qty[side, r]
                r -= 1
            else:
                px_out[k, i] = 0
                q_out[k, i] = 0
    meta[N_SAMPLES] = k + 1


@numba.njit(cache=True)
def run_stream(kind, U, u, pu, ts, lv_start, lv_end, lv_side, lv_px, lv_qty, futures,
               keys, qty, meta, start, stop_ts,
               out_status, out_event, out_bb_px, out_bb_qty, out_ba_px, out_ba_qty, out_segment,
               sample_interval, samp_ts, samp_valid, samp_msg, samp_bpx, samp_bq, samp_apx,
               samp_aq):
    """Replay messages ``start..`` in order; returns the index of the first message not processed.

    Stops early (``meta[STOP]``) when a message would not fit the book arrays (grow, call again
    from the returned index) or when a message's ``ts`` passes ``stop_ts`` (-1: never).
    Samples (``sample_interval`` us > 0) hold the book as of each grid time t, i.e. after
    every message with ``ts <= t``; a sample taken while the book is not synced is invalid.
    """
    n_msg = kind.shape[0]
    cap = keys.shape[1]
    meta[STOP] = STOP_DONE
    for m in range(start, n_msg):
        t = ts[m]
        if t >= 0:
            if stop_ts >= 0 and t > stop_ts:
                meta[STOP] = STOP_AT_TS
                return m
            if sample_interval > 0:
                if meta[NEXT_SAMPLE] < 0:
                    first = (t + sample_interval - 1) // sample_interval
                    meta[NEXT_SAMPLE] = first * sample_interval
                while meta[NEXT_SAMPLE] < t:
                    _emit_sample(keys, qty, meta, samp_ts, samp_valid, samp_msg, samp_bpx,
                                 samp_bq, samp_apx, samp_aq)
                    meta[NEXT_SAMPLE] += sample_interval
            meta[UNTIMED_SYNC] = 0
            if t > meta[CUR_TS]:
                meta[CUR_TS] = t
        # room for the worst case: every row of this message (and of a replayed buffer) inserted
        need = lv_end[m] - lv_start[m]
        if kind[m] == SNAPSHOT and meta[STATUS] != SYNCED:
            for j in range(meta[BUFFER_FROM], m):
                need += lv_end[j] - lv_start[j]
            if need > cap:
                meta[STOP] = STOP_NEED_GROW
                return m
        elif max(meta[N_BID], meta[N_ASK]) + need > cap:
            meta[STOP] = STOP_NEED_GROW
            return m
        if kind[m] == DIFF:
            _on_diff(m, U, u, pu, lv_start, lv_end, lv_side, lv_px, lv_qty, futures, keys, qty,
                     meta, out_status, out_event, out_bb_px, out_bb_qty, out_ba_px, out_ba_qty,
                     out_segment)
            continue
        if meta[STATUS] == SYNCED:
            out_status[m] = ST_SNAPSHOT_IGNORED
            continue
        meta[N_BID] = 0
        meta[N_ASK] = 0
        meta[TOMB_BID] = 0
        meta[TOMB_ASK] = 0
        _apply_levels(keys, qty, meta, lv_side, lv_px, lv_qty, lv_start[m], lv_end[m])
        meta[SNAPSHOT_LEVELS] += lv_end[m] - lv_start[m]
        meta[SNAP_L] = u[m]
        meta[LAST_U] = u[m]
        meta[STATUS] = SYNCING
        meta[SEGMENT] += 1
        meta[SYNCS] += 1
        meta[LAST_APPLIED_MSG] = m
        meta[UNTIMED_SYNC] = 1 if ts[m] < 0 else 0
        out_status[m] = ST_SNAPSHOT
        _record_top(m, keys, qty, meta, out_bb_px, out_bb_qty, out_ba_px, out_ba_qty, out_segment)
        for j in range(meta[BUFFER_FROM], m):
            if kind[j] == DIFF:
                _on_diff(j, U, u, pu, lv_start, lv_end, lv_side, lv_px, lv_qty, futures, keys,
                         qty, meta, out_status, out_event, out_bb_px, out_bb_qty, out_ba_px,
                         out_ba_qty, out_segment)
        if meta[STATUS] == SYNCING and _crossed(keys, meta):
            meta[CROSSED] += 1
            _invalidate(meta, m, out_status, out_event, ST_CROSSED)
    return n_msg


@numba.njit(cache=True)
def book_levels(keys, qty, meta, depth):
    """Top ``depth`` levels per side, best first: bid px, bid qty, ask px, ask qty (ticks/lots)."""
    out = []
    for side in range(2):
        px = np.empty(depth, np.int64)
        q = np.empty(depth, np.int64)
        sign = 1 if side == 0 else -1
        k = 0
        r = meta[N_BID + side] - 1
        while k < depth and r >= 0:
            if qty[side, r] != 0:
                px[k] = sign * keys[side, r]
                q[k] = qty[side, r]
                k += 1
            r -= 1
        out.append((px[:k], q[:k]))
    return out[0][0], out[0][1], out[1][0], out[1][1]
