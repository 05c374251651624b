"""The execution core's steps around matching, in the order ``kernel.advance`` runs them for
each trade: funding, equity marks, the day roll, arrival of signals (risk checks, reversals),
protective exits, and after matching the risk halts. State in ``CoreState`` (``state.py``);
prices in ticks, quantities in lots, times in microseconds, money in quote currency.
"""

from __future__ import annotations

from botclave_cli.execution.layout import (
    ACTIVE,
    CANCELLED,
    DAY_US,
    ENTRY,
    F_FUNDING,
    HALT_EXIT,
    I_COOLDOWN_UNTIL,
    I_DAY,
    I_HALTED_DAY,
    I_HALTED_DD,
    I_LAST_PX,
    I_N_ACTIVE,
    I_N_MARKS,
    I_N_OPEN,
    I_NEXT_FUNDING,
    I_NEXT_MARK,
    I_NEXT_SIGNAL,
    MAX_SLOTS,
    O_PURPOSE,
    O_SIDE,
    O_SLOT,
    O_STATUS,
    P_CONTINUOUS,
    P_DAILY_LOSS,
    P_EQ_INTERVAL_US,
    P_LOT,
    P_MAX_CONC,
    P_MAX_DD,
    P_ON_OPPOSITE,
    P_SIZING_FRACTION,
    P_TICK,
    R_COOLDOWN,
    R_HALT_DAY,
    R_HALT_DD,
    R_MAX_CONC,
    R_NO_STOP,
    R_NONE,
    R_OPPOSITE,
    S_ACTIVE,
    S_BEST,
    S_EXIT_ORDER,
    S_HOLD,
    S_QTY,
    S_SIDE,
    S_STOP,
    S_STOP_MOVED,
    S_TRAIL,
    S_WORST,
    SIGNAL_EXIT,
    STOP_LOSS,
    TIME_STOP,
    TRAIL_STOP,
    V_CASH,
    V_DAY_START_EQ,
    V_PEAK,
    core_step,
)
from botclave_cli.execution.orders import (
    close_order,
    equity,
    exit_slot,
    net_position,
    new_order,
    reject,
)


@core_step
def pay_funding(st, ts, f_ts, f_rate, p):
    """Funding payments due at or before ``ts``, on the open positions at the last price."""
    lot, tick = p[P_LOT], p[P_TICK]
    while st.iv[I_NEXT_FUNDING] < f_ts.shape[0] and f_ts[st.iv[I_NEXT_FUNDING]] <= ts:
        rate = f_rate[st.iv[I_NEXT_FUNDING]]
        for s in range(MAX_SLOTS):
            if st.slots_i[s, S_ACTIVE] == 1 and st.slots_i[s, S_QTY] != 0:
                pay = (st.slots_i[s, S_SIDE] * st.slots_i[s, S_QTY] * lot
                       * st.iv[I_LAST_PX] * tick * rate)
                st.fv[V_CASH] -= pay
                st.slots_f[s, F_FUNDING] += pay
        st.iv[I_NEXT_FUNDING] += 1


@core_step
def mark(st, p):
    """Record the next equity mark: equity at the last price, cash, net position in lots."""
    n = st.iv[I_N_MARKS]
    st.marks_eq[n] = equity(st, p[P_LOT], st.iv[I_LAST_PX] * p[P_TICK])
    st.marks_cash[n] = st.fv[V_CASH]
    st.marks_pos[n] = net_position(st)
    st.iv[I_N_MARKS] = n + 1
    st.iv[I_NEXT_MARK] += int(p[P_EQ_INTERVAL_US])


@core_step
def mark_until(st, ts, p):
    """Equity marks on the interval grid up to ``ts``, valued at the price before this trade."""
    while st.iv[I_NEXT_MARK] <= ts:
        mark(st, p)


@core_step
def roll_day(st, ts, p):
    """A new UTC day re-arms the daily-loss halt from the equity at its first trade."""
    today = ts // DAY_US
    if today != st.iv[I_DAY]:
        st.iv[I_DAY] = today
        st.fv[V_DAY_START_EQ] = equity(st, p[P_LOT], st.iv[I_LAST_PX] * p[P_TICK])
        st.iv[I_HALTED_DAY] = 0


@core_step
def _pending_entry(st, o):
    return st.orders[o, O_PURPOSE] == ENTRY and st.orders[o, O_SLOT] < 0


@core_step
def _flatten(st, arr):
    """A flat signal: every position closes (market) and unfilled entries are cancelled."""
    ok = True
    for s in range(MAX_SLOTS):
        if st.slots_i[s, S_ACTIVE] == 1:
            ok = exit_slot(st, s, SIGNAL_EXIT, arr, 0) and ok
    for k in range(st.iv[I_N_ACTIVE]):
        o = st.active[k]
        if _pending_entry(st, o):
            close_order(st, o, CANCELLED, arr)
    return ok


