"""``AccountView``: a read-only picture of the core's state for the strategy deciding a bar.

What backtesting.py gives as ``self.position`` / ``self.trades`` / ``self.equity``: the open
positions, the orders still working, the equity and the last fills, taken from the execution
core as of the last trade processed. The same view is built in backtest, paper and live, so a
strategy that reads it decides alike in all three. Everything is copied into frozen
dataclasses and tuples: a strategy cannot change the core through it.

Units: prices and money in quote currency, quantities in base units, times in microseconds
since the epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from botclave_cli.execution import layout as L
from botclave_cli.execution.orders import equity
from botclave_cli.execution.state import CoreState

PURPOSES = ("entry", "stop_loss", "take_profit", "time_stop", "signal_exit", "halt_exit",
            "trailing_stop")
TYPES = ("market", "limit", "stop")
LAST_FILLS = 20


@dataclass(frozen=True)
class OpenPosition:
    side: Literal["long", "short"]
    qty: float
    entry_price: float          # average of the entry fills
    entry_ts_us: int
    stop_price: float | None    # where the protective stop stands now (trailing included)
    target_price: float | None
    signal_id: int


@dataclass(frozen=True)
class WorkingOrder:
    order_id: int
    side: Literal["buy", "sell"]
    type: Literal["market", "limit", "stop"]
    purpose: str
    limit_price: float | None
    qty: float | None           # None: an entry not sized yet (sized at its first fill)
    filled_qty: float
    arrival_ts_us: int
    signal_id: int


@dataclass(frozen=True)
class Fill:
    ts_us: int
    order_id: int
    side: Literal["buy", "sell"]
    price: float
    qty: float
    fee: float
    liquidity: Literal["maker", "taker"]


@dataclass(frozen=True)
class AccountView:
    clock_us: int | None        # the last trade processed
    equity: float               # cash + open positions at the last price
    cash: float
    positions: tuple[OpenPosition, ...]
    orders: tuple[WorkingOrder, ...]
    last_fills: tuple[Fill, ...]  # the most recent fills, oldest first (at most LAST_FILLS)

    @property
    def position_qty(self) -> float:
        """Net position in base units (long positive)."""
        return sum(p.qty if p.side == "long" else -p.qty for p in self.positions)

    @property
    def is_flat(self) -> bool:
        return not self.positions


def account_view(st: CoreState, params: np.ndarray, clock_us: int | None) -> AccountView:
    """The view of core state ``st`` (a ``CoreState``) with parameter vector ``params``."""
    tick, lot = float(params[L.P_TICK]), float(params[L.P_LOT])
    si, sf, o = st.slots_i, st.slots_f, st.orders
    iv = st.iv
    positions = []
    for s in np.flatnonzero(si[:, L.S_ACTIVE] == 1):
        held = int(si[s, L.S_MAXQTY])
        positions.append(OpenPosition(
            side="long" if si[s, L.S_SIDE] > 0 else "short", qty=float(si[s, L.S_QTY]) * lot,
            entry_price=float(sf[s, L.F_ENTRY_VALUE] / (held * lot)) if held else float("nan"),
            entry_ts_us=int(si[s, L.S_ENTRY_TS]),
            stop_price=float(si[s, L.S_STOP]) * tick if si[s, L.S_STOP] else None,
            target_price=float(si[s, L.S_TARGET]) * tick if si[s, L.S_TARGET] else None,
            signal_id=int(si[s, L.S_SIG])))
    orders = []
    for k in range(int(iv[L.I_N_ACTIVE])):
        oid = int(st.active[k])
        row = o[oid]
        if row[L.O_STATUS] != L.ACTIVE:
            continue
        orders.append(WorkingOrder(
            order_id=oid, side="buy" if row[L.O_SIDE] > 0 else "sell",
            type=TYPES[int(row[L.O_TYPE])],  # type: ignore[arg-type]
            purpose=PURPOSES[int(row[L.O_PURPOSE])],
            limit_price=float(row[L.O_LIMIT]) * tick if row[L.O_TYPE] == L.LIMIT else None,
            qty=float(row[L.O_QTY]) * lot if row[L.O_QTY] > 0 else None,
            filled_qty=float(row[L.O_FILLED]) * lot, arrival_ts_us=int(row[L.O_ARRIVAL]),
            signal_id=int(row[L.O_SIG])))
    fills = fills_since(st, params, int(iv[L.I_N_FILLS]) - LAST_FILLS)
    last_px = float(iv[L.I_LAST_PX]) * tick
    return AccountView(clock_us=clock_us, equity=float(equity(st, lot, last_px)),
                       cash=float(st.fv[L.V_CASH]),
                       positions=tuple(positions), orders=tuple(orders), last_fills=fills)


def fills_since(st: CoreState, params: np.ndarray, first: int) -> tuple[Fill, ...]:
    """Fills number ``first`` onwards (0 = the first of the run), oldest first: what a live
    session reports (alerts) as it goes."""
    lot = float(params[L.P_LOT])
    fi, ff = st.fills_i, st.fills_f
    return tuple(Fill(
        ts_us=int(fi[i, L.FI_TS]), order_id=int(fi[i, L.FI_ORDER]),
        side="buy" if fi[i, L.FI_SIDE] > 0 else "sell", price=float(ff[i, L.FF_PRICE]),
        qty=float(fi[i, L.FI_QTY]) * lot, fee=float(ff[i, L.FF_FEE]),
        liquidity="taker" if fi[i, L.FI_TAKER] == 1 else "maker")
        for i in range(max(0, first), int(st.iv[L.I_N_FILLS])))
