"""Reconciliation: make the journal agree with the exchange, on start and on demand.

After a crash (``kill -9`` at any point) the journal may hold orders whose outcome it never
learned, and the exchange may hold fills the journal never saw. ``reconcile`` settles each
difference and journals what it did, so that afterwards the journal's open orders are exactly
the exchange's open orders of this session and every fill of them is journaled once:

- a journaled order left ``new`` or ``submitted``: asked for by client id; found -> adopted with
  its status and trades; not found -> it never reached the exchange: ``rejected`` ("lost before
  the exchange"), never sent late (a stale entry is worse than none; the strategy decides anew);
- an order open on the exchange with this session's client-id prefix that the journal lacks (a
  crash between the exchange's answer and the journal's write cannot cause that: the request is
  journaled first; a journal restored from a backup can) -> adopted; any other order -> flagged;
- a journaled open order the exchange no longer lists as open -> refreshed (final status,
  trades);
- trades since the last journaled trade id of each symbol -> journaled to their order (once);
  trades of orders the journal lacks -> flagged; an order whose reported fill exceeds its
  journaled trades (a gap below the last id) -> its trades by order id;
- balances (spot) and positions (futures) -> journaled as a snapshot with the net of the
  journal's fills at that moment; the first snapshot of a session is the baseline, and at every
  later reconcile the exchange's figure must equal the baseline plus what the journal's fills
  changed since (spot: base and quote of each symbol, fees included; futures: the signed
  position): a difference (a trade outside this session, a fill the journal lacks) is flagged.
Every adoption, settlement and flag is a journal row and a line of the report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botclave_cli.exchange.orders.journal import Order
from botclave_cli.exchange.orders.manager import OrderManager
from botclave_cli.exchange.orders.model import OrderRequest, OrderStatus

S = OrderStatus
ACCOUNT = "~account"
FLAGS = "~reconcile"


@dataclass
class ReconcileReport:
    adopted: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)
    new_fills: int = 0
    open_orders: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"adopted {c}" for c in self.adopted] + [f"settled {c}" for c in self.settled]
        out += [f"lost before the exchange: {c}" for c in self.lost]
        out += [f"flagged: {f}" for f in self.flagged]
        out.append(f"{self.new_fills} fill(s) caught up; {len(self.open_orders)} open order(s)")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"adopted": self.adopted, "settled": self.settled, "lost": self.lost,
                "flagged": self.flagged, "new_fills": self.new_fills,
                "open_orders": self.open_orders}


def request_from(order: dict[str, Any]) -> OrderRequest:
    """The request an exchange order (ccxt structure) answers, for adopting it."""
    kind = (order.get("type") or "").lower()
    trigger = order.get("triggerPrice") or order.get("stopPrice")
    types = {"market": "market", "limit": "limit", "limit_maker": "limit",
             "stop_loss_limit": "stop_limit", "take_profit_limit": "take_profit_limit",
             "stop_loss": "stop_market", "stop_market": "stop_market", "stop": "stop_market",
             "take_profit": "take_profit_market", "take_profit_market": "take_profit_market"}
    tif = order.get("timeInForce")
    info = order.get("info") or {}
    close = str(info.get("closePosition", "false")).lower() == "true"
    return OrderRequest(
        client_id=order["clientOrderId"], symbol=order["symbol"], side=order["side"],
        type=types.get(kind, "limit"), qty=None if close else order.get("amount"),  # type: ignore[arg-type]
        price=order.get("price") if kind not in ("market", "stop_market", "stop_loss", "stop",
                                                 "take_profit", "take_profit_market") else None,
        stop_price=trigger, time_in_force=tif if tif in ("GTC", "IOC", "FOK") else "GTC",
        post_only=bool(order.get("postOnly")) and kind in ("limit", "limit_maker"),
        reduce_only=bool(order.get("reduceOnly")) and not close, close_position=close)


def reconcile(manager: OrderManager, symbols: list[str], prefix: str) -> ReconcileReport:
    """Settle the journal against the exchange for ``symbols`` (module docstring); ``prefix``:
    this session's client-id prefix (``bc-<session 6>-``)."""
    report = ReconcileReport()
    journal, conn = manager.journal, manager.connector
    for order in list(journal.orders().values()):
        if order.status in (S.NEW, S.SUBMITTED):
            _settle_unsent(manager, order, report)
    for symbol in symbols:
        unified = conn.resolve_symbol(symbol)
        known = journal.orders()
        listed = _open_orders(manager, unified)
        for o in listed:
            cid = o.get("clientOrderId") or ""
            if cid in known:
                manager._record(known[cid], o)
            elif cid.startswith(prefix):
                journal.append(cid, "adopted", raw={"request": request_from(o).model_dump(),
                                                     "exchange": o.get("info")})
                manager._record(manager._order(cid), o)
                report.adopted.append(cid)
            else:
                _flag(manager, report, f"{unified}: open order {cid or o.get('id')} is not "
                                       "this session's", o)
        open_ids = {o.get("clientOrderId") for o in listed}
        for order in journal.orders().values():
            if order.is_open and order.symbol and conn.resolve_symbol(order.symbol) == unified \
                    and order.client_id not in open_ids:
                manager.refresh(order.client_id)
                report.settled.append(order.client_id)
        report.new_fills += _catch_up_fills(manager, unified, report)
        for order in journal.orders().values():  # gaps below the last id: fills missed of
            if order.reported_filled > order.filled + 1e-12:  # an order that later trades
                before = len(order.fills)  # passed by (a cancel after a partial fill, say)
                report.new_fills += len(manager.catch_up_trades(order).fills) - before
    _check_account(manager, [conn.resolve_symbol(s) for s in symbols], report)
    report.open_orders = sorted(o.client_id for o in journal.orders().values() if o.is_open)
    return report


