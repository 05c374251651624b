"""Column and parameter layout of the execution core's arrays (see ``kernel.py`` for rules).

Why integer column indices: the core's state lives in plain numpy arrays that numba compiles
against (cached, no Python per event); these names make ``orders[o, O_LIMIT]`` readable.
Units: prices in integer TICKS, quantities in integer LOTS, times in microseconds; money in
quote currency (float64).
"""

import numba

# Every step of the core is compiled with this: cached; without numba's reference counting (the
# steps allocate nothing; with it, each call of a step taking the state record increfs and
# decrefs its 18 arrays: measured 90 ns per call against 1.5 ns); inlined into
# ``kernel.advance`` (calls passing the record's 18 array structs cost 30-60 ns each: the
# whole stream then ran at 4M trades/s, inlined at 22-25M, the old single kernel's speed).
core_step = numba.njit(cache=True, _nrt=False, inline="always")  # type: ignore[call-overload]

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

# status of an advance: OK (the chunk is done), NEED_ROOM (stopped before a trade because an
# output array might fill up: the driver grows the arrays and advances again from that trade),
# OVERFLOW (an array filled up anyway: a bug in the room bound, never expected)
OK, NEED_ROOM, OVERFLOW = 0, 1, 2

# scalar state (int64 vector ``iv``): counts, the clock, indices into the event streams, risk
# counters; float state (``fv``): money
(I_N_ORDERS, I_N_ACTIVE, I_N_FILLS, I_N_TRADES, I_N_MARKS, I_NEXT_MARK, I_EQ_START, I_DAY,
 I_COOLDOWN_UNTIL, I_LOSSES_IN_ROW, I_N_OPEN, I_NEXT_SIGNAL, I_NEXT_FUNDING, I_LAST_PX,
 I_CONS_SAMPLE, I_HALTED_DAY, I_HALTED_DD, I_N_SEEN, I_CLOCK) = range(19)
I_N = 19
V_CASH, V_PEAK, V_DAY_START_EQ = range(3)
V_N = 3
MAX_SLOTS = 16
DAY_US = 86_400_000_000
