"""The execution core: a resumable state machine that walks the trade stream and fills orders.

Why a state machine: fills, stops, partial fills and the risk engine are sequential (each fill
changes equity, which sizes the next order), and backtest, paper and live must share them. The
core holds its whole state in one ``CoreState`` record (``state.py``) and advances by events:
``advance`` takes a chunk of trades of any size (down to one) together with the signals, book
samples and funding known so far; feeding a stream whole or cut anywhere into chunks gives the
same orders, fills, trades and equity, byte for byte. The steps are named: ``pay_funding``,
``mark_until``, ``roll_day``, ``arrive_signals``, ``protect`` (steps.py), ``match``
(matching.py, with the book queue in queue.py), ``risk_halts``. Units inside: prices in integer
TICKS, quantities in integer LOTS, times in microseconds; money in quote currency (float64).

What a driver must feed before a chunk: every signal arriving (``arr``) at or before the
chunk's last trade, every book sample with ``ts`` at or before it, every funding time at or
before it. Signals are matched by arrival order; signal ids, book sample indices and order ids
are positions in those growing streams.

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
- Book mode (samples from backtest/book.py or the live DOM builder): market and triggered stop
  orders walk the sampled book at their arrival instead (one taker fill per level, trade index -1),
  limit orders wait for the queue ahead of them at their price (``P_QUEUE_MODEL``: only trades
  advance it, capped at the level's size, or also part of a fall of the level's size that trades do
  not explain). Without book arrays the kernel behaves exactly as described above.
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

Book mode in detail (empty book arrays = no book): With a book, a market or
triggered stop order (or a limit marketable at arrival, up to its price) walks the levels
of the last valid sample at or before its arrival: touch outward, taker, no bps slippage
(the slippage is the walk's distance from the touch); depth already taken by an earlier
order in the same sample is gone; what the visible depth cannot fill continues on the
following trades by the trade-price rules. A limit order notes the quantity resting at its
price on its side at arrival (queue ahead); a trade AT the limit first eats that queue and
only the rest of the trade can fill us (maker, at the limit); a trade THROUGH the limit
fills us whatever the queue. Book fills have trade index -1. Queue models
(``P_QUEUE_MODEL``): ``Q_RISK_AVERSE`` only trades at the price advance the queue (a
cancellation is behind us, unless the level's size falls below the queue ahead: the queue
is then capped at that size, hftbacktest's RiskAdverseQueueModel); ``Q_PROB_POWER``
moves the queue by ``prob_queue_front`` (power ``P_QUEUE_POWER``) instead, queue kept in
fractional lots, filled lots floored. Both compare each later sample of the level with
the previous one.
"""

from __future__ import annotations

from botclave_cli.execution.layout import (
    I_CLOCK,
    I_EQ_START,
    I_LAST_PX,
    I_N_ACTIVE,
    I_N_FILLS,
    I_N_MARKS,
    I_N_OPEN,
    I_N_ORDERS,
    I_N_SEEN,
    I_N_TRADES,
    I_NEXT_FUNDING,
    I_NEXT_MARK,
    I_NEXT_SIGNAL,
    MAX_SLOTS,
    NEED_ROOM,
    OK,
    OVERFLOW,
    P_EQ_INTERVAL_US,
    core_step,
)
from botclave_cli.execution.matching import match
from botclave_cli.execution.numba_cache import drop_stale_cache
from botclave_cli.execution.steps import (
    arrive_signals,
    mark_until,
    pay_funding,
    protect,
    risk_halts,
    roll_day,
)

drop_stale_cache()

NO_LIMIT = (1 << 63) - 1  # int64 max: no signal or funding ahead


@core_step
def _room_for(st, ts, sg, depth, p):
    """Whether every output array surely has room for what the trade at ``ts`` can produce: per
    arriving signal an entry and an exit per slot, per slot a protective and a halt exit, per
    entry matched a target, per matched order a fill per book level, per slot a closed trade,
    and the equity marks up to ``ts``."""
    n_new = 0
    while (st.iv[I_NEXT_SIGNAL] + n_new < sg.arr.shape[0]
           and sg.arr[st.iv[I_NEXT_SIGNAL] + n_new] <= ts):
        n_new += 1
    n_act = st.iv[I_N_ACTIVE]
    new_orders = n_new * (MAX_SLOTS + 1) + 2 * MAX_SLOTS + n_act + n_new
    if st.iv[I_N_ORDERS] + new_orders > st.orders.shape[0]:
        return False
    if st.iv[I_N_FILLS] + (n_act + new_orders) * depth > st.fills_i.shape[0]:
        return False
    if st.iv[I_N_TRADES] + MAX_SLOTS + n_act + n_new > st.trades_i.shape[0]:
        return False
    marks = 0
    if ts >= st.iv[I_NEXT_MARK]:
        marks = (ts - st.iv[I_NEXT_MARK]) // int(p[P_EQ_INTERVAL_US]) + 1
    return st.iv[I_N_MARKS] + marks <= st.marks_eq.shape[0]


