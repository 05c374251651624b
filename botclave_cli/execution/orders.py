"""Order and position bookkeeping steps of the execution core (numba, state in ``CoreState``).

Each function changes the state in place and returns False only when an output array is full
(the driver's room bound prevents that; the kernel then reports OVERFLOW).
"""

from __future__ import annotations

from botclave_cli.execution.layout import (
    ACTIVE,
    CANCELLED,
    I_N_ACTIVE,
    I_N_ORDERS,
    MARKET,
    MAX_SLOTS,
    O_ARRIVAL,
    O_CREATED,
    O_DONE,
    O_EXPIRY,
    O_LIMIT,
    O_PURPOSE,
    O_QTY,
    O_REASON,
    O_SIDE,
    O_SIG,
    O_SLOT,
    O_STATUS,
    O_TRIG,
    O_TYPE,
    REJECTED,
    S_ACTIVE,
    S_ENTRY_ORDER,
    S_EXIT_ORDER,
    S_QTY,
    S_SIDE,
    S_SIG,
    S_TP_ORDER,
    STOP,
    V_CASH,
    core_step,
)


@core_step
def equity(st, lot, px):
    """Cash plus open positions valued at ``px`` (quote currency per base unit)."""
    value = st.fv[V_CASH]
    for s in range(MAX_SLOTS):
        if st.slots_i[s, S_ACTIVE] == 1 and st.slots_i[s, S_QTY] != 0:
            value += st.slots_i[s, S_SIDE] * st.slots_i[s, S_QTY] * lot * px
    return value


@core_step
def net_position(st):
    """Net position in lots (long positive)."""
    pos = 0
    for s in range(MAX_SLOTS):
        if st.slots_i[s, S_ACTIVE] == 1:
            pos += st.slots_i[s, S_SIDE] * st.slots_i[s, S_QTY]
    return pos


@core_step
def new_order(st, sig, slot, side, otype, purpose, limit, qty, created, arrival, expiry):
    """A working order appended to the book of orders and to the active list; its id or -1."""
    o = st.iv[I_N_ORDERS]
    if o >= st.orders.shape[0]:
        return -1
    st.orders[o, :] = 0
    st.orders[o, O_SIG] = sig
    st.orders[o, O_SLOT] = slot
    st.orders[o, O_SIDE] = side
    st.orders[o, O_TYPE] = otype
    st.orders[o, O_PURPOSE] = purpose
    st.orders[o, O_LIMIT] = limit
    st.orders[o, O_QTY] = qty
    st.orders[o, O_STATUS] = ACTIVE
    st.orders[o, O_CREATED] = created
    st.orders[o, O_ARRIVAL] = arrival
    st.orders[o, O_EXPIRY] = expiry
    st.active[st.iv[I_N_ACTIVE]] = o
    st.iv[I_N_ORDERS] += 1
    st.iv[I_N_ACTIVE] += 1
    return o


@core_step
def reject(st, sig, side, otype, created, arrival, reason):
    """A refused entry, kept in the order list with its reason; False when the list is full."""
    o = st.iv[I_N_ORDERS]
    if o >= st.orders.shape[0]:
        return False
    st.orders[o, :] = 0
    st.orders[o, O_SIG] = sig
    st.orders[o, O_SLOT] = -1
    st.orders[o, O_SIDE] = side
    st.orders[o, O_TYPE] = otype
    st.orders[o, O_STATUS] = REJECTED
    st.orders[o, O_CREATED] = created
    st.orders[o, O_ARRIVAL] = arrival
    st.orders[o, O_DONE] = arrival
    st.orders[o, O_REASON] = reason
    st.iv[I_N_ORDERS] += 1
    return True


@core_step
def close_order(st, o, status, ts):
    """Working order ``o`` ends with ``status`` at ``ts`` (no-op when it already ended)."""
    if st.orders[o, O_STATUS] == ACTIVE:
        st.orders[o, O_STATUS] = status
        st.orders[o, O_DONE] = ts


@core_step
def exit_slot(st, s, purpose, ts, trig):
    """Market (``trig`` 0) or triggered-stop exit for slot ``s`` unless one is already working;
    cancels its target and whatever of its entry is still working."""
    si = st.slots_i
    if si[s, S_EXIT_ORDER] >= 0:
        return True
    o = new_order(st, si[s, S_SIG], s, -si[s, S_SIDE], MARKET if trig == 0 else STOP, purpose,
                  0, -1, ts, ts, 0)
    if o < 0:
        return False
    st.orders[o, O_TRIG] = trig
    si[s, S_EXIT_ORDER] = o
    if si[s, S_TP_ORDER] >= 0:
        close_order(st, si[s, S_TP_ORDER], CANCELLED, ts)
    eo = si[s, S_ENTRY_ORDER]
    if st.orders[eo, O_STATUS] == ACTIVE:
        close_order(st, eo, CANCELLED, ts)
    return True


@core_step
def opposite_open(st, side):
    """Whether a position against ``side`` is open (its close may still be filling)."""
    for s in range(MAX_SLOTS):
        if st.slots_i[s, S_ACTIVE] == 1 and st.slots_i[s, S_SIDE] != side:
            return True
    return False
