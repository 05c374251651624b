"""The simulated exchange: one numba kernel that walks the trade stream and fills our orders.

Why a kernel: fills, stops, partial fills and the risk engine are a true sequential state
machine (each fill changes equity, which sizes the next order). Everything else (bars, signals,
metrics) is Polars. Units inside: prices in integer TICKS, quantities in integer LOTS, times in
microseconds; money (cash, fees, PnL) in quote currency as float64.

Rules (the backtester's docstring has the user-facing version):
- Signals arrive at ``arrival_us`` (decision time + latency) and act on trades with
  ``ts >= arrival_us``.
- Market and stop orders take the next trades' prices, at most ``participation`` of each trade's
  quantity (partial fills across trades), ``slippage_bps`` worse, taker fee.
- Limit orders fill at their limit, maker fee, only when a trade prints through the limit
  (``touch``: at it). A limit that is already marketable on the first trade after arrival
  fills at that trade's price as a taker.
- Protective stops trigger on the first trade at or beyond the stop and become market orders that
  fill from that trade on; the target is a resting limit order. SL and TP in one bar are
  therefore resolved by the actual order of trades.
- ``continuous`` (bars-only mode, pseudo-trades along the OHLC path): a stop or limit crossed
  between two path points fills at its own price, as the path passes through it.
- Book mode (``b_*`` arrays from book.py, see ``run_kernel``): market and triggered stop orders
  walk the sampled book at their arrival instead (one taker fill per level, trade index -1),
  limit orders wait for the queue ahead of them at their price (``P_QUEUE_MODEL``: only trades
  advance it, capped at the level's size, or also part of a fall of the level's size that trades
  do not explain). Without
  book arrays the kernel behaves exactly as described above.
- Risk limits are enforced here, not by the strategy: size from stop distance and lot, max
  notional, max concurrent positions, daily-loss and drawdown halts (close everything with market
  orders), cooldown after consecutive losses. An entry is sized at its first fill, from equity
  at the last price and the notional the open positions leave under ``max_position``
  (rejected ``max_position`` when that is under a lot, ``size_below_lot`` when the sizing rule
  itself asks for less than a lot).
- Reversals (``on_opposite``): positions are never held on both sides. An entry signal against
  open positions closes them with market orders and cancels opposite entries not yet filled;
  the new entry then waits until the close has filled completely (it is matched after the
  close, orders being matched oldest first) and is sized from the equity and room left after
  the close, as backtesting.py does for ``position.close()`` then ``sell()``. With a book, an
  entry that had to wait takes the sample at the time the close completed; one that did not
  walks what its close left of the same sample.
"""

from __future__ import annotations

import numba
import numpy as np

# order int columns
O_SIG, O_SLOT, O_SIDE, O_TYPE, O_PURPOSE, O_LIMIT, O_QTY, O_FILLED = 0, 1, 2, 3, 4, 5, 6, 7
O_STATUS, O_CREATED, O_ARRIVAL, O_DONE, O_REASON, O_EXPIRY, O_SEEN, O_TRIG = (
    8, 9, 10, 11, 12, 13, 14, 15)
# book mode: lots ahead of a resting limit at its price at arrival (the kernel then keeps it in
# q_front); queue model state (0 not yet looked up, 1 queue model on, 2 no valid book at
# arrival -> trade-price rules)
O_QUEUE, O_QSET = 16, 17
# entries: 0 never waited; -1 waiting for an opposite position to close; else the time (us) the
# close completed, which stands in for the arrival (book sample, queue) from then on
O_READY = 18
O_NCOL = 19
MARKET, LIMIT, STOP = 0, 1, 2
ENTRY, STOP_LOSS, TAKE_PROFIT, TIME_STOP, SIGNAL_EXIT, HALT_EXIT, TRAIL_STOP = 0, 1, 2, 3, 4, 5, 6
ACTIVE, FILLED, CANCELLED, REJECTED, EXPIRED = 0, 1, 2, 3, 4
(R_NONE, R_HALT_DAY, R_HALT_DD, R_COOLDOWN, R_MAX_CONC, R_OPPOSITE, R_SIZE, R_NO_STOP,
 R_MAX_POS) = range(9)

# slot int / float columns
S_ACTIVE, S_SIDE, S_QTY, S_MAXQTY, S_ENTRY_TS, S_ENTRY_ORDER, S_STOP, S_TARGET = range(8)
S_TRAIL, S_HOLD, S_EXIT_ORDER, S_TP_ORDER, S_BEST, S_WORST, S_SIG, S_EXIT_TS = range(8, 16)
S_STOP_MOVED = 16
S_NCOL = 17
F_ENTRY_VALUE, F_EXIT_VALUE, F_FEES, F_SLIP, F_FUNDING, F_RISK = range(6)
F_NCOL = 6

