"""A spot trading account on the Binance REST emulator: the order endpoints ccxt calls.

``SpotTradingEmulator(markets, api_key=..., secret=...)`` serves everything ``BinanceEmulator``
serves plus, signed as Binance signs them (params in the query for GET/DELETE, in an
``application/x-www-form-urlencoded`` body for POST): ``POST /api/v3/order`` (MARKET, LIMIT
GTC/IOC/FOK, LIMIT_MAKER; ``newClientOrderId``; ``newOrderRespType`` ACK/RESULT/FULL), ``GET``
and ``DELETE /api/v3/order`` (``orderId`` or ``origClientOrderId``), ``GET /api/v3/openOrders``,
``GET /api/v3/myTrades`` (own fills: ``orderId``, ``fromId``, ``limit``), ``GET
/api/v3/account``, and the listen-key endpoints ``/api/v3/userDataStream``. Every path is also
served under ``/testnet`` (the testnet base); ``emu.log`` keeps the full path.

Matching: MARKET fills at once at the last price (taker, one trade); a LIMIT that crosses the
last price fills at it, else rests (IOC: expires; FOK: expires unless it crosses; LIMIT_MAKER
that would cross: -2010 "Order would immediately match and take."); ``set_price(p)`` fills the
resting limits it crosses at their limit price (maker). ``fill_partially(client id, qty)``.
Commission 0.1 % of what is received (base on a buy, quote on a sell). Errors as Binance:
-2010 "Duplicate order sent." (the client id of an OPEN order), -2013 "Order does not exist.",
-2011 "Unknown order sent.". Faults for the next order placements (``order_faults``):
``accept_then_timeout`` (placed, the answer comes after ``slow_answer_s``), ``reject_with_503``
(not placed, HTTP 503), ``429`` / ``418`` (not placed, Retry-After ``retry_after_s``),
``reset_after_accept`` (placed, then the connection is reset without an answer). ``events``
lists the user-data ``executionReport`` of every change.

Checks as Binance makes them: ``timestamp`` within ``recvWindow`` (default 5000 ms) of the
server's clock, ``skew_ms`` ahead of the real one, else -1021 "Timestamp for this request is
outside of the recvWindow."; the balance (-2010 "Account has insufficient balance for requested
action."); the filters PRICE_FILTER, LOT_SIZE and ``min_notional`` (-1013 "Filter failure: ...",
also when the markets the client loaded said otherwise).
"""

from __future__ import annotations

import itertools
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.emulator.binance_rest import ApiError, BinanceEmulator, _check_signed, _Handler

COMMISSION = 0.001


@dataclass
class EmuOrder:
    order_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    tif: str
    qty: float
    price: float | None
    time_ms: int
    status: str = "NEW"
    stop_price: float | None = None
    list_id: int = -1
    filled: float = 0.0
    quote: float = 0.0
    trades: list[dict] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "orderId": self.order_id, "orderListId": self.list_id,
                "clientOrderId": self.client_id, "price": f"{self.price or 0:.8f}",
                "origQty": f"{self.qty:.8f}", "executedQty": f"{self.filled:.8f}",
                "cummulativeQuoteQty": f"{self.quote:.8f}", "status": self.status,
                "timeInForce": self.tif, "type": self.type, "side": self.side,
                "stopPrice": f"{self.stop_price or 0:.8f}", "icebergQty": "0.00000000",
                "time": self.time_ms,
                "updateTime": self.time_ms, "isWorking": True,
                "workingTime": self.time_ms, "origQuoteOrderQty": "0.00000000",
                "selfTradePreventionMode": "EXPIRE_MAKER"}


