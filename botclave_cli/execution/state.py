"""The execution core's whole state in one record of numpy arrays (``CoreState``).

Why a namedtuple of arrays rather than a numba jitclass or structref: jitclasses cannot be
cached (every process would pay the compile, against the 2 s first-call budget), structrefs
need a page of boilerplate per field; a namedtuple of arrays is cached by numba, mutated in
place by the compiled steps, pickled or copied by Python as it is, and each array can be grown
by the driver between two advances (``grow``). Scalars live in the ``iv`` (int64) and ``fv``
(float64) vectors under the ``I_*`` / ``V_*`` names of ``layout.py``.

Units: prices in ticks, quantities in lots, times in microseconds, money in quote currency.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from botclave_cli.execution import layout as L


class CoreState(NamedTuple):
    orders: np.ndarray      # (cap_orders, O_NCOL) int64: every order ever made, by id
    active: np.ndarray      # (cap_orders,) int64: ids of working orders, oldest first
    fills_i: np.ndarray     # (cap_fills, FI_NCOL) int64
    fills_f: np.ndarray     # (cap_fills, FF_NCOL) float64
    trades_i: np.ndarray    # (cap_trades, T_NCOL) int64: closed round trips
    trades_f: np.ndarray    # (cap_trades, TF_NCOL) float64
    slots_i: np.ndarray     # (MAX_SLOTS, S_NCOL) int64: open positions
    slots_f: np.ndarray     # (MAX_SLOTS, F_NCOL) float64
    marks_eq: np.ndarray    # (cap_marks,) float64: equity on the interval grid
    marks_cash: np.ndarray  # (cap_marks,) float64
    marks_pos: np.ndarray   # (cap_marks,) int64: net position in lots
    cons: np.ndarray        # (2, depth) int64: lots taken from the current book sample per level
    q_front: np.ndarray     # (cap_orders,) float64: book mode, lots ahead of a resting limit
    q_traded: np.ndarray    # (cap_orders,) float64: lots traded at its price since q_bi
    q_bi: np.ndarray        # (cap_orders,) int64: the last book sample compared
    q_prev: np.ndarray      # (cap_orders,) int64: the level's size there (-1 unknown)
    iv: np.ndarray          # (I_N,) int64 scalars
    fv: np.ndarray          # (V_N,) float64 scalars


def new_state(initial_equity: float, depth: int, cap_orders: int = 64, cap_fills: int = 256,
              cap_trades: int = 16, cap_marks: int = 64) -> CoreState:
    """An empty core: no order, no position, ``initial_equity`` cash, clock before any trade."""
    iv = np.zeros(L.I_N, np.int64)
    iv[L.I_DAY] = -1
    iv[L.I_CONS_SAMPLE] = -1
    iv[L.I_CLOCK] = np.iinfo(np.int64).min
    fv = np.zeros(L.V_N, np.float64)
    fv[[L.V_CASH, L.V_PEAK, L.V_DAY_START_EQ]] = initial_equity
    return CoreState(
        orders=np.zeros((cap_orders, L.O_NCOL), np.int64), active=np.zeros(cap_orders, np.int64),
        fills_i=np.zeros((cap_fills, L.FI_NCOL), np.int64),
        fills_f=np.zeros((cap_fills, L.FF_NCOL), np.float64),
        trades_i=np.zeros((cap_trades, L.T_NCOL), np.int64),
        trades_f=np.zeros((cap_trades, L.TF_NCOL), np.float64),
        slots_i=np.zeros((L.MAX_SLOTS, L.S_NCOL), np.int64),
        slots_f=np.zeros((L.MAX_SLOTS, L.F_NCOL), np.float64),
        marks_eq=np.zeros(cap_marks, np.float64), marks_cash=np.zeros(cap_marks, np.float64),
        marks_pos=np.zeros(cap_marks, np.int64), cons=np.zeros((2, max(depth, 1)), np.int64),
        q_front=np.zeros(cap_orders, np.float64), q_traded=np.zeros(cap_orders, np.float64),
        q_bi=np.zeros(cap_orders, np.int64), q_prev=np.zeros(cap_orders, np.int64),
        iv=iv, fv=fv)


def _grown(a: np.ndarray, rows: int) -> np.ndarray:
    if a.shape[0] >= rows:
        return a
    out = np.zeros((rows, *a.shape[1:]), a.dtype)
    out[: a.shape[0]] = a
    return out


def grow(st: CoreState, orders: int, fills: int, trades: int, marks: int) -> CoreState:
    """The same state with room for at least this many rows of each output (doubling, so the
    cost of growth over a stream stays linear)."""
    def size(have: int, need: int) -> int:
        return max(need, 2 * have) if need > have else have

    n_o = size(st.orders.shape[0], orders)
    n_f = size(st.fills_i.shape[0], fills)
    n_t = size(st.trades_i.shape[0], trades)
    n_m = size(st.marks_eq.shape[0], marks)
    return st._replace(
        orders=_grown(st.orders, n_o), active=_grown(st.active, n_o),
        fills_i=_grown(st.fills_i, n_f), fills_f=_grown(st.fills_f, n_f),
        trades_i=_grown(st.trades_i, n_t), trades_f=_grown(st.trades_f, n_t),
        marks_eq=_grown(st.marks_eq, n_m), marks_cash=_grown(st.marks_cash, n_m),
        marks_pos=_grown(st.marks_pos, n_m), q_front=_grown(st.q_front, n_o),
        q_traded=_grown(st.q_traded, n_o), q_bi=_grown(st.q_bi, n_o),
        q_prev=_grown(st.q_prev, n_o))