# closed-trade output columns
T_SIDE, T_ENTRY_TS, T_EXIT_TS, T_QTY, T_REASON, T_SIG, T_BEST, T_WORST, T_ENTRY_ORDER = range(9)
T_NCOL = 9
TF_NCOL = F_NCOL

# fill output columns
FI_TS, FI_ORDER, FI_SIDE, FI_QTY, FI_TAKER, FI_TRADE = range(6)
FI_NCOL = 6
FF_PRICE, FF_FEE, FF_SLIP = range(3)
FF_NCOL = 3

# params (float64 vector)
(P_TICK, P_LOT, P_EQUITY0, P_MAKER, P_TAKER, P_SLIP_BPS, P_PARTICIPATION, P_PER_TRADE,
 P_FRACTION, P_MAX_POSITION, P_MAX_CONC, P_DAILY_LOSS, P_MAX_DD, P_COOLDOWN_LOSSES,
 P_COOLDOWN_US, P_SIZING_FRACTION, P_TOUCH, P_CONTINUOUS, P_ON_OPPOSITE,
 P_EQ_INTERVAL_US, P_QUEUE_MODEL, P_QUEUE_POWER) = range(22)
P_N = 22
# book mode queue models (P_QUEUE_MODEL): only trades at the price advance a resting limit, the
# queue ahead capped at the level's size (risk_averse), or a fall of the level's size not
# explained by trades is partly ours to advance by (prob_power, queue_power n)
Q_RISK_AVERSE, Q_PROB_POWER = 0, 1

# run status
OK, OVERFLOW = 0, 1
MAX_SLOTS = 16
DAY_US = 86_400_000_000


@numba.njit(cache=True)
def _equity(cash, slots_i, lot, px):
    value = cash
    for s in range(MAX_SLOTS):
        if slots_i[s, S_ACTIVE] == 1 and slots_i[s, S_QTY] != 0:
            value += slots_i[s, S_SIDE] * slots_i[s, S_QTY] * lot * px
    return value


@numba.njit(cache=True)
def _mark(marks_eq, marks_cash, marks_pos, n_mark, cash, slots_i, lot, px):
    """Record equity mark ``n_mark``: equity valued at ``px``, cash, net position in lots."""
    marks_eq[n_mark] = _equity(cash, slots_i, lot, px)
    marks_cash[n_mark] = cash
    pos = 0
    for s in range(MAX_SLOTS):
        if slots_i[s, S_ACTIVE] == 1:
            pos += slots_i[s, S_SIDE] * slots_i[s, S_QTY]
    marks_pos[n_mark] = pos


@numba.njit(cache=True)
def _new_order(orders, n_orders, active, n_active, sig, slot, side, otype, purpose, limit, qty,
               created, arrival, expiry):
    if n_orders >= orders.shape[0]:
        return -1, n_active
    o = n_orders
    orders[o, :] = 0
    orders[o, O_SIG] = sig
    orders[o, O_SLOT] = slot
    orders[o, O_SIDE] = side
    orders[o, O_TYPE] = otype
    orders[o, O_PURPOSE] = purpose
    orders[o, O_LIMIT] = limit
    orders[o, O_QTY] = qty
    orders[o, O_STATUS] = ACTIVE
    orders[o, O_CREATED] = created
    orders[o, O_ARRIVAL] = arrival
    orders[o, O_EXPIRY] = expiry
    active[n_active] = o
    return o, n_active + 1


@numba.njit(cache=True)
def _reject(orders, n_orders, sig, side, otype, created, arrival, reason):
    if n_orders >= orders.shape[0]:
        return -1
    orders[n_orders, :] = 0
    orders[n_orders, O_SIG] = sig
    orders[n_orders, O_SLOT] = -1
    orders[n_orders, O_SIDE] = side
    orders[n_orders, O_TYPE] = otype
    orders[n_orders, O_STATUS] = REJECTED
    orders[n_orders, O_CREATED] = created
    orders[n_orders, O_ARRIVAL] = arrival
    orders[n_orders, O_DONE] = arrival
    orders[n_orders, O_REASON] = reason
    return n_orders


@numba.njit(cache=True)
def _close_order(orders, o, status, ts):
    if orders[o, O_STATUS] == ACTIVE:
        orders[o, O_STATUS] = status
        orders[o, O_DONE] = ts


