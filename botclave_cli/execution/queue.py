"""Book mode of the execution core: where an order stands in the sampled book.

The book is a grid of samples (``backtest/book.py``; live: the DOM builder's samples): an order
reaching the exchange at time a sees the last sample with ``ts <= a``, never a later one. A
resting limit notes the lots ahead of it at its price and advances through them by the queue
model (``P_QUEUE_MODEL``), comparing each later sample of its level with the previous one.
Prices in ticks, quantities in lots, times in microseconds.
"""

from __future__ import annotations

import numpy as np

from botclave_cli.execution.layout import (
    O_LIMIT,
    O_QSET,
    O_QUEUE,
    O_SIDE,
    Q_RISK_AVERSE,
    core_step,
)


@core_step
def book_at(b_ts, t):
    """Index of the last book sample with ts <= t (-1 when none): never a later book."""
    return np.searchsorted(b_ts, t, side="right") - 1


@core_step
def level_qty(b_px, b_q, bi, lim, side):
    """Lots resting at ``lim`` on ``side`` in sample ``bi``: the listed size, 0 when the price is
    inside the listed levels (or the side lists fewer levels than the depth) but not listed,
    -1 when it lies beyond the visible depth (unknown)."""
    depth = b_px.shape[1]
    for lv in range(depth):
        if b_q[bi, lv] > 0 and b_px[bi, lv] == lim:
            return b_q[bi, lv]
    if b_q[bi, depth - 1] <= 0:
        return 0
    last = b_px[bi, depth - 1]
    if (side > 0 and lim > last) or (side < 0 and lim < last):
        return 0
    return -1


@core_step
def prob_queue_front(front, prev_qty, new_qty, traded, n):
    """Queue ahead of a resting order (lots, float) after the level went from ``prev_qty`` to
    ``new_qty`` while ``traded`` lots printed at its price (trades already taken off ``front``).

    hftbacktest's ProbQueueModel with PowerProbQueueFunc: the decrease trades do not explain,
    ``chg = prev - new - traded``, came from behind us with probability
    ``p = back^n / (back^n + front^n)``, so the front loses ``(1 - p) chg`` (and whatever the
    back cannot hold); an increase leaves the front alone. The front never exceeds the new size.
    One deliberate difference: hftbacktest takes ``back = prev - front``, which counts the lots
    already traded away as still behind us; here ``back = prev - traded - front`` (the level
    just before the unexplained change), never below 0."""
    chg = prev_qty - new_qty - traded
    if chg <= 0.0:
        return min(front, float(new_qty))
    back = max(prev_qty - traded - front, 0.0)
    fb = back ** n
    ff = front ** n
    prob = fb / (fb + ff) if fb + ff > 0.0 else 1.0
    est = front - (1.0 - prob) * chg + min(back - prob * chg, 0.0)
    return max(min(est, float(new_qty)), 0.0)


@core_step
def own_level(bk, bi, o_side, lim):
    """Our side's level size at ``lim`` in sample ``bi`` (a buy rests on the bids)."""
    if o_side > 0:
        return level_qty(bk.bid_px, bk.bid_qty, bi, lim, o_side)
    return level_qty(bk.ask_px, bk.ask_qty, bi, lim, o_side)


@core_step
def listed_at(bk, bi, o_side, lim):
    """Lots listed at exactly ``lim`` on our side in sample ``bi`` (0 when not listed)."""
    ahead = 0
    for lv in range(bk.bid_px.shape[1]):
        if o_side > 0 and bk.bid_px[bi, lv] == lim:
            ahead = bk.bid_qty[bi, lv]
        elif o_side < 0 and bk.ask_px[bi, lv] == lim:
            ahead = bk.ask_qty[bi, lv]
    return ahead


@core_step
def join_queue(st, o, bk, bi, ahead):
    """Order ``o`` rests at its limit from sample ``bi`` with ``ahead`` lots before it."""
    st.orders[o, O_QSET] = 1
    st.orders[o, O_QUEUE] = ahead
    st.q_front[o] = float(ahead)
    st.q_traded[o] = 0.0
    st.q_bi[o] = bi
    st.q_prev[o] = own_level(bk, bi, st.orders[o, O_SIDE], st.orders[o, O_LIMIT])


@core_step
def advance_queue(st, o, bk, ts, qmodel, qpow):
    """Move order ``o``'s queue through the samples taken before the trade at ``ts`` (a trade at
    a sample's time is in that sample): risk_averse caps the queue ahead at the level's size
    (what rests there is at most the lots ahead of us: hftbacktest's
    RiskAdverseQueueModel.depth), prob_power moves it by ``prob_queue_front``."""
    side = st.orders[o, O_SIDE]
    lim = st.orders[o, O_LIMIT]
    n_b = bk.ts.shape[0]
    while st.q_bi[o] + 1 < n_b and bk.ts[st.q_bi[o] + 1] < ts:
        st.q_bi[o] += 1
        sb = st.q_bi[o]
        if bk.valid[sb] != 1:
            continue
        new_q = own_level(bk, sb, side, lim)
        if new_q < 0 or new_q == st.q_prev[o]:
            # unknown, or no change at the level (hftbacktest's depth event comes only with
            # one): the trades since keep counting
            continue
        if qmodel == Q_RISK_AVERSE:
            st.q_front[o] = min(st.q_front[o], float(new_q))
        elif st.q_prev[o] >= 0:
            st.q_front[o] = prob_queue_front(st.q_front[o], float(st.q_prev[o]), float(new_q),
                                             st.q_traded[o], qpow)
        st.q_prev[o] = new_q
        st.q_traded[o] = 0.0