@core_step
def _entry_refusal(st, action, arr, stop, p):
    """The risk rule refusing an entry signal (R_NONE: accepted); an accepted reversal closes
    the opposite positions (market) and cancels opposite entries not yet filled, and the new
    entry then waits for the close in matching. Returns (reason, ok)."""
    if st.iv[I_HALTED_DD] == 1:
        return R_HALT_DD, True
    if st.iv[I_HALTED_DAY] == 1:
        return R_HALT_DAY, True
    if arr < st.iv[I_COOLDOWN_UNTIL]:
        return R_COOLDOWN, True
    if stop == 0 and p[P_SIZING_FRACTION] == 0.0:
        return R_NO_STOP, True
    same = 0
    opposite = 0
    for s in range(MAX_SLOTS):
        if st.slots_i[s, S_ACTIVE] == 1:
            if st.slots_i[s, S_SIDE] == action:
                same += 1
            else:
                opposite += 1
    pending_opp = 0
    for k in range(st.iv[I_N_ACTIVE]):
        o = st.active[k]
        if st.orders[o, O_STATUS] == ACTIVE and _pending_entry(st, o):
            if st.orders[o, O_SIDE] == action:
                same += 1
            else:
                pending_opp += 1
    if opposite > 0 and p[P_ON_OPPOSITE] == 0.0:
        return R_OPPOSITE, True
    if same >= int(p[P_MAX_CONC]):
        return R_MAX_CONC, True
    ok = True
    if p[P_ON_OPPOSITE] != 0.0:
        for s in range(MAX_SLOTS):
            if opposite > 0 and st.slots_i[s, S_ACTIVE] == 1 and st.slots_i[s, S_SIDE] != action:
                ok = exit_slot(st, s, SIGNAL_EXIT, arr, 0) and ok
        for k in range(st.iv[I_N_ACTIVE]):
            o = st.active[k]
            if pending_opp > 0 and _pending_entry(st, o) and st.orders[o, O_SIDE] != action:
                close_order(st, o, CANCELLED, arr)
    return R_NONE, ok


@core_step
def arrive_signals(st, ts, sg, p):
    """Signals that reached the exchange by ``ts`` (arrival = decision + latency) become entry
    orders, refusals, or a flattening; False when an output array is full."""
    ok = True
    while st.iv[I_NEXT_SIGNAL] < sg.arr.shape[0] and sg.arr[st.iv[I_NEXT_SIGNAL]] <= ts:
        si = st.iv[I_NEXT_SIGNAL]
        action = sg.action[si]
        arr = sg.arr[si]
        st.iv[I_NEXT_SIGNAL] = si + 1
        if action == 0:
            ok = _flatten(st, arr) and ok
            continue
        reason, fine = _entry_refusal(st, action, arr, sg.stop[si], p)
        ok = ok and fine
        if reason != R_NONE:
            ok = reject(st, si, action, sg.otype[si], sg.dec[si], arr, reason) and ok
        else:
            ok = new_order(st, si, -1, action, sg.otype[si], ENTRY, sg.limit[si], -1,
                           sg.dec[si], arr, sg.expiry[si]) >= 0 and ok
    return ok


@core_step
def protect(st, ts, px, p):
    """Protective exits on the trade at ``px``: MAE/MFE and the trailing stop follow the price,
    a stop at or beyond triggers (``continuous``: at its own price when the path crossed it),
    a time stop expires."""
    ok = True
    si = st.slots_i
    prev_px = st.iv[I_LAST_PX]
    for s in range(MAX_SLOTS):
        if si[s, S_ACTIVE] != 1 or si[s, S_QTY] == 0:
            continue
        side = si[s, S_SIDE]
        if side * (px - si[s, S_BEST]) > 0:
            si[s, S_BEST] = px
            if si[s, S_TRAIL] > 0:
                new_stop = px - side * si[s, S_TRAIL]
                if si[s, S_STOP] == 0 or side * (new_stop - si[s, S_STOP]) > 0:
                    si[s, S_STOP] = new_stop
                    si[s, S_STOP_MOVED] = 1
        if side * (px - si[s, S_WORST]) < 0:
            si[s, S_WORST] = px
        if si[s, S_EXIT_ORDER] >= 0:
            continue
        stop = si[s, S_STOP]
        if stop != 0 and side * (px - stop) <= 0:
            trig = px
            if p[P_CONTINUOUS] != 0.0 and side * (prev_px - stop) > 0:
                trig = stop
            purpose = TRAIL_STOP if si[s, S_STOP_MOVED] == 1 else STOP_LOSS
            ok = exit_slot(st, s, purpose, ts, trig) and ok
        elif si[s, S_HOLD] > 0 and ts >= si[s, S_HOLD]:
            ok = exit_slot(st, s, TIME_STOP, ts, 0) and ok
    return ok


@core_step
def risk_halts(st, ts, px, filled_any, p):
    """After the trade at ``px``: a drawdown or daily-loss breach halts trading; everything is
    closed with market orders and entries are refused from the next trade on."""
    if st.iv[I_N_OPEN] == 0 and not filled_any:
        return True
    eq = equity(st, p[P_LOT], px * p[P_TICK])
    if eq > st.fv[V_PEAK]:
        st.fv[V_PEAK] = eq
    dd_hit = st.iv[I_HALTED_DD] == 0 and eq <= st.fv[V_PEAK] * (1.0 - p[P_MAX_DD])
    day_hit = st.iv[I_HALTED_DAY] == 0 and eq <= st.fv[V_DAY_START_EQ] * (1.0 - p[P_DAILY_LOSS])
    if not (dd_hit or day_hit):
        return True
    if dd_hit:
        st.iv[I_HALTED_DD] = 1
    if day_hit:
        st.iv[I_HALTED_DAY] = 1
    for k in range(st.iv[I_N_ACTIVE]):
        o = st.active[k]
        if _pending_entry(st, o):
            close_order(st, o, CANCELLED, ts)
    ok = True
    for s in range(MAX_SLOTS):
        if st.slots_i[s, S_ACTIVE] == 1 and st.slots_i[s, S_EXIT_ORDER] < 0:
            ok = exit_slot(st, s, HALT_EXIT, ts, 0) and ok
    return ok