class SpotTradingEmulator(BinanceEmulator):
    """Module docstring. ``last_price`` per Binance symbol id (default: the last agg trade)."""

    def __init__(self, markets: list, **kwargs: Any) -> None:
        super().__init__(markets, **kwargs)
        self.server.RequestHandlerClass = type("TradingHandler", (_TradingHandler,),
                                               {"emu": self})
        self.orders: dict[int, EmuOrder] = {}
        self.order_faults: list[str] = []
        self.slow_answer_s = 2.0
        self.events: list[dict] = []
        self.listen_keys: set[str] = set()
        self.balances: dict[str, float] = {"USDT": 100_000.0, "BTC": 10.0}
        self.last_price = {m.symbol: float(m._cache["agg_frame"]["p"][-1])
                           for m in self.markets.values()}
        self._ids = itertools.count(1001)
        self._trade_ids = itertools.count(5001)
        self._lock_orders = threading.RLock()
        self._listeners: list = []
        self.skew_ms = 0
        self.retry_after_s = 1
        self.min_notional = 0.0

    def server_ms(self) -> int:
        return super().server_ms() + self.skew_ms

    def check_recv_window(self, params: dict[str, str]) -> None:
        now = self.server_ms()
        stamp, window = int(params["timestamp"]), int(params.get("recvWindow") or 5000)
        if stamp < now - window or stamp > now + 1000:
            raise ApiError(400, -1021, "Timestamp for this request is outside of the "
                                       "recvWindow.")

    def check_filters(self, symbol: str, qty: float, price: float | None) -> None:
        m = next(m for (_, s), m in self.markets.items() if s == symbol)
        tick, lot = float(m.tick), float(m.lot)
        if price is not None and abs(round(price / tick) * tick - price) > tick * 1e-6:
            raise ApiError(400, -1013, "Filter failure: PRICE_FILTER")
        if abs(round(qty / lot) * lot - qty) > lot * 1e-6 or qty < lot:
            raise ApiError(400, -1013, "Filter failure: LOT_SIZE")
        if qty * (price or self.last_price[symbol]) < self.min_notional:
            raise ApiError(400, -1013, "Filter failure: NOTIONAL")

    def check_balance(self, o: EmuOrder) -> None:
        base, quote = o.symbol[:-4], o.symbol[-4:]
        need, asset = ((o.qty * (o.price or self.last_price[o.symbol]), quote)
                       if o.side == "BUY" else (o.qty, base))
        if self.balances.get(asset, 0.0) < need:
            raise ApiError(400, -2010, "Account has insufficient balance for requested action.")

    def on_user_event(self, market: str, fn) -> None:
        """``fn(event)`` for every user-data event of ``market`` (spot here)."""
        if market == "spot":
            self._listeners.append(fn)

    def key_ok(self, market: str, key: str) -> bool:
        return market == "spot" and key in self.listen_keys

    # the market ------------------------------------------------------------------------------
    def set_price(self, symbol: str, price: float) -> None:
        """Move the last price; resting limits it crosses fill at their price (maker)."""
        with self._lock_orders:
            self.last_price[symbol] = price
            for o in list(self.orders.values()):
                if o.symbol != symbol or o.status not in ("NEW", "PARTIALLY_FILLED"):
                    continue
                if o.type == "STOP_LOSS" and o.stop_price is not None:
                    hit = price <= o.stop_price if o.side == "SELL" else price >= o.stop_price
                    if hit:  # a market order when triggered
                        self._fill(o, o.qty - o.filled, price, maker=False)
                elif o.price is not None and self._crosses(o, price):
                    self._fill(o, o.qty - o.filled, o.price, maker=True)
                if o.status == "FILLED" and o.list_id >= 0:
                    self._expire_siblings(o)

    def _expire_siblings(self, o: EmuOrder) -> None:
        """OCO: one leg filled -> the other expires."""
        for other in self.orders.values():
            if other.list_id == o.list_id and other is not o and other.status == "NEW":
                other.status = "EXPIRED"
                self._event(other, "EXPIRED")

    def place_oco(self, p: dict[str, str]) -> dict[str, Any]:
        with self._lock_orders:
            list_id = next(self._ids)
            legs = []
            for pos in ("above", "below"):
                kind = p[f"{pos}Type"]
                price = float(p[f"{pos}Price"]) if p.get(f"{pos}Price") else None
                stop = float(p[f"{pos}StopPrice"]) if p.get(f"{pos}StopPrice") else None
                cid = p.get(f"{pos}ClientOrderId") or f"x-emu{next(self._ids)}"
                if cid in self.open_client_ids():
                    raise ApiError(400, -2010, "Duplicate order sent.")
                legs.append(EmuOrder(next(self._ids), cid, p["symbol"], p["side"], kind,
                                     p.get(f"{pos}TimeInForce", "GTC"), float(p["quantity"]),
                                     price, self.server_ms(), stop_price=stop,
                                     list_id=list_id))
            for o in legs:
                self.orders[o.order_id] = o
                self._event(o, "NEW")
            return {"orderListId": list_id, "contingencyType": "OCO",
                    "listStatusType": "EXEC_STARTED", "listOrderStatus": "EXECUTING",
                    "listClientOrderId": p.get("listClientOrderId"),
                    "transactionTime": self.server_ms(), "symbol": p["symbol"],
                    "orders": [{"symbol": o.symbol, "orderId": o.order_id,
                                "clientOrderId": o.client_id} for o in legs],
                    "orderReports": [o.as_json() for o in legs]}

    def fill_partially(self, client_id: str, qty: float) -> None:
        with self._lock_orders:
            o = self._by_client(client_id)
            self._fill(o, qty, o.price or self.last_price[o.symbol], maker=True)

    def open_client_ids(self) -> list[str]:
        return sorted(o.client_id for o in self.orders.values()
                      if o.status in ("NEW", "PARTIALLY_FILLED"))

    @staticmethod
    def _crosses(o: EmuOrder, price: float) -> bool:
        return price <= o.price if o.side == "BUY" else price >= o.price  # type: ignore[operator]

    def _fill(self, o: EmuOrder, qty: float, price: float, *, maker: bool) -> None:
        base, quote = o.symbol[:-4], o.symbol[-4:]
        qty = round(qty, 8)
        o.filled = round(o.filled + qty, 8)
        o.quote += qty * price
        o.status = "FILLED" if o.filled >= o.qty - 1e-12 else "PARTIALLY_FILLED"
        received = base if o.side == "BUY" else quote
        fee = (qty if o.side == "BUY" else qty * price) * COMMISSION
        sign = 1 if o.side == "BUY" else -1
        self.balances[base] = self.balances.get(base, 0.0) + sign * qty - (
            fee if received == base else 0.0)
        self.balances[quote] = self.balances.get(quote, 0.0) - sign * qty * price - (
            fee if received == quote else 0.0)
        trade = {"symbol": o.symbol, "id": next(self._trade_ids), "orderId": o.order_id,
                 "orderListId": -1, "price": f"{price:.8f}", "qty": f"{qty:.8f}",
                 "quoteQty": f"{qty * price:.8f}", "commission": f"{fee:.8f}",
                 "commissionAsset": received, "time": self.server_ms(),
                 "isBuyer": o.side == "BUY", "isMaker": maker, "isBestMatch": True}
        o.trades.append(trade)
        self._event(o, "TRADE", trade)

    def _event(self, o: EmuOrder, execution: str, trade: dict | None = None) -> None:
        self._publish({
            "e": "executionReport", "E": self.server_ms(), "s": o.symbol, "c": o.client_id,
            "S": o.side, "o": o.type, "f": o.tif, "q": f"{o.qty:.8f}",
            "p": f"{o.price or 0:.8f}", "x": execution, "X": o.status, "i": o.order_id,
            "l": trade["qty"] if trade else "0.00000000",
            "z": f"{o.filled:.8f}", "L": trade["price"] if trade else "0.00000000",
            "n": trade["commission"] if trade else "0", "N": trade["commissionAsset"]
            if trade else None, "T": self.server_ms(), "t": trade["id"] if trade else -1,
            "m": trade["isMaker"] if trade else False, "Z": f"{o.quote:.8f}",
            "C": o.client_id if execution == "CANCELED" else ""})

    def _publish(self, event: dict) -> None:
        self.events.append(event)
        for fn in self._listeners:
            fn(event)

    def _by_client(self, client_id: str) -> EmuOrder:
        for o in self.orders.values():
            if o.client_id == client_id:
                return o
        raise ApiError(400, -2013, "Order does not exist.")

    # endpoints -------------------------------------------------------------------------------
    def place(self, p: dict[str, str]) -> EmuOrder:
        with self._lock_orders:
            symbol, side, kind = p["symbol"], p["side"], p["type"]
            cid = p.get("newClientOrderId") or f"x-emu{next(self._ids)}"
            if cid in self.open_client_ids():
                raise ApiError(400, -2010, "Duplicate order sent.")
            price = float(p["price"]) if p.get("price") else None
            last = self.last_price[symbol]
            o = EmuOrder(next(self._ids), cid, symbol, side, kind,
                         p.get("timeInForce", "GTC"), float(p["quantity"]), price,
                         self.server_ms())
            self.check_filters(symbol, o.qty, price)
            self.check_balance(o)
            if kind == "LIMIT_MAKER" and self._crosses(o, last):
                raise ApiError(400, -2010, "Order would immediately match and take.")
            self.orders[o.order_id] = o
            self._event(o, "NEW")
            if kind == "MARKET":
                self._fill(o, o.qty, last, maker=False)
            elif self._crosses(o, last):
                if o.tif == "FOK" or o.tif in ("GTC", "IOC"):
                    self._fill(o, o.qty, last, maker=False)
            if o.status in ("NEW", "PARTIALLY_FILLED") and o.tif in ("IOC", "FOK"):
                o.status = "EXPIRED"
                self._event(o, "EXPIRED")
            return o

    def answer(self, o: EmuOrder, resp: str) -> dict[str, Any]:
        out = {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1,
               "clientOrderId": o.client_id, "transactTime": o.time_ms}
        if resp in ("RESULT", "FULL"):
            out.update({k: v for k, v in o.as_json().items() if k not in out})
        if resp == "FULL":
            out["fills"] = [{"price": t["price"], "qty": t["qty"],
                             "commission": t["commission"],
                             "commissionAsset": t["commissionAsset"], "tradeId": t["id"]}
                            for t in o.trades]
        return out

    def find(self, p: dict[str, str]) -> EmuOrder:
        if p.get("orderId"):
            o = self.orders.get(int(p["orderId"]))
            if o is None:
                raise ApiError(400, -2013, "Order does not exist.")
            return o
        if p.get("origClientOrderId"):
            return self._by_client(p["origClientOrderId"])
        raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but "
                                   "both were empty/null!")

    def cancel(self, p: dict[str, str]) -> EmuOrder:
        with self._lock_orders:
            try:
                o = self.find(p)
            except ApiError:
                raise ApiError(400, -2011, "Unknown order sent.") from None
            if o.status not in ("NEW", "PARTIALLY_FILLED"):
                raise ApiError(400, -2011, "Unknown order sent.")
            o.status = "CANCELED"
            self._event(o, "CANCELED")
            return o


