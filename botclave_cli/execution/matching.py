"""Matching: the working orders against one trade, oldest first (the rules are in
``kernel.py``'s docstring). Orders that stay working are written back in their order, finished
ones dropped, so a reversal's close is always matched before its new entry. State in
``CoreState``; prices in ticks, quantities in lots, times in microseconds, money in quote.
"""

from __future__ import annotations

import numpy as np

from botclave_cli.execution.layout import (
    ACTIVE,
    CANCELLED,
    ENTRY,
    EXPIRED,
    F_ENTRY_VALUE,
    F_EXIT_VALUE,
    F_FEES,
    F_FUNDING,
    F_RISK,
    F_SLIP,
    FF_FEE,
    FF_PRICE,
    FF_SLIP,
    FI_ORDER,
    FI_QTY,
    FI_SIDE,
    FI_TAKER,
    FI_TRADE,
    FI_TS,
    FILLED,
    I_CONS_SAMPLE,
    I_COOLDOWN_UNTIL,
    I_LAST_PX,
    I_LOSSES_IN_ROW,
    I_N_ACTIVE,
    I_N_FILLS,
    I_N_OPEN,
    I_N_TRADES,
    LIMIT,
    MAX_SLOTS,
    O_ARRIVAL,
    O_EXPIRY,
    O_FILLED,
    O_LIMIT,
    O_PURPOSE,
    O_QSET,
    O_QTY,
    O_READY,
    O_REASON,
    O_SEEN,
    O_SIDE,
    O_SIG,
    O_SLOT,
    O_STATUS,
    O_TRIG,
    O_TYPE,
    P_CONTINUOUS,
    P_COOLDOWN_LOSSES,
    P_COOLDOWN_US,
    P_FRACTION,
    P_LOT,
    P_MAKER,
    P_MAX_POSITION,
    P_PARTICIPATION,
    P_PER_TRADE,
    P_QUEUE_MODEL,
    P_QUEUE_POWER,
    P_SIZING_FRACTION,
    P_SLIP_BPS,
    P_TAKER,
    P_TICK,
    P_TOUCH,
    Q_RISK_AVERSE,
    R_MAX_CONC,
    R_MAX_POS,
    R_SIZE,
    REJECTED,
    S_ACTIVE,
    S_BEST,
    S_ENTRY_ORDER,
    S_ENTRY_TS,
    S_EXIT_ORDER,
    S_HOLD,
    S_MAXQTY,
    S_QTY,
    S_SIDE,
    S_SIG,
    S_STOP,
    S_TARGET,
    S_TP_ORDER,
    S_TRAIL,
    S_WORST,
    STOP,
    T_BEST,
    T_ENTRY_ORDER,
    T_ENTRY_TS,
    T_EXIT_TS,
    T_QTY,
    T_REASON,
    T_SIDE,
    T_SIG,
    T_WORST,
    TAKE_PROFIT,
    V_CASH,
    core_step,
)
from botclave_cli.execution.orders import close_order, equity, new_order, opposite_open
from botclave_cli.execution.queue import advance_queue, book_at, join_queue, listed_at


@core_step
def _touch(bk, bi, side):
    """Best opposite price and its size in sample ``bi`` (what a buy takes first: the ask)."""
    if side > 0:
        return bk.ask_px[bi, 0], bk.ask_qty[bi, 0]
    return bk.bid_px[bi, 0], bk.bid_qty[bi, 0]


@core_step
def _walk_level(bk, bi, side, it):
    if side > 0:
        return bk.ask_px[bi, it], bk.ask_qty[bi, it]
    return bk.bid_px[bi, it], bk.bid_qty[bi, it]