def _settle_unsent(manager: OrderManager, order: Order, report: ReconcileReport) -> None:
    found = manager._find(order) if order.status == S.SUBMITTED else None
    if found is not None:
        manager._adopt(order, found)
        report.adopted.append(order.client_id)
        return
    manager.journal.status(order, S.REJECTED, reason="lost before the exchange (reconcile: "
                           "the exchange does not know this client id)")
    report.lost.append(order.client_id)


def _open_orders(manager: OrderManager, symbol: str) -> list[dict[str, Any]]:
    conn, ex = manager.connector, manager.exchange
    listed = conn.call("fetch open orders", ex.fetch_open_orders, symbol)
    if manager.futures:  # conditional orders live in the algo service
        listed += conn.call("fetch open conditional orders", ex.fetch_open_orders, symbol,
                            None, None, {"trigger": True})
    return listed


def _catch_up_fills(manager: OrderManager, symbol: str, report: ReconcileReport) -> int:
    journal, conn, ex = manager.journal, manager.connector, manager.exchange
    by_exchange_id = {o.exchange_id: o for o in journal.orders().values() if o.exchange_id}
    by_exchange_id.update({o.actual_id: o for o in journal.orders().values() if o.actual_id})
    seen = [int(f.trade_id) for o in journal.orders().values()
            if o.symbol and conn.resolve_symbol(o.symbol) == symbol
            for f in o.fills if f.trade_id.isdigit()]
    params = {"fromId": max(seen) + 1} if seen else {}
    added = 0
    while True:
        trades = conn.call("fetch my trades", ex.fetch_my_trades, symbol, None, 1000, params)
        for t in trades:
            order = by_exchange_id.get(str(t.get("order")))
            if order is None:
                _flag(manager, report, f"{symbol}: trade {t.get('id')} of order "
                                       f"{t.get('order')} unknown to the journal", t)
                continue
            before = journal.order(order.client_id)
            manager._fill(order.client_id, t)
            after = journal.order(order.client_id)
            added += int(len(after.fills) > len(before.fills)) if before and after else 0
        if len(trades) < 1000:
            return added
        params = {"fromId": int(trades[-1]["id"]) + 1}


def _flag(manager: OrderManager, report: ReconcileReport, text: str, raw: Any) -> None:
    manager.journal.append(FLAGS, "flag", reason=text, raw=raw.get("info") if isinstance(
        raw, dict) else raw)
    report.flagged.append(text)


def fill_effects(manager: OrderManager, symbols: list[str]) -> dict[str, float]:
    """What the journal's fills changed: spot, per asset (base +qty / quote -qty x price on a
    buy, the other way on a sell, minus fees in their asset); futures, per symbol (signed
    position in base units, contracts on COIN-M)."""
    out: dict[str, float] = {}
    markets = manager.exchange.markets
    for order in manager.journal.orders().values():
        req = order.request
        if req is None or not order.fills:
            continue
        symbol = manager.connector.resolve_symbol(req.symbol)
        if symbol not in symbols:
            continue
        sign = 1.0 if req.side == "buy" else -1.0
        base, quote = markets[symbol]["base"], markets[symbol]["quote"]
        for f in order.fills:
            if manager.futures:
                out[symbol] = out.get(symbol, 0.0) + sign * f.qty
                continue
            out[base] = out.get(base, 0.0) + sign * f.qty
            out[quote] = out.get(quote, 0.0) - sign * f.qty * f.price
            if f.fee_asset:
                out[f.fee_asset] = out.get(f.fee_asset, 0.0) - f.fee
    return out


def _check_account(manager: OrderManager, symbols: list[str], report: ReconcileReport) -> None:
    """Snapshot the account and compare it with the baseline plus the fills (module
    docstring)."""
    journal, conn, ex = manager.journal, manager.connector, manager.exchange
    effects = fill_effects(manager, symbols)
    detail: Any
    fills = sum(len(o.fills) for o in journal.orders().values())
    if manager.futures:
        positions = conn.call("fetch positions", ex.fetch_positions, symbols)
        now = {p["symbol"]: float(p.get("contracts") or 0) * (-1 if p.get("side") == "short"
                                                             else 1) for p in positions}
        now.update({s: now.get(s, 0.0) for s in symbols})
        kind, detail = "position", [{k: p.get(k) for k in (
            "symbol", "contracts", "side", "entryPrice", "unrealizedPnl")} for p in positions]
    else:
        balance = conn.call("fetch balance", ex.fetch_balance)
        assets = {a for s in symbols for a in (ex.markets[s]["base"], ex.markets[s]["quote"])}
        total = balance.get("total") or {}
        now = {a: float(total.get(a) or 0) for a in assets}
        kind, detail = "balance", {"total": total}
    baseline = next((json.loads(e["raw"]) for e in journal.events(ACCOUNT)
                     if e["kind"] == kind and e["raw"] and '"baseline"' in e["raw"]), None)
    if baseline is not None:
        for key, value in sorted(now.items()):
            expected = baseline["baseline"].get(key, 0.0) + effects.get(key, 0.0) - \
                baseline["fills"].get(key, 0.0)
            # the exchange rounds each fill and fee to 8 decimals: allow that per fill
            if abs(value - expected) > 1e-8 * (fills + 1) + 1e-9 * abs(expected):
                _flag(manager, report, f"{kind} {key}: the exchange says {value:.8g}, the "
                                       f"journal's fills make it {expected:.8g}", {})
    raw = {"detail": detail, "now": now, "fills": effects}
    if baseline is None:
        raw["baseline"] = now
    journal.append(ACCOUNT, kind, raw=raw)