class _TradingHandler(_Handler):
    emu: SpotTradingEmulator

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self._private("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._private("DELETE")

    def do_PUT(self) -> None:  # noqa: N802
        self._private("PUT")

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        path = url.path.removeprefix("/testnet")
        if path in ("/api/v3/order", "/api/v3/openOrders", "/api/v3/myTrades",
                    "/api/v3/account"):
            self._private("GET")
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        self._request = (url.path, params)
        self._serve(path, url.query, params)

    def _private(self, method: str) -> None:
        emu = self.emu
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        signed = url.query if method in ("GET", "DELETE") else body
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        params.update(dict(parse_qsl(body, keep_blank_values=True)))
        self._request = (url.path, params)
        path = url.path.removeprefix("/testnet")
        try:
            if path == "/api/v3/userDataStream":
                if not self.headers.get("X-MBX-APIKEY"):
                    raise ApiError(401, -2014, "API-key format invalid.")
                if method == "POST":
                    key = f"key{len(emu.listen_keys) + 1:04d}"
                    emu.listen_keys.add(key)
                    return self._done(200, {"listenKey": key})
                if params.get("listenKey") not in emu.listen_keys:
                    raise ApiError(400, -1125, "This listenKey does not exist.")
                return self._done(200, {})
            _check_signed(emu, params, signed, self.headers)
            emu.check_recv_window(params)
            if path == "/api/v3/order" and method == "POST":
                fault = emu.order_faults.pop(0) if emu.order_faults else None
                if fault == "reject_with_503":
                    return self._send(503, "<html>Service Unavailable</html>", {},
                                      content_type="text/html")
                if fault in ("429", "418"):
                    msg = "Too many requests." if fault == "429" else "IP banned."
                    return self._send(int(fault), json.dumps({"code": -1003, "msg": msg}),
                                      {"Retry-After": str(emu.retry_after_s)})
                o = emu.place(params)
                if fault == "reset_after_accept":
                    return self._reset()
                if emu.delay_s:  # placed, the answer not yet sent: where a kill hurts most
                    time.sleep(emu.delay_s)
                if fault == "accept_then_timeout":
                    time.sleep(emu.slow_answer_s)
                return self._done(200, emu.answer(o, params.get("newOrderRespType", "FULL")))
            if path == "/api/v3/orderList/oco" and method == "POST":
                return self._done(200, emu.place_oco(params))
            if path == "/api/v3/order" and method == "GET":
                return self._done(200, emu.find(params).as_json())
            if path == "/api/v3/order" and method == "DELETE":
                return self._done(200, emu.cancel(params).as_json())
            if path == "/api/v3/openOrders":
                return self._done(200, [o.as_json() for o in emu.orders.values()
                                        if o.status in ("NEW", "PARTIALLY_FILLED")
                                        and o.symbol == params.get("symbol", o.symbol)])
            if path == "/api/v3/myTrades":
                trades = [t for o in emu.orders.values() for t in o.trades
                          if t["symbol"] == params["symbol"]]
                if params.get("orderId"):
                    trades = [t for t in trades if t["orderId"] == int(params["orderId"])]
                if params.get("fromId"):
                    trades = [t for t in trades if t["id"] >= int(params["fromId"])]
                trades.sort(key=lambda t: t["id"])
                return self._done(200, trades[:int(params.get("limit") or 500)])
            if path == "/api/v3/account":
                return self._done(200, {"makerCommission": 10, "takerCommission": 10,
                                        "canTrade": True, "accountType": "SPOT",
                                        "balances": [{"asset": a, "free": f"{v:.8f}",
                                                      "locked": "0.00000000"}
                                                     for a, v in sorted(emu.balances.items())],
                                        "permissions": ["SPOT"]})
            return self._send(404, "<html>404</html>", {}, content_type="text/html")
        except ApiError as exc:
            return self._done(exc.status, {"code": exc.code, "msg": exc.msg})

    def _reset(self) -> None:
        self._record(0)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _done(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body), {})