@numba.njit(cache=True)
def _exit_slot(orders, n_orders, active, n_active, slots_i, s, purpose, ts, trig):
    """Market exit for slot ``s`` unless one is already working; cancels its target order."""
    if slots_i[s, S_EXIT_ORDER] >= 0:
        return n_orders, n_active, True
    o, n_active = _new_order(orders, n_orders, active, n_active, slots_i[s, S_SIG], s,
                             -slots_i[s, S_SIDE], MARKET if trig == 0 else STOP, purpose, 0, -1,
                             ts, ts, 0)
    if o < 0:
        return n_orders, n_active, False
    orders[o, O_TRIG] = trig
    slots_i[s, S_EXIT_ORDER] = o
    if slots_i[s, S_TP_ORDER] >= 0:
        _close_order(orders, slots_i[s, S_TP_ORDER], CANCELLED, ts)
    eo = slots_i[s, S_ENTRY_ORDER]
    if orders[eo, O_STATUS] == ACTIVE:
        _close_order(orders, eo, CANCELLED, ts)
    return n_orders + 1, n_active, True


@numba.njit(cache=True)
def _opposite_open(slots_i, side):
    """Whether a position against ``side`` is open (its close may still be filling)."""
    for s in range(MAX_SLOTS):
        if slots_i[s, S_ACTIVE] == 1 and slots_i[s, S_SIDE] != side:
            return True
    return False


@numba.njit(cache=True)
def _book_at(b_ts, t):
    """Index of the last book sample with ts <= t (-1 when none): never a later book."""
    return np.searchsorted(b_ts, t, side="right") - 1


@numba.njit(cache=True)
def _level_qty(b_px, b_q, bi, lim, side):
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


@numba.njit(cache=True)
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


