"""The order-book state machine: integer ticks and lots over numpy arrays, compiled by numba.

One call replays a whole message stream (REST snapshots and depth diffs in capture ``seq``
order) and applies Binance's sequencing rules; the live recorder calls the same function with
one message at a time. The Python side (``dom_builder``) turns Polars frames into the flat
arrays below and back; nothing here knows Polars, the network or the terminal.

Book layout: ``ladder`` (a price ladder around the mid plus sorted arrays for the far
levels); the book is the four arrays ``lad, keys, qty, bs`` it describes.

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

from botclave_cli.engine.book.ladder import apply_rows, clear, levels_held, side_levels

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

# meta slots (the sequencing state and the counters)
STATUS, LAST_U, SNAP_L, SEGMENT, BUFFER_FROM, NEXT_SAMPLE, N_SAMPLES = 0, 1, 2, 3, 4, 5, 6
LEVELS_APPLIED, DIFFS_APPLIED, GAPS, CROSSED, STALE, SYNCS, STOP = 7, 8, 9, 10, 11, 12, 13
CUR_TS, RESYNCS, SNAPSHOT_LEVELS, LAST_APPLIED_MSG, UNTIMED_SYNC = 14, 15, 16, 17, 18
META_SIZE = 19

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


@numba.njit(cache=True)
def _snapshot_centre(lv_side, lv_px, start, end):
    """Mid of a snapshot's rows in ticks (its only side's best when one side is empty)."""
    bid, ask = -1, -1
    for r in range(start, end):
        if lv_side[r] == 0 and (bid < 0 or lv_px[r] > bid):
            bid = lv_px[r]
        elif lv_side[r] == 1 and (ask < 0 or lv_px[r] < ask):
            ask = lv_px[r]
    if bid >= 0 and ask >= 0:
        return (bid + ask) // 2
    return max(bid, ask, 0)


@numba.njit(cache=True, inline="always")
def _sequence(status, snap_l, last_u, first_id, last_id, prev_id, futures):
    """What to do with a diff (scalars only: cheap to inline): ST_BUFFERED, ST_DROPPED,
    ST_STALE, ST_GAP or ST_APPLIED."""
    if status == WAIT_SNAPSHOT:
        return ST_BUFFERED
    if status == SYNCING:
        if futures:
            if last_id < snap_l:
                return ST_DROPPED
            return ST_STALE if first_id > snap_l else ST_APPLIED
        if last_id <= snap_l:
            return ST_DROPPED
        return ST_STALE if first_id > snap_l + 1 else ST_APPLIED
    chained = prev_id == last_u if futures else first_id == last_u + 1
    return ST_APPLIED if chained else ST_GAP


@numba.njit(cache=True)
def _invalidate(meta, m, out_status, out_event, code):
    out_event[m] = code  # kept even if a later snapshot re-uses (and re-labels) this diff
    meta[STATUS] = WAIT_SNAPSHOT
    meta[BUFFER_FROM] = m  # the offending diff itself may be applicable after a new snapshot
    meta[RESYNCS] += 1
    out_status[m] = code


@numba.njit(cache=True)
def _emit_sample(lad, keys, qty, bs, meta, samp_ts, samp_valid, samp_msg, samp_bpx, samp_bq,
                 samp_apx, samp_aq):
    k = meta[N_SAMPLES]
    if k >= samp_ts.shape[0]:
        return
    samp_ts[k] = meta[NEXT_SAMPLE]
    # a loaded snapshot is the exact book at its id; one without exchange time counts only from
    # the next timed message on (it arrived at an unknown time before that message)
    valid = meta[STATUS] != WAIT_SNAPSHOT and meta[UNTIMED_SYNC] == 0
    samp_valid[k] = valid
    samp_msg[k] = meta[LAST_APPLIED_MSG]
    for s in range(2):
        px_out = samp_bpx[k] if s == 0 else samp_apx[k]
        q_out = samp_bq[k] if s == 0 else samp_aq[k]
        got = side_levels(lad, keys, qty, bs, s, px_out, q_out) if valid else 0
        px_out[got:] = 0
        q_out[got:] = 0
    meta[N_SAMPLES] = k + 1


@numba.njit(cache=True)
def _load_snapshot(m, u, ts, lv_start, lv_end, lv_side, lv_px, lv_qty, lad, keys, qty, bs, meta,
                   out_status, out_top, out_segment):
    """Load snapshot m into an emptied book; returns whether it is crossed."""
    clear(lad, bs, _snapshot_centre(lv_side, lv_px, lv_start[m], lv_end[m]))
    bpx, bq, apx, aq, _ = apply_rows(lad, keys, qty, bs, lv_side, lv_px, lv_qty, lv_start[m],
                                     lv_end[m])
    meta[SNAPSHOT_LEVELS] += lv_end[m] - lv_start[m]
    meta[SNAP_L] = u[m]
    meta[LAST_U] = u[m]
    meta[STATUS] = SYNCING
    meta[SEGMENT] += 1
    meta[SYNCS] += 1
    meta[LAST_APPLIED_MSG] = m
    meta[UNTIMED_SYNC] = 1 if ts[m] < 0 else 0
    out_status[m] = ST_SNAPSHOT
    out_top[0, m], out_top[1, m], out_top[2, m], out_top[3, m] = bpx, bq, apx, aq
    out_segment[m] = meta[SEGMENT]
    return bq != 0 and aq != 0 and bpx >= apx


@numba.njit(cache=True)
def run_stream(kind, U, u, pu, ts, lv_start, lv_end, lv_side, lv_px, lv_qty, futures,
               lad, keys, qty, bs, meta, start, stop_ts, out_status, out_event, out_top,
               out_segment, sample_interval, samp_ts, samp_valid, samp_msg, samp_bpx, samp_bq,
               samp_apx, samp_aq):
    """Replay messages ``start..`` in order; returns the index of the first message not processed.

    Stops early (``meta[STOP]``) when a message could overflow the book's sorted arrays (grow
    ``keys``/``qty``, call again from the returned index) or when a message's ``ts`` passes
    ``stop_ts`` (-1: never). ``out_top[:, m]`` = best bid px, qty, best ask px, qty after
    message m. Samples (``sample_interval`` us > 0) hold the book as of each grid time t, i.e.
    after every message with ``ts <= t``; a sample taken while the book is not synced is invalid.

    A snapshot sends the loop back over the diffs buffered before it (``snap_m`` marks the
    snapshot to return to), so that every diff goes through the one code path below: the diff
    path calls no helper that takes arrays except ``apply_rows`` (see its docstring for why).
    """
    n_msg = kind.shape[0]
    cap = keys.shape[1]
    held = levels_held(bs)
    meta[STOP] = STOP_DONE
    snap_m = -1  # >= 0 while re-reading the diffs buffered before snapshot snap_m
    snap_crossed = False
    m = start
    while m < n_msg:
        if snap_m >= 0:
            if m == snap_m:  # buffer replayed: the snapshot's own place in the stream
                if meta[STATUS] == SYNCING and snap_crossed:
                    meta[CROSSED] += 1
                    _invalidate(meta, m, out_status, out_event, ST_CROSSED)
                snap_m = -1
                m += 1
                continue
            if kind[m] != DIFF:
                m += 1
                continue
        else:
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
                        _emit_sample(lad, keys, qty, bs, meta, samp_ts, samp_valid, samp_msg,
                                     samp_bpx, samp_bq, samp_apx, samp_aq)
                        meta[NEXT_SAMPLE] += sample_interval
                meta[UNTIMED_SYNC] = 0
                if t > meta[CUR_TS]:
                    meta[CUR_TS] = t
            # room for the worst case: every row of this message (and of a replayed buffer)
            need = lv_end[m] - lv_start[m]
            if kind[m] == SNAPSHOT and meta[STATUS] != SYNCED:
                for j in range(meta[BUFFER_FROM], m):
                    need += lv_end[j] - lv_start[j]
                if need > cap:
                    meta[STOP] = STOP_NEED_GROW
                    return m
            elif held + need > cap:
                meta[STOP] = STOP_NEED_GROW
                return m
            if kind[m] == SNAPSHOT:
                if meta[STATUS] == SYNCED:
                    out_status[m] = ST_SNAPSHOT_IGNORED
                    m += 1
                    continue
                snap_crossed = _load_snapshot(m, u, ts, lv_start, lv_end, lv_side, lv_px, lv_qty,
                                              lad, keys, qty, bs, meta, out_status, out_top,
                                              out_segment)
                held = levels_held(bs)
                snap_m = m
                m = meta[BUFFER_FROM]
                continue
        # a diff
        action = _sequence(meta[STATUS], meta[SNAP_L], meta[LAST_U], U[m], u[m], pu[m], futures)
        if action == ST_BUFFERED or action == ST_DROPPED:
            out_status[m] = action
        elif action == ST_STALE or action == ST_GAP:
            meta[STALE if action == ST_STALE else GAPS] += 1
            _invalidate(meta, m, out_status, out_event, action)
        else:
            meta[STATUS] = SYNCED
            bpx, bq, apx, aq, held = apply_rows(lad, keys, qty, bs, lv_side, lv_px, lv_qty,
                                                lv_start[m], lv_end[m])
            meta[LAST_U] = u[m]
            meta[DIFFS_APPLIED] += 1
            meta[LEVELS_APPLIED] += lv_end[m] - lv_start[m]
            meta[LAST_APPLIED_MSG] = m
            if bq != 0 and aq != 0 and bpx >= apx:
                meta[CROSSED] += 1
                _invalidate(meta, m, out_status, out_event, ST_CROSSED)
            else:
                out_status[m] = ST_APPLIED
                out_top[0, m], out_top[1, m], out_top[2, m], out_top[3, m] = bpx, bq, apx, aq
                out_segment[m] = meta[SEGMENT]
        m += 1
    return n_msg


@numba.njit(cache=True)
def book_levels(lad, keys, qty, bs, depth):
    """Top ``depth`` levels per side, best first: bid px, bid qty, ask px, ask qty (ticks/lots)."""
    bpx, bq = np.empty(depth, np.int64), np.empty(depth, np.int64)
    apx, aq = np.empty(depth, np.int64), np.empty(depth, np.int64)
    nb = side_levels(lad, keys, qty, bs, 0, bpx, bq)
    na = side_levels(lad, keys, qty, bs, 1, apx, aq)
    return bpx[:nb], bq[:nb], apx[:na], aq[:na]