@core_step
def _idle_end(st, t_ts, j, sg, f_ts):
    """The first trade at or after ``j`` that the core must process one by one while it is
    idle: the first at or after the next signal's arrival or the next funding time."""
    limit = NO_LIMIT
    if st.iv[I_NEXT_SIGNAL] < sg.arr.shape[0]:
        limit = sg.arr[st.iv[I_NEXT_SIGNAL]]
    if st.iv[I_NEXT_FUNDING] < f_ts.shape[0] and f_ts[st.iv[I_NEXT_FUNDING]] < limit:
        limit = f_ts[st.iv[I_NEXT_FUNDING]]
    lo, hi = j, t_ts.shape[0]
    while lo < hi:  # first index with t_ts >= limit (t_ts is sorted)
        mid = (lo + hi) // 2
        if t_ts[mid] < limit:
            lo = mid + 1
        else:
            hi = mid
    return lo


@core_step
def _skip_idle(st, t_ts, t_px, j, e, p):
    """Trades ``j..e-1`` while idle (flat, no working order, no signal or funding due, no
    book): what processing them one by one would do, at once. Flat, equity is the cash
    whatever the price, so the marks, the day roll and the halts come out the same."""
    last = e - 1
    mark_until(st, t_ts[last], p)
    roll_day(st, t_ts[last], p)
    st.iv[I_LAST_PX] = t_px[last]
    st.iv[I_N_SEEN] += e - j
    st.iv[I_CLOCK] = t_ts[last]


@core_step
def advance(st, t_ts, t_px, t_qty, first_trade, sg, bk, f_ts, f_rate, p):
    """Advance the core over a chunk of trades (``ts`` us, ``px`` ticks, ``qty`` lots; the
    chunk's first trade is trade ``first_trade`` of the stream). Returns (status, trades done):
    OK after the whole chunk; NEED_ROOM before a trade whose outputs might not fit (nothing of
    it applied: grow the state and advance again from there).

    Stretches where the core is idle (flat, no working order, no book) up to the next signal
    arrival or funding time are skipped at once (``_skip_idle``): same outputs, byte for byte,
    as trade by trade; a bars-only moving-average cross is flat half of the time."""
    depth = st.cons.shape[1] if bk.ts.shape[0] > 0 else 1
    interval = int(p[P_EQ_INTERVAL_US])
    no_book = bk.ts.shape[0] == 0
    n = t_ts.shape[0]
    j = 0
    while j < n:
        ts = t_ts[j]
        px = t_px[j]
        if st.iv[I_N_SEEN] == 0:
            st.iv[I_LAST_PX] = px
            st.iv[I_EQ_START] = (ts // interval) * interval
            st.iv[I_NEXT_MARK] = st.iv[I_EQ_START]
        elif no_book and st.iv[I_N_ACTIVE] == 0 and st.iv[I_N_OPEN] == 0:
            e = _idle_end(st, t_ts, j, sg, f_ts)
            if e > j:
                if not _room_for(st, t_ts[e - 1], sg, depth, p):
                    return NEED_ROOM, j
                _skip_idle(st, t_ts, t_px, j, e, p)
                j = e
                continue
        if not _room_for(st, ts, sg, depth, p):
            return NEED_ROOM, j
        pay_funding(st, ts, f_ts, f_rate, p)
        mark_until(st, ts, p)
        roll_day(st, ts, p)
        ok = arrive_signals(st, ts, sg, p)
        ok = ok and protect(st, ts, px, p)
        if not ok:
            return OVERFLOW, j
        filled_any, ok = match(st, first_trade + j, ts, px, t_qty[j], sg, bk, p)
        if not ok:
            return OVERFLOW, j
        st.iv[I_LAST_PX] = px
        st.iv[I_N_SEEN] += 1
        st.iv[I_CLOCK] = ts
        if not risk_halts(st, ts, px, filled_any, p):
            return OVERFLOW, j
        j += 1
    return OK, n