@numba.njit(cache=True)
def run_kernel(t_ts, t_px, t_qty, s_dec, s_arr, s_action, s_otype, s_limit, s_stop, s_target,
               s_trail, s_hold_us, s_expiry, f_ts, f_rate, p, cap_orders, cap_fills, cap_trades,
               eq_start, n_marks, b_ts, b_valid, b_bpx, b_bq, b_apx, b_aq):
    """Run the simulated exchange. Returns (status, orders, n_orders, fills_i, fills_f, n_fills,
    trades_i, trades_f, n_trades, marks_eq, marks_cash, marks_pos, n_marks_done, final_cash).

    ``b_*``: the sampled book (book.py; empty arrays = no book). With a book, a market or
    triggered stop order (or a limit marketable at arrival, up to its price) walks the levels
    of the last valid sample at or before its arrival: touch outward, taker, no bps slippage
    (the slippage is the walk's distance from the touch); depth already taken by an earlier
    order in the same sample is gone; what the visible depth cannot fill continues on the
    following trades by the trade-price rules. A limit order notes the quantity resting at its
    price on its side at arrival (queue ahead); a trade AT the limit first eats that queue and
    only the rest of the trade can fill us (maker, at the limit); a trade THROUGH the limit
    fills us whatever the queue. Book fills have trade index -1. Queue models
    (``p[P_QUEUE_MODEL]``): ``Q_RISK_AVERSE`` only trades at the price advance the queue (a
    cancellation is behind us, unless the level's size falls below the queue ahead: the queue
    is then capped at that size, hftbacktest's RiskAdverseQueueModel); ``Q_PROB_POWER``
    moves the queue by ``prob_queue_front`` (power ``p[P_QUEUE_POWER]``) instead, queue kept in
    fractional lots, filled lots floored. Both compare each later sample of the level with
    the previous one.
    """
    tick = p[P_TICK]
    lot = p[P_LOT]
    orders = np.zeros((cap_orders, O_NCOL), np.int64)
    active = np.zeros(cap_orders, np.int64)
    fills_i = np.zeros((cap_fills, FI_NCOL), np.int64)
    fills_f = np.zeros((cap_fills, FF_NCOL), np.float64)
    trades_i = np.zeros((cap_trades, T_NCOL), np.int64)
    trades_f = np.zeros((cap_trades, TF_NCOL), np.float64)
    slots_i = np.zeros((MAX_SLOTS, S_NCOL), np.int64)
    slots_f = np.zeros((MAX_SLOTS, F_NCOL), np.float64)
    marks_eq = np.zeros(n_marks, np.float64)
    marks_cash = np.zeros(n_marks, np.float64)
    marks_pos = np.zeros(n_marks, np.int64)
    n_orders = 0
    n_active = 0
    n_fills = 0
    n_trades = 0
    n_mark = 0
    interval = np.int64(p[P_EQ_INTERVAL_US])
    next_mark = eq_start
    cash = p[P_EQUITY0]
    peak = cash
    day = np.int64(-1)
    day_start_eq = cash
    halted_day = False
    halted_dd = False
    cooldown_until = np.int64(0)
    losses_in_row = 0
    n_open = 0
    si = 0
    fi = 0
    n_sig = s_arr.shape[0]
    n_fund = f_ts.shape[0]
    last_px = t_px[0] if t_px.shape[0] > 0 else 0
    prev_px = last_px
    max_conc = int(p[P_MAX_CONC])
    slip = p[P_SLIP_BPS] / 10_000.0
    status = OK
    use_book = b_ts.shape[0] > 0
    depth = b_bpx.shape[1]
    cons = np.zeros((2, depth), np.int64)
    cons_bi = -1
    # queue model state per order (book mode): lots ahead (fractional under prob_power, whole
    # under risk_averse), the last sample compared, the level's size there (-1 unknown), lots
    # traded at the price since that sample
    qmodel = int(p[P_QUEUE_MODEL]) if use_book else Q_RISK_AVERSE
    qpow = p[P_QUEUE_POWER]
    nq = cap_orders if use_book else 0
    n_b = b_ts.shape[0]
    q_front = np.zeros(nq, np.float64)
    q_traded = np.zeros(nq, np.float64)
    q_bi = np.zeros(nq, np.int64)
    q_prev = np.zeros(nq, np.int64)
    for j in range(t_ts.shape[0]):
        ts = t_ts[j]
        px = t_px[j]
        # funding payments due before this trade, at the last traded price
        while fi < n_fund and f_ts[fi] <= ts:
            for s in range(MAX_SLOTS):
                if slots_i[s, S_ACTIVE] == 1 and slots_i[s, S_QTY] != 0:
                    pay = slots_i[s, S_SIDE] * slots_i[s, S_QTY] * lot * last_px * tick * f_rate[fi]
                    cash -= pay
                    slots_f[s, F_FUNDING] += pay
            fi += 1
        # equity marks on the interval grid, valued at the price before this trade
        while n_mark < n_marks and next_mark <= ts:
            _mark(marks_eq, marks_cash, marks_pos, n_mark, cash, slots_i, lot, last_px * tick)
            n_mark += 1
            next_mark += interval
        today = ts // DAY_US
        if today != day:
            day = today
            day_start_eq = _equity(cash, slots_i, lot, last_px * tick)
            halted_day = False
        # signals that reached the exchange
        while si < n_sig and s_arr[si] <= ts:
            action = s_action[si]
            arr = s_arr[si]
            if action == 0:
                for s in range(MAX_SLOTS):
                    if slots_i[s, S_ACTIVE] == 1:
                        n_orders, n_active, ok = _exit_slot(orders, n_orders, active, n_active,
                                                            slots_i, s, SIGNAL_EXIT, arr, 0)
                        if not ok:
                            status = OVERFLOW
                for k in range(n_active):
                    o = active[k]
                    if orders[o, O_PURPOSE] == ENTRY and orders[o, O_SLOT] < 0:
                        _close_order(orders, o, CANCELLED, arr)
                si += 1
                continue
            reason = R_NONE
            if halted_dd:
                reason = R_HALT_DD
            elif halted_day:
                reason = R_HALT_DAY
            elif arr < cooldown_until:
                reason = R_COOLDOWN
            elif s_stop[si] == 0 and p[P_SIZING_FRACTION] == 0.0:
                reason = R_NO_STOP
            else:
                same = 0
                opposite = 0
                for s in range(MAX_SLOTS):
                    if slots_i[s, S_ACTIVE] == 1:
                        if slots_i[s, S_SIDE] == action:
                            same += 1
                        else:
                            opposite += 1
                pending_opp = 0
                for k in range(n_active):
                    o = active[k]
                    if (orders[o, O_STATUS] == ACTIVE and orders[o, O_PURPOSE] == ENTRY
                            and orders[o, O_SLOT] < 0):
                        if orders[o, O_SIDE] == action:
                            same += 1
                        else:
                            pending_opp += 1
                if opposite > 0 and p[P_ON_OPPOSITE] == 0.0:
                    reason = R_OPPOSITE
                elif same >= max_conc:
                    reason = R_MAX_CONC
                elif p[P_ON_OPPOSITE] != 0.0:
                    # a reversal: close the opposite positions now (market) and drop opposite
                    # entries not yet filled; the new entry waits for the close (matching loop)
                    for s in range(MAX_SLOTS):
                        if opposite > 0 and slots_i[s, S_ACTIVE] == 1 \
                                and slots_i[s, S_SIDE] != action:
                            n_orders, n_active, ok = _exit_slot(
                                orders, n_orders, active, n_active, slots_i, s, SIGNAL_EXIT,
                                arr, 0)
                            if not ok:
                                status = OVERFLOW
                    for k in range(n_active):
                        o = active[k]
                        if (pending_opp > 0 and orders[o, O_PURPOSE] == ENTRY
                                and orders[o, O_SLOT] < 0 and orders[o, O_SIDE] != action):
                            _close_order(orders, o, CANCELLED, arr)
            if reason != R_NONE:
                if _reject(orders, n_orders, si, action, s_otype[si], s_dec[si], arr, reason) < 0:
                    status = OVERFLOW
                else:
                    n_orders += 1
            else:
                o, n_active = _new_order(orders, n_orders, active, n_active, si, -1, action,
                                         s_otype[si], ENTRY, s_limit[si], -1, s_dec[si], arr,
                                         s_expiry[si])
                if o < 0:
                    status = OVERFLOW
                else:
                    n_orders += 1
            si += 1
        if status != OK:
            break
        # protective stops, trailing, time stops and MAE/MFE on this trade
        for s in range(MAX_SLOTS):
            if slots_i[s, S_ACTIVE] != 1 or slots_i[s, S_QTY] == 0:
                continue
            side = slots_i[s, S_SIDE]
            if side * (px - slots_i[s, S_BEST]) > 0:
                slots_i[s, S_BEST] = px
                if slots_i[s, S_TRAIL] > 0:
                    new_stop = px - side * slots_i[s, S_TRAIL]
                    if slots_i[s, S_STOP] == 0 or side * (new_stop - slots_i[s, S_STOP]) > 0:
                        slots_i[s, S_STOP] = new_stop
                        slots_i[s, S_STOP_MOVED] = 1
            if side * (px - slots_i[s, S_WORST]) < 0:
                slots_i[s, S_WORST] = px
            if slots_i[s, S_EXIT_ORDER] >= 0:
                continue
            stop = slots_i[s, S_STOP]
            if stop != 0 and side * (px - stop) <= 0:
                trig = px
                if p[P_CONTINUOUS] != 0.0 and side * (prev_px - stop) > 0:
                    trig = stop
                purpose = TRAIL_STOP if slots_i[s, S_STOP_MOVED] == 1 else STOP_LOSS
                n_orders, n_active, ok = _exit_slot(orders, n_orders, active, n_active, slots_i,
                                                    s, purpose, ts, trig)
                if not ok:
                    status = OVERFLOW
            elif slots_i[s, S_HOLD] > 0 and ts >= slots_i[s, S_HOLD]:
                n_orders, n_active, ok = _exit_slot(orders, n_orders, active, n_active, slots_i,
                                                    s, TIME_STOP, ts, 0)
                if not ok:
                    status = OVERFLOW
        # match working orders against this trade, oldest first: orders that stay working are
        # written back in their order (w), finished ones dropped, so a reversal's close is
        # always matched before its new entry
        avail = np.int64(t_qty[j] * p[P_PARTICIPATION])
        if t_qty[j] > 0 and avail == 0:
            avail = 1
        filled_any = False
        k = 0
        w = 0
        while k < n_active:
            o = active[k]
            k += 1
            if orders[o, O_STATUS] != ACTIVE:
                continue
            if orders[o, O_ARRIVAL] > ts:
                active[w] = o
                w += 1
                continue
            if orders[o, O_EXPIRY] > 0 and ts >= orders[o, O_EXPIRY]:
                _close_order(orders, o, EXPIRED, ts)
                continue
            if (n_open > 0 and orders[o, O_PURPOSE] == ENTRY and orders[o, O_SLOT] < 0
                    and _opposite_open(slots_i, orders[o, O_SIDE])):
                # never both sides at once: a new entry waits until the opposite positions
                # (a reversal's close) are flat, and is then sized from what is left
                orders[o, O_READY] = -1
                active[w] = o
                w += 1
                continue
            if orders[o, O_READY] == -1:
                orders[o, O_READY] = ts
            placed = orders[o, O_READY] if orders[o, O_READY] > 0 else orders[o, O_ARRIVAL]
            first_seen = orders[o, O_SEEN] == 0
            orders[o, O_SEEN] = 1
            side = orders[o, O_SIDE]
            otype = orders[o, O_TYPE]
            taker = True
            fill_ticks = float(px)
            cap = avail
            walk = False
            bi = -1
            touch = 0
            sidx = 1 if side > 0 else 0
            if use_book and first_seen:
                bi = _book_at(b_ts, placed)
                if bi >= 0 and b_valid[bi] == 1:
                    touch = b_apx[bi, 0] if side > 0 else b_bpx[bi, 0]
                    touch_q = b_aq[bi, 0] if side > 0 else b_bq[bi, 0]
                    walk = touch_q > 0
                    if otype == LIMIT:
                        # a limit marketable at arrival walks up to its price; its rest then
                        # rests at the limit with nothing ahead (the book is not crossed)
                        walk = walk and side * (orders[o, O_LIMIT] - touch) >= 0
                        if walk:
                            orders[o, O_QSET] = 1
                            orders[o, O_QUEUE] = 0
                            q_front[o] = 0.0
                            q_traded[o] = 0.0
                            q_bi[o] = bi
                            q_prev[o] = _level_qty(b_bpx if side > 0 else b_apx,
                                                   b_bq if side > 0 else b_aq, bi,
                                                   orders[o, O_LIMIT], side)
                if walk:
                    orders[o, O_TRIG] = 0
                    if bi != cons_bi:
                        cons[:, :] = 0
                        cons_bi = bi
            if walk:
                pass
            elif otype == LIMIT:
                lim = orders[o, O_LIMIT]
                if use_book and orders[o, O_QSET] == 0:
                    orders[o, O_QSET] = 2
                    bq = _book_at(b_ts, placed)
                    if bq >= 0 and b_valid[bq] == 1:
                        orders[o, O_QSET] = 1
                        ahead = 0
                        for lv in range(depth):
                            if side > 0 and b_bpx[bq, lv] == lim:
                                ahead = b_bq[bq, lv]
                            elif side < 0 and b_apx[bq, lv] == lim:
                                ahead = b_aq[bq, lv]
                        orders[o, O_QUEUE] = ahead
                        q_front[o] = float(ahead)
                        q_traded[o] = 0.0
                        q_bi[o] = bq
                        q_prev[o] = _level_qty(b_bpx if side > 0 else b_apx,
                                               b_bq if side > 0 else b_aq, bq, lim, side)
                if orders[o, O_QSET] == 1:
                    # the samples taken before this trade (a trade at a sample's time is in
                    # that sample): risk_averse caps the queue ahead at the level's size (what
                    # rests there is at most the lots ahead of us: hftbacktest's
                    # RiskAdverseQueueModel.depth), prob_power moves it by prob_queue_front
                    while q_bi[o] + 1 < n_b and b_ts[q_bi[o] + 1] < ts:
                        q_bi[o] += 1
                        sb = q_bi[o]
                        if b_valid[sb] != 1:
                            continue
                        new_q = _level_qty(b_bpx if side > 0 else b_apx,
                                           b_bq if side > 0 else b_aq, sb, lim, side)
                        if new_q < 0 or new_q == q_prev[o]:
                            # unknown, or no change at the level (hftbacktest's depth event
                            # comes only with one): the trades since keep counting
                            continue
                        if qmodel == Q_RISK_AVERSE:
                            q_front[o] = min(q_front[o], float(new_q))
                        elif q_prev[o] >= 0:
                            q_front[o] = prob_queue_front(q_front[o], float(q_prev[o]),
                                                          float(new_q), q_traded[o], qpow)
                        q_prev[o] = new_q
                        q_traded[o] = 0.0
                    through = side * (lim - px) > 0
                    if not through and px == lim:
                        eatf = min(q_front[o], float(t_qty[j]))
                        q_front[o] -= eatf
                        q_traded[o] += t_qty[j]
                        cap = min(avail, np.int64(np.floor(t_qty[j] - eatf + 1e-9)))
                        through = cap > 0
                else:
                    through = side * (lim - px) > 0 or (p[P_TOUCH] != 0.0 and px == lim)
                if not through:
                    active[w] = o
                    w += 1
                    continue
                if first_seen and side * (lim - px) > 0:
                    fill_ticks = float(px)
                elif first_seen and orders[o, O_QSET] != 1:
                    fill_ticks = float(px)
                else:
                    taker = False
                    fill_ticks = float(lim)
                    if p[P_CONTINUOUS] != 0.0 and side * (lim - prev_px) >= 0:
                        fill_ticks = float(px)
            elif otype == STOP and orders[o, O_TRIG] != 0:
                fill_ticks = float(orders[o, O_TRIG])
                orders[o, O_TRIG] = 0
            if not walk and avail <= 0:
                active[w] = o
                w += 1
                continue
            n_iter = depth if walk else 1
            for it in range(n_iter):
                if walk:
                    lp = b_apx[bi, it] if side > 0 else b_bpx[bi, it]
                    lq = b_aq[bi, it] if side > 0 else b_bq[bi, it]
                    if lq <= 0 or (otype == LIMIT and side * (lp - orders[o, O_LIMIT]) > 0):
                        break
                    cap = lq - cons[sidx, it]
                    if cap <= 0:
                        continue
                    fill_ticks = float(lp)
                    price = fill_ticks * tick
                else:
                    price = fill_ticks * tick
                    if taker:
                        price = price * (1.0 + side * slip)
                fee_rate = p[P_TAKER] if taker else p[P_MAKER]
                slot = orders[o, O_SLOT]
                purpose = orders[o, O_PURPOSE]
                if purpose == ENTRY:
                    want = orders[o, O_QTY] - orders[o, O_FILLED]
                    if orders[o, O_QTY] < 0:
                        # size the entry at its first fill, from equity at the last price
                        eq = _equity(cash, slots_i, lot, last_px * tick)
                        if p[P_SIZING_FRACTION] != 0.0:
                            unit = price * lot
                            size = np.floor((eq * p[P_FRACTION]) // (unit + unit * fee_rate))
                        else:
                            dist = abs(price - s_stop[orders[o, O_SIG]] * tick)
                            size = np.floor(eq * p[P_PER_TRADE] / (dist * lot)) if dist > 0 else 0.0
                        other = 0.0
                        for s in range(MAX_SLOTS):
                            if slots_i[s, S_ACTIVE] == 1:
                                other += slots_i[s, S_QTY] * lot * price
                        room = np.floor((p[P_MAX_POSITION] * eq - other) / (price * lot))
                        if size < 1 or room < 1:
                            # max_position: the open positions leave no lot of room;
                            # size_below_lot: the sizing rule itself asks for less than a lot
                            orders[o, O_REASON] = R_MAX_POS if size >= 1 else R_SIZE
                            _close_order(orders, o, REJECTED, ts)
                            break
                        size = min(size, room)
                        orders[o, O_QTY] = np.int64(size)
                        want = orders[o, O_QTY]
                        slot = -1
                        for s in range(MAX_SLOTS):
                            if slots_i[s, S_ACTIVE] == 0:
                                slot = s
                                break
                        if slot < 0:
                            orders[o, O_REASON] = R_MAX_CONC
                            _close_order(orders, o, REJECTED, ts)
                            break
                        sg = orders[o, O_SIG]
                        slots_i[slot, :] = 0
                        slots_f[slot, :] = 0.0
                        slots_i[slot, S_ACTIVE] = 1
                        slots_i[slot, S_SIDE] = side
                        slots_i[slot, S_ENTRY_TS] = ts
                        slots_i[slot, S_ENTRY_ORDER] = o
                        slots_i[slot, S_STOP] = s_stop[sg]
                        slots_i[slot, S_TARGET] = s_target[sg]
                        slots_i[slot, S_TRAIL] = s_trail[sg]
                        slots_i[slot, S_HOLD] = ts + s_hold_us[sg] if s_hold_us[sg] > 0 else 0
                        slots_i[slot, S_EXIT_ORDER] = -1
                        slots_i[slot, S_TP_ORDER] = -1
                        slots_i[slot, S_BEST] = px
                        slots_i[slot, S_WORST] = px
                        slots_i[slot, S_SIG] = sg
                        orders[o, O_SLOT] = slot
                        n_open += 1
                else:
                    want = slots_i[slot, S_QTY]
                q = min(want, cap)
                if q <= 0:
                    break
                if n_fills >= cap_fills:
                    status = OVERFLOW
                    break
                notional = price * q * lot
                fee = notional * fee_rate
                if walk:
                    slip_cost = abs(price - touch * tick) * q * lot
                    cons[sidx, it] += q
                else:
                    slip_cost = abs(price - fill_ticks * tick) * q * lot
                    avail -= q
                cash -= side * notional + fee
                filled_any = True
                fills_i[n_fills, FI_TS] = ts
                fills_i[n_fills, FI_ORDER] = o
                fills_i[n_fills, FI_SIDE] = side
                fills_i[n_fills, FI_QTY] = q
                fills_i[n_fills, FI_TAKER] = 1 if taker else 0
                fills_i[n_fills, FI_TRADE] = -1 if walk else j
                fills_f[n_fills, FF_PRICE] = price
                fills_f[n_fills, FF_FEE] = fee
                fills_f[n_fills, FF_SLIP] = slip_cost
                n_fills += 1
                orders[o, O_FILLED] += q
                slots_f[slot, F_FEES] += fee
                slots_f[slot, F_SLIP] += slip_cost
                if purpose == ENTRY:
                    slots_i[slot, S_QTY] += q
                    slots_i[slot, S_MAXQTY] += q
                    slots_f[slot, F_ENTRY_VALUE] += notional
                    sg = orders[o, O_SIG]
                    if s_stop[sg] != 0:
                        slots_f[slot, F_RISK] += abs(price - s_stop[sg] * tick) * q * lot
                    if orders[o, O_FILLED] >= orders[o, O_QTY]:
                        _close_order(orders, o, FILLED, ts)
                    if slots_i[slot, S_TARGET] != 0 and slots_i[slot, S_TP_ORDER] < 0:
                        tp, n_active = _new_order(orders, n_orders, active, n_active, sg,
                                                  slot, -side, LIMIT, TAKE_PROFIT,
                                                  slots_i[slot, S_TARGET], -1, ts, ts, 0)
                        if tp < 0:
                            status = OVERFLOW
                            break
                        orders[tp, O_SEEN] = 1
                        slots_i[slot, S_TP_ORDER] = tp
                        n_orders += 1
                else:
                    slots_i[slot, S_QTY] -= q
                    slots_f[slot, F_EXIT_VALUE] += notional
                    # an exit that has started ends the entry: its unfilled rest is cancelled
                    _close_order(orders, slots_i[slot, S_ENTRY_ORDER], CANCELLED, ts)
                    if slots_i[slot, S_QTY] == 0:
                        _close_order(orders, o, FILLED, ts)
                        for other_o in (slots_i[slot, S_TP_ORDER], slots_i[slot, S_EXIT_ORDER]):
                            if other_o >= 0:
                                _close_order(orders, other_o, CANCELLED, ts)
                        if n_trades >= cap_trades:
                            status = OVERFLOW
                            break
                        sd = slots_i[slot, S_SIDE]
                        trades_i[n_trades, T_SIDE] = sd
                        trades_i[n_trades, T_ENTRY_TS] = slots_i[slot, S_ENTRY_TS]
                        trades_i[n_trades, T_EXIT_TS] = ts
                        trades_i[n_trades, T_QTY] = slots_i[slot, S_MAXQTY]
                        trades_i[n_trades, T_REASON] = purpose
                        trades_i[n_trades, T_SIG] = slots_i[slot, S_SIG]
                        trades_i[n_trades, T_BEST] = slots_i[slot, S_BEST]
                        trades_i[n_trades, T_WORST] = slots_i[slot, S_WORST]
                        trades_i[n_trades, T_ENTRY_ORDER] = slots_i[slot, S_ENTRY_ORDER]
                        trades_f[n_trades, :] = slots_f[slot, :]
                        pnl = (sd * (slots_f[slot, F_EXIT_VALUE] - slots_f[slot, F_ENTRY_VALUE])
                               - slots_f[slot, F_FEES] - slots_f[slot, F_FUNDING])
                        n_trades += 1
                        slots_i[slot, S_ACTIVE] = 0
                        n_open -= 1
                        if pnl < 0:
                            losses_in_row += 1
                            if p[P_COOLDOWN_LOSSES] > 0 and losses_in_row >= p[P_COOLDOWN_LOSSES]:
                                cooldown_until = ts + np.int64(p[P_COOLDOWN_US])
                                losses_in_row = 0
                        else:
                            losses_in_row = 0
                if orders[o, O_STATUS] != ACTIVE:
                    break
            if status != OK:
                break
            if orders[o, O_STATUS] == ACTIVE:
                active[w] = o
                w += 1
        if status != OK:
            break
        n_active = w
        prev_px = px
        last_px = px
        # halts: from the next trade on, everything is closed and entries are refused
        if n_open > 0 or filled_any:
            eq = _equity(cash, slots_i, lot, px * tick)
            if eq > peak:
                peak = eq
            dd_hit = not halted_dd and eq <= peak * (1.0 - p[P_MAX_DD])
            day_hit = not halted_day and eq <= day_start_eq * (1.0 - p[P_DAILY_LOSS])
            if dd_hit or day_hit:
                if dd_hit:
                    halted_dd = True
                if day_hit:
                    halted_day = True
                for kk in range(n_active):
                    o = active[kk]
                    if orders[o, O_PURPOSE] == ENTRY and orders[o, O_SLOT] < 0:
                        _close_order(orders, o, CANCELLED, ts)
                for s in range(MAX_SLOTS):
                    if slots_i[s, S_ACTIVE] == 1:
                        if slots_i[s, S_EXIT_ORDER] >= 0:
                            continue
                        n_orders, n_active, ok = _exit_slot(orders, n_orders, active, n_active,
                                                            slots_i, s, HALT_EXIT, ts, 0)
                        if not ok:
                            status = OVERFLOW
                if status != OK:
                    break
    # signals after the last trade are never seen by the exchange
    while status == OK and n_mark < n_marks:
        _mark(marks_eq, marks_cash, marks_pos, n_mark, cash, slots_i, lot, last_px * tick)
        n_mark += 1
    return (status, orders, n_orders, fills_i, fills_f, n_fills, trades_i, trades_f, n_trades,
            marks_eq, marks_cash, marks_pos, n_mark, slots_i, slots_f, cash)
