"""Price-level kernels over integer ticks and lots: POC, value area, diagonal imbalances, stacks.

These are the sequential parts of the footprint (numba, ``cache=True``); the grouping itself is
done by Polars. Levels are integer tick prices on a grid of ``row`` ticks; volumes are integer
lots, so every sum is exact and the result does not depend on chunking or thread count.

Rules (DECISIONS.md, "Engine edges"):
- POC: the level with the most volume; ties go to the level nearest the close's level, still
  tied to the lower price.
- Value area: start at the POC; repeatedly compare the sum of the next two grid levels above the
  area with the next two below (empty levels count as 0, a side with no level left does not
  compete) and add the larger pair; equal sums add both; stop once the area holds
  ``share`` of the volume.
- Diagonal imbalance (default): buy at p when ask[p] >= ratio * bid[p - row], sell at p when
  bid[p] >= ratio * ask[p + row]; an empty opposite level counts when the side's volume is > 0
  and >= the minimum volume; the opposite level must lie within the bar's range (the lowest
  level has no buy imbalance, the highest no sell imbalance).
- freqtrade mode: compare with the next TRADED level up (empty levels skipped), strict ``>``,
  x / 0 is an imbalance when x > 0, and both flags are false where the level's total volume is
  below the minimum; flags sit at the lower level p (freqtrade's ``ask_imbalance`` at p is
  ask[next] / bid[p]).
- Stacked: runs of >= N consecutive flagged levels (grid-adjacent; in freqtrade mode,
  consecutive traded levels).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def poc_index(vol: np.ndarray, close_idx: int) -> int:
    """Index of the point of control on a dense grid (see module rules)."""
    best = -1
    for i in range(vol.shape[0]):
        if best < 0 or vol[i] > vol[best]:
            best = i
        elif vol[i] == vol[best] and abs(i - close_idx) < abs(best - close_idx):
            best = i
    return best


@numba.njit(cache=True)
def value_area(vol: np.ndarray, poc: int, share: float) -> tuple[int, int]:
    """(low index, high index) of the value area on a dense grid around ``poc``."""
    m = vol.shape[0]
    total = 0
    for i in range(m):
        total += vol[i]
    target = share * total
    a = poc
    b = poc
    area = vol[poc]
    while area < target and (a > 0 or b < m - 1):
        up = -1
        if b < m - 1:
            up = vol[b + 1] + (vol[b + 2] if b + 2 < m else 0)
        dn = -1
        if a > 0:
            dn = vol[a - 1] + (vol[a - 2] if a - 2 >= 0 else 0)
        if up >= dn:
            area += up
            b = min(b + 2, m - 1)
        if dn >= up:
            area += dn
            a = max(a - 2, 0)
    return a, b


@numba.njit(cache=True)
def _is_imb(x: float, y: float, ratio: float, x_vol: float, min_vol: float,
            strict: bool) -> bool:
    """x against the opposite y (volume or count): the side's volume ``x_vol`` passes the
    minimum, and x / y beats the ratio (an empty opposite, y = 0, counts)."""
    if x <= 0 or x_vol < min_vol:
        return False
    if y == 0:
        return True
    if strict:
        return x > ratio * y
    return x >= ratio * y


@numba.njit(cache=True)
def _mark_runs(flags: np.ndarray, start: int, end: int, adjacent: np.ndarray, n_min: int,
               out: np.ndarray) -> tuple[int, int, int]:
    """Mark levels in runs of >= n_min flagged, adjacent levels in [start, end).

    ``adjacent[i]`` says level i continues the run of level i - 1. Returns (number of runs,
    first index of the longest run, its last index) with -1 indexes when there is none.
    """
    runs = 0
    best_len = 0
    best_lo = -1
    best_hi = -1
    i = start
    while i < end:
        if not flags[i]:
            i += 1
            continue
        j = i
        while j + 1 < end and flags[j + 1] and adjacent[j + 1]:
            j += 1
        length = j - i + 1
        if length >= n_min:
            runs += 1
            for k in range(i, j + 1):
                out[k] = True
            if length > best_len:
                best_len = length
                best_lo = i
                best_hi = j
        i = j + 1
    return runs, best_lo, best_hi


@numba.njit(cache=True)
def bar_profiles(offsets, level, ask, bid, ask_n, bid_n, close_level, row, share, freqtrade,
                 by_count, ratio, min_vol, stacked_n):
    """Per-bar POC/VA/unfinished auctions and per-level imbalance and stack flags.

    ``offsets`` (n_bars + 1) delimit each bar's levels in the arrays sorted by (bar, level).
    ``min_vol`` is in lots: the imbalanced side's volume must reach it (on either basis); in
    freqtrade mode it applies to the level's total volume.
    """
    n_bars = offsets.shape[0] - 1
    n = level.shape[0]
    poc = np.empty(n_bars, np.int64)
    vah = np.empty(n_bars, np.int64)
    val = np.empty(n_bars, np.int64)
    unf_hi = np.zeros(n_bars, np.bool_)
    unf_lo = np.zeros(n_bars, np.bool_)
    imb_buy = np.zeros(n, np.bool_)
    imb_sell = np.zeros(n, np.bool_)
    st_buy = np.zeros(n, np.bool_)
    st_sell = np.zeros(n, np.bool_)
    runs = np.zeros((n_bars, 2), np.int64)
    run_lo = np.full((n_bars, 2), -1, np.int64)
    run_hi = np.full((n_bars, 2), -1, np.int64)
    adjacent = np.zeros(n, np.bool_)
    for b in range(n_bars):
        s = offsets[b]
        e = offsets[b + 1]
        lo = level[s]
        m = (level[e - 1] - lo) // row + 1
        vol = np.zeros(m, np.int64)
        for i in range(s, e):
            vol[(level[i] - lo) // row] += ask[i] + bid[i]
        c = (close_level[b] - lo) // row
        p = poc_index(vol, c)
        a, z = value_area(vol, p, share)
        poc[b] = lo + p * row
        val[b] = lo + a * row
        vah[b] = lo + z * row
        unf_hi[b] = ask[e - 1] > 0 and bid[e - 1] > 0
        unf_lo[b] = ask[s] > 0 and bid[s] > 0
        for i in range(s, e):
            if freqtrade:
                adjacent[i] = i > s
                if i + 1 >= e or (ask[i] + bid[i]) < min_vol:
                    continue
                imb_sell[i] = _is_imb(bid_n[i], ask_n[i + 1], ratio, 0.0, 0.0, True)
                imb_buy[i] = _is_imb(ask_n[i + 1], bid_n[i], ratio, 0.0, 0.0, True)
                continue
            adjacent[i] = i > s and level[i - 1] == level[i] - row
            x_buy = ask_n[i] if by_count else ask[i]
            x_sell = bid_n[i] if by_count else bid[i]
            if level[i] > lo:
                below = 0
                if i > s and level[i - 1] == level[i] - row:
                    below = bid_n[i - 1] if by_count else bid[i - 1]
                imb_buy[i] = _is_imb(x_buy, below, ratio, ask[i], min_vol, False)
            if i < e - 1:
                above = 0
                if level[i + 1] == level[i] + row:
                    above = ask_n[i + 1] if by_count else ask[i + 1]
                imb_sell[i] = _is_imb(x_sell, above, ratio, bid[i], min_vol, False)
        r, x, y = _mark_runs(imb_buy, s, e, adjacent, stacked_n, st_buy)
        runs[b, 0] = r
        if r:
            run_lo[b, 0] = level[x]
            run_hi[b, 0] = level[y]
        r, x, y = _mark_runs(imb_sell, s, e, adjacent, stacked_n, st_sell)
        runs[b, 1] = r
        if r:
            run_lo[b, 1] = level[x]
            run_hi[b, 1] = level[y]
    return (poc, vah, val, unf_hi, unf_lo, imb_buy, imb_sell, st_buy, st_sell, runs, run_lo,
            run_hi)
