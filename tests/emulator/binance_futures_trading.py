"""A USD-M or COIN-M futures account on the Binance REST emulator: the trading endpoints ccxt's
``binanceusdm`` / ``binancecoinm`` call, signed and checked as Binance does.

``FuturesTradingEmulator([market], api_key=..., secret=...)`` (one market type: ``usdm`` serves
``/fapi``, ``coinm`` ``/dapi``; every path also under ``/testnet``):

- ``POST/GET/DELETE /v1/order`` (MARKET, LIMIT GTC/IOC/FOK/GTX, ``reduceOnly``,
  ``newClientOrderId``), ``GET /v1/openOrders``, ``GET /v1/userTrades`` (own fills);
- the Algo Order service that conditional orders go through (ccxt 4.5 sends STOP_MARKET and
  TAKE_PROFIT_MARKET there): ``POST/GET/DELETE /v1/algoOrder`` (``algoType`` CONDITIONAL,
  ``triggerPrice``, ``quantity`` or ``closePosition``, ``reduceOnly``, ``clientAlgoId``),
  ``GET /v1/openAlgoOrders``. ``set_price`` triggers them: the algo order goes TRIGGERED, a
  MARKET order (a client id of the exchange's) is placed and filled, and the algo order is
  FINISHED with ``actualOrderId``, ``executedQty`` and ``avgPrice``. When a position is closed,
  the symbol's open reduce-only and close-position algo orders expire (as Binance expires a
  GTE_GTC conditional order): a stop and a target protect a position like an OCO;
- ``POST /v1/positionSide/dual`` (the account starts in HEDGE mode, so a client must switch to
  one-way; -4059 "No need to change position side."), ``POST /v1/marginType`` (-4046 "No need
  to change margin type."), ``POST /v1/leverage``, ``GET leverageBracket``, ``GET
  positionRisk``, ``GET account``, the listen key ``/v1/listenKey``.
- Rules: in hedge mode an order without positionSide is refused (-4061); a reduce-only order
  that would open or grow a position is refused (-2022 "ReduceOnly Order is rejected."); a GTX
  limit that would take is refused (-5022); a conditional order that would trigger at once is
  refused (-2021 "Order would immediately trigger."); a duplicate client id of an open order is
  -4116 "ClientOrderId is duplicated."; filters and timestamps as on spot. ``order_faults``
  ``accept_then_timeout`` and ``reject_with_503`` as on spot (orders and algo orders).
- Accounting: one-way positions (contracts on COIN-M, base units on USD-M) with entry price and
  realised PnL; commission 0.02 % maker, 0.04 % taker in the margin asset (USDT; BTC on COIN-M,
  where a contract is ``contract_size`` USD). ``events`` holds ORDER_TRADE_UPDATE and
  ALGO_UPDATE user-data events as Binance sends them.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.emulator.binance_rest import ApiError, _check_signed
from tests.emulator.binance_spot_trading import EmuOrder, SpotTradingEmulator, _TradingHandler

MAKER, TAKER = 0.0002, 0.0004


@dataclass
class AlgoOrder:
    algo_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    qty: float | None  # None: closePosition
    trigger: float
    reduce_only: bool
    close_position: bool
    time_ms: int
    status: str = "NEW"
    actual_id: int | None = None
    executed: float = 0.0
    avg: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"algoId": self.algo_id, "clientAlgoId": self.client_id,
                "algoType": "CONDITIONAL", "orderType": self.type, "symbol": self.symbol,
                "side": self.side, "positionSide": "BOTH", "timeInForce": "GTC",
                "quantity": f"{self.qty or 0:.8f}", "algoStatus": self.status,
                "triggerPrice": f"{self.trigger:.8f}", "price": "0.00000000",
                "icebergQuantity": None, "selfTradePreventionMode": "EXPIRE_MAKER",
                "workingType": "CONTRACT_PRICE", "priceMatch": "NONE",
                "closePosition": self.close_position, "priceProtect": False,
                "reduceOnly": self.reduce_only, "createTime": self.time_ms,
                "updateTime": self.time_ms, "triggerTime": 0, "goodTillDate": 0,
                "actualOrderId": str(self.actual_id) if self.actual_id else "",
                "executedQty": f"{self.executed:.8f}", "avgPrice": f"{self.avg:.8f}"}


class FuturesTradingEmulator(SpotTradingEmulator):
    """Module docstring."""

    def __init__(self, markets: list, **kwargs: Any) -> None:
        super().__init__(markets, **kwargs)
        self.server.RequestHandlerClass = type("FuturesHandler", (_FuturesHandler,),
                                               {"emu": self})
        self.kind = markets[0].market
        self.prefix = "/fapi" if self.kind == "usdm" else "/dapi"
        self.margin_asset = "USDT" if self.kind == "usdm" else markets[0].base
        self.contract_size = {m.symbol: float(m.contract_size or 1) for m in markets}
        self.balances = {self.margin_asset: 100_000.0 if self.kind == "usdm" else 10.0}
        self.positions = {m.symbol: 0.0 for m in markets}
        self.entry = {m.symbol: 0.0 for m in markets}
        self.realized = {m.symbol: 0.0 for m in markets}
        self.dual_side = True  # Binance's default for many accounts: the client must set one-way
        self.margin_type = {m.symbol: "CROSSED" for m in markets}
        self.leverage = {m.symbol: 20 for m in markets}
        self.algos: dict[int, AlgoOrder] = {}
        self._algo_ids = itertools.count(3001)

    def on_user_event(self, market: str, fn) -> None:
        if market == self.kind:
            self._listeners.append(fn)

    def key_ok(self, market: str, key: str) -> bool:
        return market == self.kind and key in self.listen_keys

    # accounting ------------------------------------------------------------------------------
    def _notional_margin(self, symbol: str, qty: float, price: float) -> float:
        """The margin-asset value of ``qty`` at ``price`` (USDT; BTC for COIN-M contracts)."""
        if self.kind == "usdm":
            return qty * price
        return qty * self.contract_size[symbol] / price

    def check_balance(self, o: EmuOrder) -> None:
        if o.type == "MARKET" and self._reduces(o.symbol, o.side, o.qty):
            return
        price = o.price or self.last_price[o.symbol]
        need = self._notional_margin(o.symbol, o.qty, price) / self.leverage[o.symbol]
        if self.balances[self.margin_asset] < need:
            raise ApiError(400, -2019, "Margin is insufficient.")

    def _reduces(self, symbol: str, side: str, qty: float) -> bool:
        pos = self.positions[symbol]
        sign = 1 if side == "BUY" else -1
        return pos * sign < 0 and qty <= abs(pos) + 1e-12

    def _fill(self, o: EmuOrder, qty: float, price: float, *, maker: bool) -> None:
        qty = round(qty, 8)
        o.filled = round(o.filled + qty, 8)
        o.quote += qty * price
        o.status = "FILLED" if o.filled >= o.qty - 1e-12 else "PARTIALLY_FILLED"
        s = o.symbol
        sign = 1 if o.side == "BUY" else -1
        pos, entry = self.positions[s], self.entry[s]
        pnl = 0.0
        if pos * sign < 0:  # reduces (or flips) the position
            closed = min(qty, abs(pos))
            if self.kind == "usdm":
                pnl = closed * (price - entry) * (1 if pos > 0 else -1)
            else:
                size = self.contract_size[s]
                pnl = closed * size * (1 / entry - 1 / price) * (1 if pos > 0 else -1)
        new = round(pos + sign * qty, 8)
        if new == 0:
            self.entry[s] = 0.0
        elif pos * sign >= 0:  # opens or grows
            self.entry[s] = (abs(pos) * entry + qty * price) / abs(new)
        elif new * pos < 0:  # flipped through zero
            self.entry[s] = price
        self.positions[s] = new
        fee = self._notional_margin(s, qty, price) * (MAKER if maker else TAKER)
        self.balances[self.margin_asset] += pnl - fee
        self.realized[s] += pnl
        trade = {"symbol": s, "id": next(self._trade_ids), "orderId": o.order_id,
                 "side": o.side, "positionSide": "BOTH", "price": f"{price:.8f}",
                 "qty": f"{qty:.8f}", "realizedPnl": f"{pnl:.8f}",
                 "marginAsset": self.margin_asset, "commission": f"{fee:.8f}",
                 "commissionAsset": self.margin_asset, "time": self.server_ms(),
                 "buyer": o.side == "BUY", "maker": maker}
        if self.kind == "usdm":
            trade["quoteQty"] = f"{qty * price:.8f}"
        else:
            base_qty = self._notional_margin(s, qty, price)
            trade.update(pair=s.split("_")[0], baseQty=f"{base_qty:.8f}")
        o.trades.append(trade)
        self._event(o, "TRADE", trade)
        if new == 0 and pos != 0:
            self._expire_protection(s)

    def _expire_protection(self, symbol: str) -> None:
        for a in self.algos.values():
            if a.symbol == symbol and a.status == "NEW" and (a.reduce_only or a.close_position):
                a.status = "EXPIRED"
                self._algo_event(a)

    # events ----------------------------------------------------------------------------------
    def _event(self, o: EmuOrder, execution: str, trade: dict | None = None) -> None:
        avg = o.quote / o.filled if o.filled else 0.0
        self._publish({"e": "ORDER_TRADE_UPDATE", "E": self.server_ms(), "T": self.server_ms(),
                       "o": {"s": o.symbol, "c": o.client_id, "S": o.side, "o": o.type,
                             "f": o.tif, "q": f"{o.qty:.8f}", "p": f"{o.price or 0:.8f}",
                             "ap": f"{avg:.8f}", "sp": "0", "x": execution, "X": o.status,
                             "i": o.order_id, "l": trade["qty"] if trade else "0",
                             "z": f"{o.filled:.8f}", "L": trade["price"] if trade else "0",
                             "N": trade["commissionAsset"] if trade else None,
                             "n": trade["commission"] if trade else "0",
                             "T": self.server_ms(), "t": trade["id"] if trade else 0,
                             "m": trade["maker"] if trade else False,
                             "R": getattr(o, "reduce_only", False), "ps": "BOTH",
                             "rp": trade["realizedPnl"] if trade else "0"}})

    def _algo_event(self, a: AlgoOrder) -> None:
        self._publish({"e": "ALGO_UPDATE", "T": self.server_ms(), "E": self.server_ms(),
                       "o": {"caid": a.client_id, "aid": a.algo_id, "at": "CONDITIONAL",
                             "o": a.type, "s": a.symbol, "S": a.side, "ps": "BOTH",
                             "f": "GTC", "q": f"{a.qty or 0:.8f}", "X": a.status,
                             "ai": str(a.actual_id or ""), "ap": f"{a.avg:.8f}",
                             "aq": f"{a.executed:.8f}", "act": "MARKET" if a.actual_id else "0",
                             "tp": f"{a.trigger:.8f}", "R": a.reduce_only,
                             "cp": a.close_position}})

    # the market ------------------------------------------------------------------------------
    def set_price(self, symbol: str, price: float) -> None:
        with self._lock_orders:
            super().set_price(symbol, price)
            for a in list(self.algos.values()):
                if a.symbol == symbol and a.status == "NEW" and self._triggered(a, price):
                    self._trigger(a, price)

    @staticmethod
    def _triggered(a: AlgoOrder, price: float) -> bool:
        stop = a.type == "STOP_MARKET"
        if a.side == "SELL":
            return price <= a.trigger if stop else price >= a.trigger
        return price >= a.trigger if stop else price <= a.trigger

    def _trigger(self, a: AlgoOrder, price: float) -> None:
        qty = abs(self.positions[a.symbol]) if a.close_position else float(a.qty or 0)
        if a.reduce_only or a.close_position:
            qty = min(qty, abs(self.positions[a.symbol]))
        if qty <= 0:
            a.status = "EXPIRED"
            self._algo_event(a)
            return
        a.status = "TRIGGERED"
        o = EmuOrder(next(self._ids), f"x-emu{next(self._ids)}", a.symbol, a.side, "MARKET",
                     "GTC", qty, None, self.server_ms())
        self.orders[o.order_id] = o
        a.actual_id = o.order_id
        self._algo_event(a)
        self._event(o, "NEW")
        self._fill(o, qty, price, maker=False)
        a.executed, a.avg = o.filled, o.quote / o.filled
        a.status = "FINISHED"
        self._algo_event(a)

    # endpoints -------------------------------------------------------------------------------
    def place(self, p: dict[str, str]) -> EmuOrder:
        with self._lock_orders:
            self._one_way(p)
            cid = p.get("newClientOrderId") or f"x-emu{next(self._ids)}"
            if cid in self.open_client_ids():
                raise ApiError(400, -4116, "ClientOrderId is duplicated.")
            symbol, side = p["symbol"], p["side"]
            qty = float(p["quantity"])
            if p.get("reduceOnly") == "true" and not self._reduces(symbol, side, qty):
                raise ApiError(400, -2022, "ReduceOnly Order is rejected.")
            price = float(p["price"]) if p.get("price") else None
            probe = EmuOrder(0, cid, symbol, side, p["type"], p.get("timeInForce", "GTC"), qty,
                             price, 0)
            if probe.tif == "GTX" and self._crosses(probe, self.last_price[symbol]):
                raise ApiError(400, -5022, "Due to the order could not be executed as maker, "
                                           "the Post Only order will be rejected.")
            params = {**p, "newClientOrderId": cid}
            if probe.tif == "GTX":  # rests as a maker order, like a GTC
                params["timeInForce"] = "GTC"
            o = super().place(params)
            o.tif = probe.tif
            o.reduce_only = p.get("reduceOnly") == "true"  # type: ignore[attr-defined]
            return o

    def _one_way(self, p: dict[str, str]) -> None:
        if self.dual_side and not p.get("positionSide"):
            raise ApiError(400, -4061, "Order's position side does not match user's setting.")

    def place_algo(self, p: dict[str, str]) -> AlgoOrder:
        with self._lock_orders:
            self._one_way(p)
            if p.get("algoType") != "CONDITIONAL":
                raise ApiError(400, -1102, "Mandatory parameter 'algoType' was not sent, was "
                                           "empty/null, or malformed.")
            cid = p.get("clientAlgoId") or f"x-emu{next(self._ids)}"
            if any(a.client_id == cid and a.status == "NEW" for a in self.algos.values()):
                raise ApiError(400, -4116, "ClientOrderId is duplicated.")
            close = p.get("closePosition") == "true"
            reduce = p.get("reduceOnly") == "true"
            if close and (p.get("quantity") or reduce):
                raise ApiError(400, -1106, "Parameter 'quantity' or 'reduceOnly' sent when not "
                                           "required with closePosition.")
            kind = p["type"]
            if kind not in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
                raise ApiError(400, -1116, "Invalid orderType.")
            qty = None if close else float(p["quantity"])
            a = AlgoOrder(next(self._algo_ids), cid, p["symbol"], p["side"], kind, qty,
                          float(p["triggerPrice"]), reduce, close, self.server_ms())
            if qty is not None:
                self.check_filters(a.symbol, qty, None)
            if self._triggered(a, self.last_price[a.symbol]):
                raise ApiError(400, -2021, "Order would immediately trigger.")
            self.algos[a.algo_id] = a
            self._algo_event(a)
            return a

    def find_algo(self, p: dict[str, str]) -> AlgoOrder:
        for a in self.algos.values():
            if (p.get("algoId") and a.algo_id == int(p["algoId"])) or \
                    (p.get("clientAlgoId") and a.client_id == p["clientAlgoId"]):
                return a
        raise ApiError(400, -2013, "Order does not exist.")

    def cancel_algo(self, p: dict[str, str]) -> AlgoOrder:
        with self._lock_orders:
            a = self.find_algo(p)
            if a.status != "NEW":
                raise ApiError(400, -2011, "Unknown order sent.")
            a.status = "CANCELED"
            self._algo_event(a)
            return a

    def order_json(self, o: EmuOrder) -> dict[str, Any]:
        avg = o.quote / o.filled if o.filled else 0.0
        out = {"orderId": o.order_id, "symbol": o.symbol, "status": o.status,
               "clientOrderId": o.client_id, "price": f"{o.price or 0:.8f}",
               "avgPrice": f"{avg:.8f}", "origQty": f"{o.qty:.8f}",
               "executedQty": f"{o.filled:.8f}", "timeInForce": o.tif, "type": o.type,
               "origType": o.type, "reduceOnly": getattr(o, "reduce_only", False),
               "closePosition": False,
               "side": o.side, "positionSide": "BOTH", "stopPrice": "0", "workingType":
               "CONTRACT_PRICE", "priceProtect": False, "time": o.time_ms,
               "updateTime": self.server_ms()}
        if self.kind == "usdm":
            out["cumQuote"] = f"{o.quote:.8f}"
        else:
            out["cumBase"] = f"{self._notional_margin(o.symbol, o.filled, avg or 1):.8f}"
        return out

    def position_json(self, symbol: str) -> dict[str, Any]:
        pos, entry, last = self.positions[symbol], self.entry[symbol], self.last_price[symbol]
        if self.kind == "usdm":
            upnl = pos * (last - entry) if pos else 0.0
        else:
            size = self.contract_size[symbol]
            upnl = pos * size * (1 / entry - 1 / last) if pos else 0.0
        return {"symbol": symbol, "positionSide": "BOTH", "positionAmt": f"{pos:.8f}",
                "entryPrice": f"{entry:.8f}", "breakEvenPrice": f"{entry:.8f}",
                "markPrice": f"{last:.8f}", "unRealizedProfit": f"{upnl:.8f}",
                "liquidationPrice": "0", "isolatedMargin": "0", "notional":
                f"{pos * last:.8f}", "marginAsset": self.margin_asset, "isolatedWallet": "0",
                "initialMargin": "0", "maintMargin": "0", "positionInitialMargin": "0",
                "openOrderInitialMargin": "0", "adl": 0, "bidNotional": "0", "askNotional": "0",
                "updateTime": self.server_ms(), "leverage": str(self.leverage[symbol]),
                "marginType": self.margin_type[symbol].lower(), "isAutoAddMargin": "false",
                "maxNotionalValue": "1000000", "notionalValue": f"{pos * last:.8f}"}

    def account_json(self) -> dict[str, Any]:
        asset, wallet = self.margin_asset, self.balances[self.margin_asset]
        upnl = sum(float(self.position_json(s)["unRealizedProfit"]) for s in self.positions)
        row = {"asset": asset, "walletBalance": f"{wallet:.8f}",
               "unrealizedProfit": f"{upnl:.8f}", "marginBalance": f"{wallet + upnl:.8f}",
               "maintMargin": "0", "initialMargin": "0", "positionInitialMargin": "0",
               "openOrderInitialMargin": "0", "crossWalletBalance": f"{wallet:.8f}",
               "crossUnPnl": f"{upnl:.8f}", "availableBalance": f"{wallet:.8f}",
               "maxWithdrawAmount": f"{wallet:.8f}", "withdrawAvailable": f"{wallet:.8f}",
               "updateTime": self.server_ms()}
        return {"totalWalletBalance": f"{wallet:.8f}", "assets": [row],
                "positions": [self.position_json(s) for s in self.positions],
                "canTrade": True, "canDeposit": True, "canWithdraw": True, "feeTier": 0,
                "updateTime": self.server_ms()}

    def set_setting(self, endpoint: str, p: dict[str, str]) -> dict[str, Any]:
        if endpoint == "positionSide/dual":
            dual = p.get("dualSidePosition") == "true"
            if dual == self.dual_side:
                raise ApiError(400, -4059, "No need to change position side.")
            if any(self.positions.values()) or self.open_client_ids():
                raise ApiError(400, -4068, "Position side cannot be changed if there exists "
                                           "position.")
            self.dual_side = dual
            return {"code": 200, "msg": "success"}
        symbol = p["symbol"]
        if endpoint == "marginType":
            if p["marginType"] == self.margin_type[symbol]:
                raise ApiError(400, -4046, "No need to change margin type.")
            self.margin_type[symbol] = p["marginType"]
            return {"code": 200, "msg": "success"}
        self.leverage[symbol] = int(p["leverage"])
        cap = {"maxNotionalValue": "1000000"} if self.kind == "usdm" else {"maxQty": "1000"}
        return {"leverage": self.leverage[symbol], "symbol": symbol, **cap}


PRIVATE_GET = {"/v1/order", "/v1/openOrders", "/v1/userTrades", "/v1/algoOrder",
               "/v1/openAlgoOrders", "/v1/leverageBracket", "/v2/leverageBracket",
               "/v1/account", "/v2/account", "/v3/account", "/v1/positionRisk",
               "/v2/positionRisk", "/v3/positionRisk"}


class _FuturesHandler(_TradingHandler):
    emu: FuturesTradingEmulator

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        url = urlsplit(self.path)
        path = url.path.removeprefix("/testnet")
        if path.startswith(self.emu.prefix) and path[len(self.emu.prefix):] in PRIVATE_GET:
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
        endpoint = path.removeprefix(emu.prefix)
        try:
            if not path.startswith(emu.prefix):
                return self._send(404, "<html>404</html>", {}, content_type="text/html")
            if endpoint == "/v1/listenKey":
                return self._listen_key(method, params)
            _check_signed(emu, params, signed, self.headers)
            emu.check_recv_window(params)
            return self._done(200, self._route(method, endpoint, params))
        except ApiError as exc:
            return self._done(exc.status, {"code": exc.code, "msg": exc.msg})
        except _Unavailable:
            return self._send(503, "<html>Service Unavailable</html>", {},
                              content_type="text/html")

    def _listen_key(self, method: str, params: dict[str, str]) -> None:
        emu = self.emu
        if not self.headers.get("X-MBX-APIKEY"):
            raise ApiError(401, -2014, "API-key format invalid.")
        if method == "POST":
            key = f"fkey{len(emu.listen_keys) + 1:04d}"
            emu.listen_keys.add(key)
            return self._done(200, {"listenKey": key})
        if not emu.listen_keys:
            raise ApiError(400, -1125, "This listenKey does not exist.")
        return self._done(200, {})

    def _route(self, method: str, endpoint: str, p: dict[str, str]) -> Any:
        emu = self.emu
        if endpoint == "/v1/order":
            if method == "POST":
                fault = emu.order_faults.pop(0) if emu.order_faults else None
                if fault == "reject_with_503":
                    raise _Unavailable
                placed = emu.order_json(emu.place(p))
                if fault == "accept_then_timeout":
                    time.sleep(emu.slow_answer_s)
                return placed
            if method == "GET":
                return emu.order_json(emu.find(p))
            return emu.order_json(emu.cancel(p))
        if endpoint == "/v1/algoOrder":
            if method == "POST":
                fault = emu.order_faults.pop(0) if emu.order_faults else None
                placed_algo = emu.place_algo(p).as_json()
                if fault == "accept_then_timeout":
                    time.sleep(emu.slow_answer_s)
                return placed_algo
            if method == "GET":
                return emu.find_algo(p).as_json()
            a = emu.cancel_algo(p)
            return {"algoId": a.algo_id, "clientAlgoId": a.client_id, "code": "200",
                    "msg": "success"}
        if endpoint == "/v1/openOrders":
            return [emu.order_json(o) for o in emu.orders.values()
                    if o.status in ("NEW", "PARTIALLY_FILLED")
                    and o.symbol == p.get("symbol", o.symbol)]
        if endpoint == "/v1/openAlgoOrders":
            return [a.as_json() for a in emu.algos.values()
                    if a.status == "NEW" and a.symbol == p.get("symbol", a.symbol)]
        if endpoint == "/v1/userTrades":
            trades = sorted((t for o in emu.orders.values() for t in o.trades
                             if t["symbol"] == p["symbol"]), key=lambda t: t["id"])
            if p.get("orderId"):
                trades = [t for t in trades if t["orderId"] == int(p["orderId"])]
            if p.get("fromId"):
                trades = [t for t in trades if t["id"] >= int(p["fromId"])]
            return trades[:int(p.get("limit") or 500)]
        if endpoint in ("/v1/positionSide/dual", "/v1/marginType", "/v1/leverage"):
            return emu.set_setting(endpoint.removeprefix("/v1/"), p)
        if endpoint.endswith("/leverageBracket"):
            cap = ({"notionalCap": 1_000_000, "notionalFloor": 0} if emu.kind == "usdm"
                   else {"qtyCap": 1000, "qtyFloor": 0})
            return [{"symbol": s, "brackets": [{"bracket": 1, "initialLeverage": 125,
                                                "maintMarginRatio": 0.004, "cum": 0.0,
                                                **cap}]} for s in emu.positions]
        if endpoint.endswith("/positionRisk"):
            return [emu.position_json(s) for s in emu.positions
                    if s == p.get("symbol", s)]
        if endpoint.endswith("/account"):
            return emu.account_json()
        raise ApiError(400, -1000, f"emulator: {method} {endpoint} not served")


class _Unavailable(Exception):
    """Answer 503 with an HTML body, as Binance's gateway does."""
