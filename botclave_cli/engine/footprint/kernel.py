"""One pass over trades sorted by bar: per-bar OHLC/volume/running delta and per-level cells.

Why numba and not a Polars group_by: the running delta's max/min is sequential within a bar, and
with trades already in bar order a single loop replaces two hash group-bys and the column
preparation they need (measured: ~1 s vs ~0.05 s for 10M trades on 2 cores). Everything is
integer (ticks, lots, counts), so the result is exact and independent of chunking.

Inputs: ``bar_id`` (non-decreasing), ``px`` (ticks), ``level`` (ticks, multiple of the row),
``lots``, ``buy`` (1 = aggressor bought). Levels inside a bar are emitted low to high, only
where a trade printed.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _bar_bounds(bar_id: np.ndarray) -> np.ndarray:
    n = bar_id.shape[0]
    count = 1 if n else 0
    for i in range(1, n):
        if bar_id[i] != bar_id[i - 1]:
            count += 1
    out = np.empty(count + 1, np.int64)
    k = 0
    if n:
        out[0] = 0
        k = 1
    for i in range(1, n):
        if bar_id[i] != bar_id[i - 1]:
            out[k] = i
            k += 1
    out[count] = n
    return out


@numba.njit(cache=True)
def footprint_pass(bar_id, px, level, lots, buy, row):
    """Returns (bars: int64[n_bars, 13], levels: int64[n_levels, 6]).

    bar columns: bar_id, first row, last row, open, high, low, close, volume, buy volume,
    trade count, running-delta max, running-delta min, close level.
    level columns: bar index (0-based row of ``bars``), level, ask lots, bid lots, ask count,
    bid count.
    """
    bounds = _bar_bounds(bar_id)
    n_bars = bounds.shape[0] - 1
    bars = np.empty((n_bars, 13), np.int64)
    lvl_lo = np.empty(n_bars, np.int64)
    lvl_n = np.zeros(n_bars, np.int64)
    bound = 0  # a bar has at most min(grid rows, trades) traded levels
    for b in range(n_bars):
        s = bounds[b]
        e = bounds[b + 1]
        lo = level[s]
        hi = level[s]
        for i in range(s + 1, e):
            if level[i] < lo:
                lo = level[i]
            if level[i] > hi:
                hi = level[i]
        m = (hi - lo) // row + 1
        lvl_lo[b] = lo
        lvl_n[b] = m
        bound += min(m, e - s)
    levels = np.empty((bound, 6), np.int64)
    k = 0
    for b in range(n_bars):
        s = bounds[b]
        e = bounds[b + 1]
        lo = lvl_lo[b]
        m = lvl_n[b]
        cell = np.zeros((m, 4), np.int64)
        cnt = np.zeros(m, np.int64)
        h = px[s]
        low = px[s]
        vol = 0
        vbuy = 0
        run = 0
        dmax = 0
        dmin = 0
        for i in range(s, e):
            p = px[i]
            if p > h:
                h = p
            if p < low:
                low = p
            q = lots[i]
            j = (level[i] - lo) // row
            cnt[j] += 1
            vol += q
            if buy[i]:
                vbuy += q
                run += q
                cell[j, 0] += q
                cell[j, 2] += 1
            else:
                run -= q
                cell[j, 1] += q
                cell[j, 3] += 1
            if i == s or run > dmax:
                dmax = run
            if i == s or run < dmin:
                dmin = run
        bars[b, 0] = bar_id[s]
        bars[b, 1] = s
        bars[b, 2] = e - 1
        bars[b, 3] = px[s]
        bars[b, 4] = h
        bars[b, 5] = low
        bars[b, 6] = px[e - 1]
        bars[b, 7] = vol
        bars[b, 8] = vbuy
        bars[b, 9] = e - s
        bars[b, 10] = dmax
        bars[b, 11] = dmin
        bars[b, 12] = level[e - 1]
        for j in range(m):
            if cnt[j]:
                levels[k, 0] = b
                levels[k, 1] = lo + j * row
                levels[k, 2] = cell[j, 0]
                levels[k, 3] = cell[j, 1]
                levels[k, 4] = cell[j, 2]
                levels[k, 5] = cell[j, 3]
                k += 1
    return bars, levels[:k].copy()
