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

Client ids are deterministic: ``bc-<session>-<number 10>-en|ex|sl|tp``, the number counting
the fills mirrored in this session from the journal's highest number + 1 when the process
starts, so a fill whose placement failed (an unknown outcome, the exchange unreachable) is
retried with the same id on the next call, and no id of an earlier process is ever reused.
A restart replays the store: fills made while replaying are never placed late (the mirror
starts at the first fill at or after ``live_from_us``); instead ``restart`` cancels the
session's open orders on the exchange (the last process's protection), places one market order
that brings the real position (the journal's fills) to the core's (two when the core holds the
other side: a reduce-only order cannot flip a futures position, so it is closed first), and
protects the result.
Quantities in base units, rounded down to the market's step; prices in quote currency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from botclave_cli.errors import ExchangeUnreachable
from botclave_cli.exchange.connector import OutcomeUnknown
from botclave_cli.exchange.orders.checks import MarketRules, OrderRefused
from botclave_cli.exchange.orders.manager import OrderManager
from botclave_cli.exchange.orders.model import OrderRequest, OrderStatus, client_order_id
from botclave_cli.exchange.orders.session import client_prefix
from botclave_cli.execution import layout as L
from botclave_cli.execution.core import ExecutionCore
from botclave_cli.execution.view import Fill, fills_since
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
        prefix = client_prefix(session)
        used = [int(c[len(prefix):len(prefix) + 10]) for c in manager.journal.orders()
                if c.startswith(prefix) and c[len(prefix):len(prefix) + 10].isdigit()]
        self.base = max(used, default=-1) + 1  # numbers of this process start here
        self.first_live: int | None = None  # the core's fill index that is number ``base``

    def position(self) -> float:
        """The real position in base units from the journal's fills of this session, on the
        market's step grid (a flat position's fills summed in floats leave 1e-17 or so, which
        is no position to protect or flatten)."""
        out = 0.0
        for order in self.manager.journal.orders().values():
            req = order.request
            if req is not None and req.symbol == self.symbol:
                out += order.filled if req.side == "buy" else -order.filled
        step = self.rules.step
        return round(out / step) * step if step else out

    def _qty(self, qty: float) -> float:
        step = self.rules.step or 0.0
        return math.floor(qty / step + 1e-9) * step if step else qty

    def sync(self, core: ExecutionCore, last_price: float) -> None:
        """Place what the core filled since the last call (call after the core got trades)."""
        fills = fills_since(core.state, core.params, self.mirrored)
        orders = core.state.orders
        for index, fill in enumerate(fills, start=self.mirrored):
            if fill.ts_us < self.live_from_us:
                self.mirrored = index + 1
                continue  # made while replaying the store: never placed late
            if self.first_live is None:
                self.first_live = index
            if not self._mirror(core, fill, self.base + index - self.first_live, last_price,
                                entry=int(orders[fill.order_id, L.O_PURPOSE]) == L.ENTRY):
                return  # its outcome is unknown: the next call tries it again, same id
            self.mirrored = index + 1

    def _mirror(self, core: ExecutionCore, fill: Fill, number: int, last_price: float, *,
                entry: bool) -> bool:
        """Place one fill's order; False when it must be tried again (same id)."""
        if not entry:
            self._cancel_protection()
        held = self.position()
        qty = self._qty(fill.qty if entry else min(fill.qty, abs(held)))
        if qty <= 0:
            return True  # the exchange's protection closed it already
        request = OrderRequest(client_id=client_order_id(self.session, number,
                                                         "entry" if entry else "exit"),
                               symbol=self.symbol, side=fill.side, type="market", qty=qty,
                               reduce_only=not entry and self.manager.futures)
        if not self._place(request, last_price, held):
            return False
        if entry and self.protect:
            self._protect(core, number, last_price)
        return True

    def _place(self, request: OrderRequest, last_price: float, held: float) -> bool:
        try:
            placed = self.manager.place(request, last_price=last_price, position_qty=held)
        except OrderRefused as exc:
            self.stats.refused.append(str(exc))
            log.warning("mirror order refused", extra={"reason": str(exc)})
            return True
        except (OutcomeUnknown, ExchangeUnreachable) as exc:
            log.warning("mirror order outcome unknown: retried", extra={"reason": str(exc)})
            return False
        self.stats.placed += int(placed.sent)
        return True

    def restart(self, core: ExecutionCore, last_price: float) -> None:
        """After a restart (module docstring): cancel the session's open orders, bring the
        real position to the core's (closed first when the core holds the other side),
        protect it."""
        self.cancel_all()
        want = core.view().position_qty
        held = self.position()
        if want * held < 0:  # the other side: closed first (a reduce-only order cannot flip)
            self._align(0.0, held, last_price)
            held = self.position()
        if want * held >= 0:
            self._align(want, held, last_price)
        if self.protect and self.position():
            self._protect(core, self.base, last_price)
            self.base += 1

    def _align(self, want: float, held: float, last_price: float) -> None:
        """One market order from the real position ``held`` to ``want`` (base units, on the
        same side or flat): an entry when it grows, else a reduce-only exit (futures)."""
        diff = self._qty(abs(want - held))
        if diff <= 0:
            return
        number = self.base
        self.base += 1
        grows = abs(want) > abs(held)
        request = OrderRequest(client_id=client_order_id(self.session, number,
                                                         "entry" if grows else "exit"),
                               symbol=self.symbol, side="buy" if want > held else "sell",
                               type="market", qty=diff,
                               reduce_only=not grows and self.manager.futures)
        log.info("position aligned after a restart", extra={"core": want, "real": held})
        self._place(request, last_price, held)

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
        except (OutcomeUnknown, ExchangeUnreachable) as exc:  # the next reconcile settles it
            log.warning("protection outcome unknown", extra={"reason": str(exc)})
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