@core_step
def _start_walk(st, o, bk, placed):
    """First look of order ``o`` at the book (book mode): whether it walks the last valid sample
    at or before ``placed`` (a market or stop order, or a limit marketable up to its price, whose
    rest then rests at the limit with nothing ahead: the book is not crossed). Returns
    (walk, sample, touch price)."""
    side = st.orders[o, O_SIDE]
    bi = book_at(bk.ts, placed)
    touch = 0
    walk = False
    if bi >= 0 and bk.valid[bi] == 1:
        touch, touch_q = _touch(bk, bi, side)
        walk = touch_q > 0
        if st.orders[o, O_TYPE] == LIMIT:
            walk = walk and side * (st.orders[o, O_LIMIT] - touch) >= 0
            if walk:
                join_queue(st, o, bk, bi, 0)
    if walk:
        st.orders[o, O_TRIG] = 0
        if bi != st.iv[I_CONS_SAMPLE]:
            st.cons[:, :] = 0
            st.iv[I_CONS_SAMPLE] = bi
    return walk, bi, touch


@core_step
def _limit_crossed(st, o, placed, ts, px, qty, avail, bk, use_book, p):
    """Whether the trade at ``px`` reaches limit order ``o``, and how many lots it may fill
    (``avail``, or in book mode what is left of the trade after the queue ahead of us)."""
    side = st.orders[o, O_SIDE]
    lim = st.orders[o, O_LIMIT]
    cap = avail
    if use_book and st.orders[o, O_QSET] == 0:
        st.orders[o, O_QSET] = 2
        bq = book_at(bk.ts, placed)
        if bq >= 0 and bk.valid[bq] == 1:
            join_queue(st, o, bk, bq, listed_at(bk, bq, side, lim))
    if st.orders[o, O_QSET] == 1:
        qmodel = int(p[P_QUEUE_MODEL]) if use_book else Q_RISK_AVERSE
        advance_queue(st, o, bk, ts, qmodel, p[P_QUEUE_POWER])
        through = side * (lim - px) > 0
        if not through and px == lim:
            eatf = min(st.q_front[o], float(qty))
            st.q_front[o] -= eatf
            st.q_traded[o] += qty
            cap = min(avail, np.int64(np.floor(qty - eatf + 1e-9)))
            through = cap > 0
        return through, cap
    return side * (lim - px) > 0 or (p[P_TOUCH] != 0.0 and px == lim), cap


