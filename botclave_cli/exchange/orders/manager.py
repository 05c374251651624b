"""OrderManager: places, tracks and cancels real orders through ccxt, journaling every event.

The part that touches money. Its promises, and how they are kept:

- Never twice. Every order has a deterministic client id (model.client_order_id). ``place`` of
  an id the journal already knows never sends again: a journaled ``submitted`` whose answer was
  lost (timeout, reset, 5xx, a crash) is resolved by asking the exchange for that client id and
  adopting what it says; only an id the exchange says does not exist is sent (again, with the
  same id: Binance refuses a duplicate id, which is read as "already placed" and adopted).
- Never lost. The journal (journal.py, SQLite WAL, synchronous FULL) has the request before it
  is sent; ``resume`` after a restart finishes every order left ``new`` or ``submitted``;
  ``reconcile`` compares the journal with the exchange (reconcile.py).
- Nothing refused is sent. Pre-trade checks (checks.py) refuse with one line naming the rule; the
  refusal is journaled (``new -> rejected``).

Fills come from the user-data stream (``on_user_event``: spot ``executionReport``, futures
``ORDER_TRADE_UPDATE``) or, as the fallback, from REST polling (``refresh`` / ``poll``: the
order and its trades); a trade id is journaled once, whichever path saw it first.
Order types map to ccxt's unified ``create_order`` (module ``_ccxt_order``); a spot stop-loss
plus take-profit pair is one OCO order list (``place_oco``, ccxt's ``privatePostOrderListOco``:
ccxt has no unified OCO call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ccxt

from botclave_cli.config import OrderLimits
from botclave_cli.errors import BotclaveError, UsageError
from botclave_cli.exchange.connector import Connector, OutcomeUnknown
from botclave_cli.exchange.orders import checks
from botclave_cli.exchange.orders.journal import Journal, Order
from botclave_cli.exchange.orders.model import (
    BINANCE_STATUS,
    OrderRequest,
    OrderStatus,
    algo_status,
)
from botclave_cli.logs import get_logger

log = get_logger(__name__)
S = OrderStatus
#: ccxt exceptions the manager reads itself when placing: Binance answered with an error code, so
#: nothing was executed (bad request, filter failure, insufficient balance or margin, duplicate id,
#: reduce-only refused...). ccxt classifies some codes per market type and leaves others a plain
#: ExchangeError (COIN-M's -5022, say), so all of them; answers whose outcome is unknown (-1006,
#: -1007, timeouts, 5xx) are not ExchangeErrors and stay "submitted" until asked for.
ORDER_ERRORS = (ccxt.ExchangeError,)


def _ccxt_order(req: OrderRequest, futures: bool) -> tuple[str, float | None, float | None,
                                                           dict[str, Any]]:
    """(type, amount, price, params) of ccxt's create_order for ``req``."""
    params: dict[str, Any] = {"clientOrderId": req.client_id}
    if req.reduce_only or req.close_position:
        if not futures:
            raise UsageError(f"order {req.client_id}: reduce_only / close_position are "
                             "futures-only")
        params["closePosition" if req.close_position else "reduceOnly"] = True
    if req.type == "market":
        return "market", req.qty, None, params
    if req.type == "limit":
        if req.post_only:
            params["postOnly"] = True
        else:
            params["timeInForce"] = req.time_in_force
        return "limit", req.qty, req.price, params
    params["stopPrice"] = req.stop_price
    if req.type in ("stop_limit", "take_profit_limit"):
        if futures:
            raise UsageError(f"order {req.client_id}: {req.type} is for spot; futures use "
                             "stop_market / take_profit_market")
        params["timeInForce"] = req.time_in_force
        kind = "STOP_LOSS_LIMIT" if req.type == "stop_limit" else "TAKE_PROFIT_LIMIT"
        return kind, req.qty, req.price, params
    if futures:
        kind = "STOP_MARKET" if req.type == "stop_market" else "TAKE_PROFIT_MARKET"
    else:
        kind = "STOP_LOSS" if req.type == "stop_market" else "TAKE_PROFIT"
    return kind, None if req.close_position else req.qty, None, params


def _status_of(order: dict[str, Any]) -> OrderStatus:
    info = order.get("info") or {}
    if info.get("algoStatus"):
        found = algo_status(info["algoStatus"], float(order.get("filled") or 0),
                            order.get("amount"))
        if found is not None:
            return found
    raw = info.get("status") or info.get("X")
    if raw in BINANCE_STATUS:
        return BINANCE_STATUS[raw]
    unified = order.get("status")
    if unified == "open":
        return S.PARTIALLY_FILLED if (order.get("filled") or 0) > 0 else S.ACKNOWLEDGED
    return {"closed": S.FILLED, "canceled": S.CANCELED, "expired": S.EXPIRED,
            "rejected": S.REJECTED}.get(unified or "", S.ACKNOWLEDGED)


