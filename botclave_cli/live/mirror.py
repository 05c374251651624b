"""Live trading: the paper core decides, the exchange executes. ``OrderMirror`` turns each fill of
the execution core (fed by the live trade stream exactly as in paper trading) into a real
market order of the same side and quantity through the ``OrderManager``, and protects every
position the core opens with exchange-side orders at the core's stop and target.

Why mirror fills rather than orders: the core's order logic (sizing from equity and the stop,
trailing stops, time stops, halts, cooldowns) is the one the backtest validated; mirroring its
fills keeps the real position equal to the simulated one without a second implementation of
it. The exchange-side protection (spot: one OCO order list, stop below and target above for a
long; futures: a reduce-only STOP_MARKET and a close-position TAKE_PROFIT_MARKET) guards the
position while the bot is down or the market moves faster than a bar; it is canceled before
the mirror closes the position itself.

Client ids are deterministic from the session and the core's fill number (``bc-<session>-
<fill 10>-en|ex|sl|tp``): after a restart the session replays the store, the core makes the
same fills in the same order, and a fill already mirrored is not placed again (the manager
finds it in the journal). Fills made while replaying (before the session went live again) are
never placed late: the mirror starts at the first fill at or after ``live_from_us``.
Quantities in base units, rounded down to the market's step; prices in quote currency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from botclave_cli.exchange.orders.checks import MarketRules, OrderRefused
from botclave_cli.exchange.orders.manager import OrderManager
from botclave_cli.exchange.orders.model import OrderRequest, OrderStatus, client_order_id
from botclave_cli.execution import layout as L
from botclave_cli.execution.core import ExecutionCore
from botclave_cli.execution.view import fills_since
from botclave_cli.logs import get_logger

log = get_logger(__name__)


@dataclass
class MirrorStats:
    placed: int = 0
    refused: list[str] = field(default_factory=list)
    protections: int = 0


class OrderMirror:
    """Mirrors one symbol's core fills to the exchange (module docstring)."""

    def __init__(self, manager: OrderManager, session: str, symbol: str, *,
                 protect: bool = True, live_from_us: int = 0) -> None:
        self.manager = manager
        self.session = session
        self.symbol = symbol
        self.protect = protect
        self.live_from_us = live_from_us
        self.mirrored = 0  # core fills looked at
        self.stats = MirrorStats()
        unified = manager.connector.resolve_symbol(symbol)
        self.rules = MarketRules.from_ccxt(manager.exchange.markets[unified])
        self._protection: list[str] = []  # client ids of the working protection

    def position(self) -> float:
        """The real position in base units from the journal's fills of this session."""
        out = 0.0
        for order in self.manager.journal.orders().values():
            req = order.request
            if req is not None and req.symbol == self.symbol:
                out += order.filled if req.side == "buy" else -order.filled
        return out

    def _qty(self, qty: float) -> float:
        step = self.rules.step or 0.0
        return math.floor(qty / step + 1e-9) * step if step else qty

    def sync(self, core: ExecutionCore, last_price: float) -> None:
        """Place what the core filled since the last call (call after the core got trades)."""
        fills = fills_since(core.state, core.params, self.mirrored)
        orders = core.state.orders
        for number, fill in enumerate(fills, start=self.mirrored):
            purpose = int(orders[fill.order_id, L.O_PURPOSE])
            if fill.ts_us < self.live_from_us:
                continue  # made while replaying the store: never placed late
            entry = purpose == L.ENTRY
            if not entry:
                self._cancel_protection()
            held = self.position()
            qty = self._qty(fill.qty if entry else min(fill.qty, abs(held)))
            if qty <= 0:
                continue  # the exchange's protection closed it already
            request = OrderRequest(client_id=client_order_id(self.session, number,
                                                             "entry" if entry else "exit"),
                                   symbol=self.symbol, side=fill.side, type="market", qty=qty,
                                   reduce_only=not entry and self.manager.futures)
            try:
                placed = self.manager.place(request, last_price=last_price, position_qty=held)
            except OrderRefused as exc:
                self.stats.refused.append(str(exc))
                log.warning("mirror order refused", extra={"reason": str(exc)})
                continue
            self.stats.placed += int(placed.sent)
            if entry and self.protect and placed.order.status == OrderStatus.FILLED:
                self._protect(core, number, last_price)
        self.mirrored += len(fills)

    def _protect(self, core: ExecutionCore, number: int, last_price: float) -> None:
        """Protect the whole position (after each entry fill: the earlier protection, for
        less, is canceled first)."""
        self._cancel_protection()
        view = core.view()
        if not view.positions:
            return
        pos = view.positions[-1]
        held = self.position()
        if held == 0 or pos.stop_price is None:
            return
        side = "sell" if held > 0 else "buy"
        qty = self._qty(abs(held))
        stop = OrderRequest(client_id=client_order_id(self.session, number, "stop"),
                            symbol=self.symbol, side=side, type="stop_market", qty=qty,
                            stop_price=pos.stop_price, reduce_only=self.manager.futures)
        legs = [stop]
        try:
            if pos.target_price is None:
                self.manager.place(stop, last_price=last_price, position_qty=held)
            elif self.manager.futures:
                target = OrderRequest(client_id=client_order_id(self.session, number, "target"),
                                      symbol=self.symbol, side=side, type="take_profit_market",
                                      stop_price=pos.target_price, close_position=True)
                self.manager.place(stop, last_price=last_price, position_qty=held)
                self.manager.place(target, last_price=last_price, position_qty=held)
                legs.append(target)
            else:
                target = OrderRequest(client_id=client_order_id(self.session, number, "target"),
                                      symbol=self.symbol, side=side, type="limit", qty=qty,
                                      price=pos.target_price)
                self.manager.place_oco(stop, target, client_order_id(self.session, number,
                                                                     "oco"),
                                       last_price=last_price, position_qty=held)
                legs.append(target)
        except OrderRefused as exc:
            self.stats.refused.append(str(exc))
            log.warning("protection refused", extra={"reason": str(exc)})
            return
        self._protection = [r.client_id for r in legs]
        self.stats.protections += 1

    def _cancel_protection(self) -> None:
        for cid in self._protection:
            order = self.manager.journal.order(cid)
            if order is not None and order.is_open:
                self.manager.cancel(cid)
        self._protection = []

    def cancel_all(self) -> None:
        """SIGTERM / stop: cancel every open order of the session."""
        for order in self.manager.journal.orders().values():
            if order.is_open and order.status != OrderStatus.NEW:
                self.manager.cancel(order.client_id)
        self._protection = []