@core_step
def _size_entry(st, o, price, fee_rate, sg, p):
    """Lots for entry ``o`` at its first fill, from equity at the last price and the room the
    open positions leave under ``max_position``; -1 when refused (the order is rejected)."""
    lot = p[P_LOT]
    eq = equity(st, lot, st.iv[I_LAST_PX] * p[P_TICK])
    if p[P_SIZING_FRACTION] != 0.0:
        unit = price * lot
        size = np.floor((eq * p[P_FRACTION]) // (unit + unit * fee_rate))
    else:
        dist = abs(price - sg.stop[st.orders[o, O_SIG]] * p[P_TICK])
        size = np.floor(eq * p[P_PER_TRADE] / (dist * lot)) if dist > 0 else 0.0
    other = 0.0
    for s in range(MAX_SLOTS):
        if st.slots_i[s, S_ACTIVE] == 1:
            other += st.slots_i[s, S_QTY] * lot * price
    room = np.floor((p[P_MAX_POSITION] * eq - other) / (price * lot))
    if size < 1 or room < 1:
        # max_position: the open positions leave no lot of room; size_below_lot: the sizing
        # rule itself asks for less than a lot
        st.orders[o, O_REASON] = R_MAX_POS if size >= 1 else R_SIZE
        return -1
    return np.int64(min(size, room))


@core_step
def _open_slot(st, o, ts, px, sg):
    """A position slot for entry ``o`` with its stop, target, trail and time stop; -1 when all
    slots are taken (the order is rejected)."""
    slot = -1
    for s in range(MAX_SLOTS):
        if st.slots_i[s, S_ACTIVE] == 0:
            slot = s
            break
    if slot < 0:
        st.orders[o, O_REASON] = R_MAX_CONC
        return -1
    g = st.orders[o, O_SIG]
    si = st.slots_i
    si[slot, :] = 0
    st.slots_f[slot, :] = 0.0
    si[slot, S_ACTIVE] = 1
    si[slot, S_SIDE] = st.orders[o, O_SIDE]
    si[slot, S_ENTRY_TS] = ts
    si[slot, S_ENTRY_ORDER] = o
    si[slot, S_STOP] = sg.stop[g]
    si[slot, S_TARGET] = sg.target[g]
    si[slot, S_TRAIL] = sg.trail[g]
    si[slot, S_HOLD] = ts + sg.hold_us[g] if sg.hold_us[g] > 0 else 0
    si[slot, S_EXIT_ORDER] = -1
    si[slot, S_TP_ORDER] = -1
    si[slot, S_BEST] = px
    si[slot, S_WORST] = px
    si[slot, S_SIG] = g
    st.orders[o, O_SLOT] = slot
    st.iv[I_N_OPEN] += 1
    return slot


@core_step
def _record_fill(st, o, trade, ts, q, taker, price, fee, slip_cost):
    n = st.iv[I_N_FILLS]
    if n >= st.fills_i.shape[0]:
        return False
    st.fills_i[n, FI_TS] = ts
    st.fills_i[n, FI_ORDER] = o
    st.fills_i[n, FI_SIDE] = st.orders[o, O_SIDE]
    st.fills_i[n, FI_QTY] = q
    st.fills_i[n, FI_TAKER] = 1 if taker else 0
    st.fills_i[n, FI_TRADE] = trade
    st.fills_f[n, FF_PRICE] = price
    st.fills_f[n, FF_FEE] = fee
    st.fills_f[n, FF_SLIP] = slip_cost
    st.iv[I_N_FILLS] = n + 1
    return True


@core_step
def _entry_filled(st, o, slot, q, price, notional, ts, sg, p):
    """An entry fill grows its position; the first one places the take-profit limit."""
    si = st.slots_i
    si[slot, S_QTY] += q
    si[slot, S_MAXQTY] += q
    st.slots_f[slot, F_ENTRY_VALUE] += notional
    g = st.orders[o, O_SIG]
    if sg.stop[g] != 0:
        st.slots_f[slot, F_RISK] += abs(price - sg.stop[g] * p[P_TICK]) * q * p[P_LOT]
    if st.orders[o, O_FILLED] >= st.orders[o, O_QTY]:
        close_order(st, o, FILLED, ts)
    if si[slot, S_TARGET] != 0 and si[slot, S_TP_ORDER] < 0:
        tp = new_order(st, g, slot, -si[slot, S_SIDE], LIMIT, TAKE_PROFIT, si[slot, S_TARGET],
                       -1, ts, ts, 0)
        if tp < 0:
            return False
        st.orders[tp, O_SEEN] = 1
        si[slot, S_TP_ORDER] = tp
    return True


@core_step
def _close_trade(st, slot, purpose, ts, p):
    """The position in ``slot`` is flat: one closed trade, and the loss streak / cooldown."""
    si, sf = st.slots_i, st.slots_f
    n = st.iv[I_N_TRADES]
    if n >= st.trades_i.shape[0]:
        return False
    sd = si[slot, S_SIDE]
    st.trades_i[n, T_SIDE] = sd
    st.trades_i[n, T_ENTRY_TS] = si[slot, S_ENTRY_TS]
    st.trades_i[n, T_EXIT_TS] = ts
    st.trades_i[n, T_QTY] = si[slot, S_MAXQTY]
    st.trades_i[n, T_REASON] = purpose
    st.trades_i[n, T_SIG] = si[slot, S_SIG]
    st.trades_i[n, T_BEST] = si[slot, S_BEST]
    st.trades_i[n, T_WORST] = si[slot, S_WORST]
    st.trades_i[n, T_ENTRY_ORDER] = si[slot, S_ENTRY_ORDER]
    for c in range(sf.shape[1]):  # an element loop: a slice copy would need numba's allocator
        st.trades_f[n, c] = sf[slot, c]
    pnl = (sd * (sf[slot, F_EXIT_VALUE] - sf[slot, F_ENTRY_VALUE]) - sf[slot, F_FEES]
           - sf[slot, F_FUNDING])
    st.iv[I_N_TRADES] = n + 1
    si[slot, S_ACTIVE] = 0
    st.iv[I_N_OPEN] -= 1
    if pnl < 0:
        st.iv[I_LOSSES_IN_ROW] += 1
        if p[P_COOLDOWN_LOSSES] > 0 and st.iv[I_LOSSES_IN_ROW] >= p[P_COOLDOWN_LOSSES]:
            st.iv[I_COOLDOWN_UNTIL] = ts + np.int64(p[P_COOLDOWN_US])
            st.iv[I_LOSSES_IN_ROW] = 0
    else:
        st.iv[I_LOSSES_IN_ROW] = 0
    return True


@core_step
def _exit_filled(st, o, slot, q, notional, ts, p):
    """An exit fill shrinks its position (and ends what is left of the entry); at flat the
    exit is filled, the target and other exits cancelled, the trade closed."""
    si = st.slots_i
    si[slot, S_QTY] -= q
    st.slots_f[slot, F_EXIT_VALUE] += notional
    close_order(st, si[slot, S_ENTRY_ORDER], CANCELLED, ts)
    if si[slot, S_QTY] != 0:
        return True
    close_order(st, o, FILLED, ts)
    for other in (si[slot, S_TP_ORDER], si[slot, S_EXIT_ORDER]):
        if other >= 0:
            close_order(st, other, CANCELLED, ts)
    return _close_trade(st, slot, st.orders[o, O_PURPOSE], ts, p)


@core_step
def _fill(st, o, trade, ts, px, walk, bi, touch, taker, fill_ticks, cap, avail, sg, bk, p):
    """Fill order ``o``: one fill at ``fill_ticks`` (at most ``cap`` lots), or one taker fill per
    book level of sample ``bi`` when it walks. Returns (lots of the trade left, any fill, ok)."""
    tick, lot = p[P_TICK], p[P_LOT]
    slip = p[P_SLIP_BPS] / 10_000.0
    side = st.orders[o, O_SIDE]
    sidx = 1 if side > 0 else 0
    filled = False
    n_iter = st.cons.shape[1] if walk else 1
    for it in range(n_iter):
        if walk:
            lp, lq = _walk_level(bk, bi, side, it)
            if lq <= 0 or (st.orders[o, O_TYPE] == LIMIT
                           and side * (lp - st.orders[o, O_LIMIT]) > 0):
                break
            cap = lq - st.cons[sidx, it]
            if cap <= 0:
                continue
            fill_ticks = float(lp)
            price = fill_ticks * tick
        else:
            price = fill_ticks * tick
            if taker:
                price = price * (1.0 + side * slip)
        fee_rate = p[P_TAKER] if taker else p[P_MAKER]
        slot = st.orders[o, O_SLOT]
        if st.orders[o, O_PURPOSE] == ENTRY:
            if st.orders[o, O_QTY] < 0:
                size = _size_entry(st, o, price, fee_rate, sg, p)
                if size > 0:
                    st.orders[o, O_QTY] = size
                    slot = _open_slot(st, o, ts, px, sg)
                if size <= 0 or slot < 0:
                    close_order(st, o, REJECTED, ts)
                    break
            want = st.orders[o, O_QTY] - st.orders[o, O_FILLED]
        else:
            want = st.slots_i[slot, S_QTY]
        q = min(want, cap)
        if q <= 0:
            break
        notional = price * q * lot
        fee = notional * fee_rate
        if walk:
            slip_cost = abs(price - touch * tick) * q * lot
        else:
            slip_cost = abs(price - fill_ticks * tick) * q * lot
        if not _record_fill(st, o, -1 if walk else trade, ts, q, taker, price, fee, slip_cost):
            return avail, filled, False
        if walk:
            st.cons[sidx, it] += q
        else:
            avail -= q
        st.fv[V_CASH] -= side * notional + fee
        filled = True
        st.orders[o, O_FILLED] += q
        st.slots_f[slot, F_FEES] += fee
        st.slots_f[slot, F_SLIP] += slip_cost
        if st.orders[o, O_PURPOSE] == ENTRY:
            ok = _entry_filled(st, o, slot, q, price, notional, ts, sg, p)
        else:
            ok = _exit_filled(st, o, slot, q, notional, ts, p)
        if not ok:
            return avail, filled, False
        if st.orders[o, O_STATUS] != ACTIVE:
            break
    return avail, filled, True


@core_step
def match(st, trade, ts, px, qty, sg, bk, p):
    """The working orders against the trade (global index ``trade``) at ``ts``, ``px`` ticks,
    ``qty`` lots. Returns (any fill, ok)."""
    avail = np.int64(qty * p[P_PARTICIPATION])
    if qty > 0 and avail == 0:
        avail = 1
    use_book = bk.ts.shape[0] > 0
    prev_px = st.iv[I_LAST_PX]
    filled_any = False
    k = 0
    w = 0
    while k < st.iv[I_N_ACTIVE]:
        o = st.active[k]
        k += 1
        orders = st.orders
        if orders[o, O_STATUS] != ACTIVE:
            continue
        keep = True
        if orders[o, O_ARRIVAL] > ts:
            pass
        elif orders[o, O_EXPIRY] > 0 and ts >= orders[o, O_EXPIRY]:
            close_order(st, o, EXPIRED, ts)
            keep = False
        elif (st.iv[I_N_OPEN] > 0 and orders[o, O_PURPOSE] == ENTRY and orders[o, O_SLOT] < 0
              and opposite_open(st, orders[o, O_SIDE])):
            # never both sides at once: a new entry waits until the opposite positions (a
            # reversal's close) are flat, and is then sized from what is left
            orders[o, O_READY] = -1
        else:
            if orders[o, O_READY] == -1:
                orders[o, O_READY] = ts
            placed = orders[o, O_READY] if orders[o, O_READY] > 0 else orders[o, O_ARRIVAL]
            first_seen = orders[o, O_SEEN] == 0
            orders[o, O_SEEN] = 1
            side = orders[o, O_SIDE]
            taker = True
            fill_ticks = float(px)
            cap = avail
            walk, bi, touch = False, -1, 0
            if use_book and first_seen:
                walk, bi, touch = _start_walk(st, o, bk, placed)
            go = True
            if walk:
                pass
            elif orders[o, O_TYPE] == LIMIT:
                lim = orders[o, O_LIMIT]
                go, cap = _limit_crossed(st, o, placed, ts, px, qty, avail, bk, use_book, p)
                if go:
                    if first_seen and (side * (lim - px) > 0 or orders[o, O_QSET] != 1):
                        fill_ticks = float(px)
                    else:
                        taker = False
                        fill_ticks = float(lim)
                        if p[P_CONTINUOUS] != 0.0 and side * (lim - prev_px) >= 0:
                            fill_ticks = float(px)
            elif orders[o, O_TYPE] == STOP and orders[o, O_TRIG] != 0:
                fill_ticks = float(orders[o, O_TRIG])
                orders[o, O_TRIG] = 0
            if go and (walk or avail > 0):
                avail, filled, ok = _fill(st, o, trade, ts, px, walk, bi, touch, taker,
                                          fill_ticks, cap, avail, sg, bk, p)
                filled_any = filled_any or filled
                if not ok:
                    return filled_any, False
            keep = orders[o, O_STATUS] == ACTIVE
        if keep:
            st.active[w] = o
            w += 1
    st.iv[I_N_ACTIVE] = w
    return filled_any, True