@dataclass
class PlaceResult:
    order: Order
    sent: bool  # a create request went out in this call


class OrderManager:
    """Orders of one trading session on one exchange market (module docstring)."""

    def __init__(self, connector: Connector, journal: Journal, limits: OrderLimits | None = None
                 ) -> None:
        self.connector = connector
        self.exchange = connector.exchange
        self.journal = journal
        self.limits = limits or connector.config.orders
        self.futures = connector.market_type != "spot"
        self._prepared: set[str] = set()

    # placing ---------------------------------------------------------------------------------
    def place(self, request: OrderRequest, *, last_price: float | None = None,
              position_qty: float = 0.0) -> PlaceResult:
        """Place ``request`` once (module docstring); the order as journaled afterwards."""
        order = self.journal.order(request.client_id)
        if order is not None and order.request != request:
            raise UsageError(f"order {request.client_id}: the journal holds a different "
                             "request under this client id")
        if order is None or order.status == S.NEW:
            symbol = self.connector.resolve_symbol(request.symbol)
            rules = checks.MarketRules.from_ccxt(self.exchange.markets[symbol])
            refused: checks.OrderRefused | None = None
            with self.journal.batch():  # new + submitted (or rejected): one fsync
                if order is None:
                    self.journal.new(request)
                    order = self._order(request.client_id)
                try:
                    checks.check(request, rules, self.limits, last_price, position_qty)
                except checks.OrderRefused as exc:
                    self.journal.status(order, S.REJECTED,
                                        reason=f"pre-trade: {exc.rule}: {exc}")
                    refused = exc
                else:
                    self.journal.append(request.client_id, "submitted", symbol=request.symbol)
            if refused is not None:
                raise refused
            return PlaceResult(self._send(self._order(request.client_id)), True)
        if order.status == S.SUBMITTED:
            found = self._find(order)
            if found is not None:
                return PlaceResult(self._adopt(order, found), False)
            return PlaceResult(self._send(order), True)
        return PlaceResult(order, False)

    def _send(self, order: Order) -> Order:
        req = order.request
        assert req is not None
        symbol = self.connector.resolve_symbol(req.symbol)
        self.prepare_symbol(symbol)
        kind, amount, price, params = _ccxt_order(req, self.futures)
        try:
            answer = self.connector.call(f"create order {req.client_id}",
                                         self.exchange.create_order, symbol, kind, req.side,
                                         amount, price, params, resend=False,
                                         passthrough=ORDER_ERRORS)
        except OutcomeUnknown as exc:
            log.warning("order outcome unknown", extra={"client_id": req.client_id,
                                                         "reason": str(exc)})
            found = self._find(order)
            if found is None:  # not executed: the next place() sends it again, same id
                raise
            return self._adopt(order, found)
        except ORDER_ERRORS as exc:
            _credentials(exc)
            if not _duplicate(exc):
                self.journal.status(order, S.REJECTED, reason=f"exchange: {_short(exc)}")
                return self._order(req.client_id)
            found = self._find(order)
            if found is None:
                raise BotclaveError(f"order {req.client_id}: the exchange says the client id "
                                    "is taken but does not find it") from None
            return self._adopt(order, found)
        # futures answers carry no fills (spot FULL answers do): their trades by order id
        return self.catch_up_trades(self._record(order, answer))

    def place_oco(self, stop: OrderRequest, target: OrderRequest, list_client_id: str,
                  *, last_price: float | None = None, position_qty: float = 0.0
                  ) -> list[Order]:
        """Spot: protect a position with one OCO order list, a ``target`` limit above (a sell's
        take-profit; below for a buy) and a ``stop`` (stop_market or stop_limit): when one
        fills the exchange cancels the other. Both legs are journaled as orders of their own;
        the list is sent once, by the same rules as ``place``."""
        if self.futures:
            raise UsageError("OCO order lists are spot-only; futures protect a position with "
                             "reduce-only stop_market / take_profit_market orders")
        if stop.side != target.side or stop.qty != target.qty or stop.symbol != target.symbol:
            raise UsageError(f"OCO {list_client_id}: both legs need the same symbol, side and "
                             "qty")
        if target.type != "limit" or stop.type not in ("stop_market", "stop_limit"):
            raise UsageError(f"OCO {list_client_id}: the target is a limit, the stop a "
                             "stop_market or stop_limit")
        legs = (stop, target)
        orders = [self.journal.order(r.client_id) for r in legs]
        if all(o is None for o in orders):
            symbol = self.connector.resolve_symbol(stop.symbol)
            rules = checks.MarketRules.from_ccxt(self.exchange.markets[symbol])
            for r in legs:
                self.journal.new(r)
            try:
                for r in legs:
                    checks.check(r, rules, self.limits, last_price, position_qty)
            except checks.OrderRefused as exc:
                for r in legs:
                    self.journal.status(self._order(r.client_id), S.REJECTED,
                                        reason=f"pre-trade: {exc.rule}: {exc}")
                raise
            for r in legs:
                self.journal.append(r.client_id, "submitted", symbol=r.symbol)
            return self._send_oco(stop, target, list_client_id)
        current = [self._order(r.client_id) for r in legs]
        if any(o.status == S.SUBMITTED for o in current):
            found = [self._find(o) for o in current]
            if all(f is None for f in found):
                return self._send_oco(stop, target, list_client_id)
            return [self._adopt(o, f) if f is not None else o
                    for o, f in zip(current, found, strict=True)]
        return current

    def _send_oco(self, stop: OrderRequest, target: OrderRequest, list_id: str) -> list[Order]:
        symbol = self.connector.resolve_symbol(stop.symbol)
        market = self.exchange.market(symbol)
        ex = self.exchange
        # a sell's target is above the price, its stop below; a buy's the other way round
        target_side, stop_side = ("above", "below") if stop.side == "sell" else ("below", "above")
        request: dict[str, Any] = {
            "symbol": market["id"], "side": stop.side.upper(),
            "quantity": ex.amount_to_precision(symbol, stop.qty),
            "listClientOrderId": list_id, "newOrderRespType": "FULL",
            f"{target_side}Type": "LIMIT_MAKER",
            f"{target_side}Price": ex.price_to_precision(symbol, target.price),
            f"{target_side}ClientOrderId": target.client_id,
            f"{stop_side}Type": "STOP_LOSS" if stop.type == "stop_market" else "STOP_LOSS_LIMIT",
            f"{stop_side}StopPrice": ex.price_to_precision(symbol, stop.stop_price),
            f"{stop_side}ClientOrderId": stop.client_id,
        }
        if stop.type == "stop_limit":
            request[f"{stop_side}Price"] = ex.price_to_precision(symbol, stop.price)
            request[f"{stop_side}TimeInForce"] = stop.time_in_force
        legs = [self._order(stop.client_id), self._order(target.client_id)]
        try:
            answer = self.connector.call(f"create OCO {list_id}", ex.privatePostOrderListOco,
                                         request, resend=False, passthrough=ORDER_ERRORS)
        except OutcomeUnknown:
            found = [self._find(o) for o in legs]
            if all(f is None for f in found):
                raise
            return [self._adopt(o, f) if f is not None else o
                    for o, f in zip(legs, found, strict=True)]
        except ORDER_ERRORS as exc:
            _credentials(exc)
            for o in legs:
                self.journal.status(o, S.REJECTED, reason=f"exchange: {_short(exc)}")
            return [self._order(o.client_id) for o in legs]
        reports = {r.get("clientOrderId"): r for r in answer.get("orderReports") or []}
        out = []
        for o in legs:
            report = reports.get(o.client_id)
            out.append(self._record(o, ex.parse_order(report, market)) if report else o)
        return out

    def prepare_symbol(self, symbol: str) -> None:
        """Futures: one-way position mode, then leverage and margin type as configured, set
        explicitly before the first order of the symbol (each once per session)."""
        if not self.futures or symbol in self._prepared:
            return
        ex = self.exchange
        try:
            self.connector.call("set position mode", ex.set_position_mode, False, symbol,
                                passthrough=(ccxt.ExchangeError,))
        except ccxt.ExchangeError as exc:
            if "No need to change" not in str(exc):
                raise BotclaveError(f"set one-way position mode: {_short(exc)}") from None
        if self.limits.margin_type is not None:
            try:
                self.connector.call("set margin type", ex.set_margin_mode,
                                    self.limits.margin_type, symbol,
                                    passthrough=(ccxt.ExchangeError,))
            except ccxt.ExchangeError as exc:
                if "No need to change" not in str(exc):
                    raise BotclaveError(f"set margin type: {_short(exc)}") from None
        if self.limits.leverage is not None:
            self.connector.call("set leverage", ex.set_leverage, self.limits.leverage, symbol)
        self._prepared.add(symbol)

    # tracking --------------------------------------------------------------------------------
    def _order(self, client_id: str) -> Order:
        order = self.journal.order(client_id)
        assert order is not None
        return order

    def _find(self, order: Order) -> dict[str, Any] | None:
        """The exchange's order for this client id, or None when it has none."""
        req = order.request
        assert req is not None
        symbol = self.connector.resolve_symbol(req.symbol)
        try:
            return self.connector.call(f"fetch order {req.client_id}", self.exchange.fetch_order,
                                       None, symbol, self._by_client(req),
                                       passthrough=(ccxt.OrderNotFound,))
        except ccxt.OrderNotFound:
            return None

    def _conditional(self, req: OrderRequest) -> bool:
        """A futures stop / take-profit: it lives in Binance's Algo Order service."""
        return self.futures and req.stop_price is not None

    def _by_client(self, req: OrderRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"origClientOrderId": req.client_id}
        if self._conditional(req):
            params["trigger"] = True
        return params

    def _adopt(self, order: Order, found: dict[str, Any]) -> Order:
        with self.journal.batch():
            self.journal.append(order.client_id, "adopted",
                                raw={"request": order.request.model_dump()
                                     if order.request else None, "exchange": found.get("info")})
            recorded = self._record(self._order(order.client_id), found)
        return self.catch_up_trades(recorded)

    def _record(self, order: Order, answer: dict[str, Any]) -> Order:
        """Journal what an exchange order structure says: its status and its trades (one
        transaction)."""
        status = _status_of(answer)
        actual = str((answer.get("info") or {}).get("actualOrderId") or "")
        with self.journal.batch():
            if actual and actual != order.actual_id:
                self.journal.append(order.client_id, "linked", exchange_id=actual)
            for trade in answer.get("trades") or []:
                self._fill(order.client_id, trade)
            self.journal.status(order, status, exchange_id=str(answer.get("id") or "") or None,
                                filled=answer.get("filled"), avg_price=answer.get("average"),
                                raw=answer.get("info"))
        return self._order(order.client_id)

    def _fill(self, client_id: str, trade: dict[str, Any]) -> None:
        fee = trade.get("fee") or {}
        tid = trade.get("id")
        if tid is None:
            return
        self.journal.append(client_id, "fill", trade_id=str(tid), qty=trade.get("amount"),
                            price=trade.get("price"), fee=fee.get("cost"),
                            fee_asset=fee.get("currency"), symbol=trade.get("symbol"),
                            ts_ms=trade.get("timestamp"), raw=trade.get("info"))

    def refresh(self, client_id: str) -> Order:
        """REST: the order's status and trades from the exchange (the stream's fallback)."""
        order = self._order(client_id)
        if order.is_open or order.reported_filled > order.filled:
            found = self._find(order)
            if found is None:
                return order
            order = self._record(order, found)
        return self.catch_up_trades(order)

    def catch_up_trades(self, order: Order) -> Order:
        """REST: the order's trades, when the exchange reports more filled than the journal
        holds (a fill the stream missed, a cancel answer after a partial fill)."""
        req = order.request
        if req is None or order.exchange_id is None or \
                order.reported_filled <= order.filled + 1e-12:
            return order
        symbol = self.connector.resolve_symbol(req.symbol)
        trades = self.connector.call(f"fetch trades of {order.client_id}",
                                     self.exchange.fetch_my_trades, symbol, None, None,
                                     {"orderId": order.actual_id or order.exchange_id})
        for trade in trades:
            self._fill(order.client_id, trade)
        return self._order(order.client_id)

    def poll(self) -> list[Order]:
        """``refresh`` every open order (the fallback while the user-data stream is down)."""
        return [self.refresh(o.client_id) for o in self.journal.orders().values()
                if o.is_open and o.status != S.NEW]

    def on_user_event(self, event: dict[str, Any]) -> Order | None:
        """Apply one user-data stream event (spot ``executionReport``, futures
        ``ORDER_TRADE_UPDATE``): its trade (once) and the status it reports. Events of orders
        this session did not journal are ignored here (``reconcile`` flags them)."""
        kind = event.get("e")
        if kind == "ALGO_UPDATE":
            return self._on_algo_event(event)
        if kind == "executionReport":
            o = event
        elif kind == "ORDER_TRADE_UPDATE":
            o = event.get("o") or {}
        else:
            return None
        status_raw = o.get("X")
        cid = o.get("C") if status_raw == "CANCELED" and o.get("C") else o.get("c")
        order = self.journal.order(cid) if cid else None
        linked = order is None and kind == "ORDER_TRADE_UPDATE"
        if linked:  # the order a conditional order's trigger placed (its client id is
            order = self._by_actual_id(str(o.get("i")))  # the exchange's)
        if order is None:
            return None
        with self.journal.batch():  # the event's trade and status: one transaction
            self._apply_event(order, o, event, linked=linked)
        return self._order(order.client_id)

    def _by_actual_id(self, order_id: str) -> Order | None:
        return next((o for o in self.journal.orders().values() if o.actual_id == order_id),
                    None)

    def _on_algo_event(self, event: dict[str, Any]) -> Order | None:
        """Futures ``ALGO_UPDATE``: a conditional order's status; once triggered, the id of
        the order it placed (whose ORDER_TRADE_UPDATE events carry the fills)."""
        o = event.get("o") or {}
        order = self.journal.order(o.get("caid") or "")
        if order is None:
            return None
        filled = float(o.get("aq") or 0)
        qty = order.request.qty if order.request else None
        status = algo_status(o.get("X") or "", filled, qty)
        with self.journal.batch():
            if o.get("ai") and str(o["ai"]) != order.actual_id:
                self.journal.append(order.client_id, "linked", exchange_id=str(o["ai"]))
            if status is not None:
                avg = float(o["ap"]) if float(o.get("ap") or 0) else None
                self.journal.status(self._order(order.client_id), status,
                                    exchange_id=str(o.get("aid")), filled=filled,
                                    avg_price=avg, raw=event)
        return self._order(order.client_id)

    def _apply_event(self, order: Order, o: dict[str, Any], event: dict[str, Any], *,
                     linked: bool = False) -> None:
        trade_id = o.get("t")
        if trade_id not in (None, -1, "-1") and float(o.get("l") or 0) > 0:
            self.journal.append(order.client_id, "fill", trade_id=str(trade_id),
                                qty=float(o["l"]), price=float(o["L"]),
                                fee=float(o.get("n") or 0), fee_asset=o.get("N"),
                                symbol=order.symbol, ts_ms=o.get("T") or event.get("E"),
                                raw=event)
        status = BINANCE_STATUS.get(o.get("X") or "")
        if status is not None:
            cum = float(o.get("z") or 0)
            avg = float(o["ap"]) if o.get("ap") not in (None, "0", "0.0", "") else (
                float(o["Z"]) / cum if cum and o.get("Z") else None)
            self.journal.status(self._order(order.client_id), status,
                                exchange_id=str(o.get("i")) if o.get("i") is not None
                                and not linked else None,
                                filled=cum, avg_price=avg, raw=event)

    def cancel(self, client_id: str) -> Order:
        """Cancel an open order; an order the exchange no longer has is refreshed instead."""
        order = self._order(client_id)
        if not order.is_open:
            return order
        req = order.request
        assert req is not None
        symbol = self.connector.resolve_symbol(req.symbol)
        try:
            answer = self.connector.call(f"cancel order {client_id}", self.exchange.cancel_order,
                                         order.exchange_id, symbol, self._by_client(req),
                                         passthrough=(ccxt.OrderNotFound,))
        except ccxt.OrderNotFound:
            return self.refresh(client_id)
        if self._conditional(req):  # the algo service answers a cancel with no status
            return self.refresh(client_id)  # ("code": "200", "msg": "success"): ask for it
        return self.catch_up_trades(self._record(order, answer))


def _credentials(exc: Exception) -> None:
    """Rejected keys are the configuration's fault, not the order's: say so (the order stays
    submitted and is asked for, then sent, once the keys work)."""
    if isinstance(exc, ccxt.AuthenticationError):
        raise UsageError(f"credentials rejected ({_short(exc)}); check "
                         "BOTCLAVE_BINANCE_API_KEY / _SECRET") from None


def _duplicate(exc: Exception) -> bool:
    """The exchange refused the order because its client id is taken: it is already placed.
    (ccxt raises InvalidOrder for Binance's -2010 "Duplicate order sent." and -4116.)"""
    text = str(exc)
    return isinstance(exc, ccxt.DuplicateOrderId) or "Duplicate order sent" in text or \
        "-4116" in text or "ClientOrderId is duplicated" in text


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:300]
