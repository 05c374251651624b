"""The order journal: every order event appended to SQLite, the audit trail the state comes from.

One database per trading session (``<data dir>/sessions/<session>/journal.sqlite``), WAL mode
with ``synchronous=FULL`` (the default; ``normal`` on request): a row is on disk before
``append`` returns, so a ``kill -9`` (or, with FULL, a power loss) loses at most the event being
written, never one already acknowledged. ``batch()`` writes the events of one step (an answer
and its fills, ``new`` + ``submitted``) in one transaction: one fsync for all of them, and
all or none of them after a crash. The table is append-only (SQL
triggers refuse UPDATE and DELETE); the current state of an order is a fold of its events
(``orders``), never a row changed in place.

Events (``kind``): ``new`` (the request, JSON in ``raw``), ``submitted`` (about to be sent),
``status`` (the exchange's answer or report: ``status``, ``exchange_id``, ``filled``,
``avg_price``), ``fill`` (one trade: ``trade_id``, ``qty``, ``price``, ``fee``, ``fee_asset``;
a trade id is journaled once per order, so a stream and a REST catch-up never count it twice),
``refused`` (a transition that is not allowed, or a pre-trade rule: ``reason``), ``adopted``
(an order found on the exchange that the journal had not seen), ``linked`` (a futures
conditional order's trigger placed the order ``exchange_id``: its trades are this order's),
``flag`` (a difference the
reconciliation could not settle), ``balance`` / ``position`` (snapshots, JSON in ``raw``).
Quantities in base units (contracts on COIN-M), prices in quote currency, times in ms UTC.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botclave_cli.errors import DataError
from botclave_cli.exchange.orders.model import TERMINAL, OrderRequest, OrderStatus, allowed

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT, exchange_id TEXT, symbol TEXT,
    qty REAL, price REAL, filled REAL, avg_price REAL,
    fee REAL, fee_asset TEXT, trade_id TEXT, reason TEXT, raw TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS one_fill_per_trade ON events (client_id, trade_id)
    WHERE kind = 'fill';
CREATE INDEX IF NOT EXISTS by_client ON events (client_id, seq);
CREATE TRIGGER IF NOT EXISTS no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the order journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the order journal is append-only'); END;
"""
COLUMNS = ("ts_ms", "client_id", "kind", "status", "exchange_id", "symbol", "qty", "price",
           "filled", "avg_price", "fee", "fee_asset", "trade_id", "reason", "raw")


@dataclass
class Fill:
    trade_id: str
    qty: float
    price: float
    fee: float
    fee_asset: str | None
    ts_ms: int


@dataclass
class Order:
    """An order as its events leave it. ``filled`` is the sum of its journaled fills (trades);
    ``reported_filled`` what the exchange last said (they differ until the fills are caught
    up); fees per asset."""

    client_id: str
    request: OrderRequest | None
    status: OrderStatus = OrderStatus.NEW
    exchange_id: str | None = None
    reported_filled: float = 0.0
    avg_price: float | None = None
    fills: list[Fill] = field(default_factory=list)
    adopted: bool = False
    last_seq: int = 0
    reason: str | None = None  # why it was rejected (a pre-trade rule or the exchange's answer)
    actual_id: str | None = None  # futures conditional order: the order its trigger placed

    @property
    def filled(self) -> float:
        return sum(f.qty for f in self.fills)

    @property
    def fees(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for f in self.fills:
            if f.fee_asset:
                out[f.fee_asset] = out.get(f.fee_asset, 0.0) + f.fee
        return out

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL

    @property
    def symbol(self) -> str | None:
        return self.request.symbol if self.request else None


class Journal:
    """The session's journal (module docstring); ``Journal(path)`` creates it where missing."""

    def __init__(self, path: Path, clock_ms: Any = None, sync: str = "full") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._now = clock_ms or (lambda: int(time.time() * 1000))
        self._lock = threading.RLock()  # one connection shared by the session's threads
        self._depth = 0  # nesting of batch()
        try:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={'NORMAL' if sync == 'normal' else 'FULL'}")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{path}: not an order journal ({exc})") from None

    def close(self) -> None:
        self.db.close()

    # appending -------------------------------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[None]:
        """Appends inside are one transaction (module docstring); nested batches join the
        outer one. Other threads' appends wait until it is committed."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self.db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self.db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self.db.execute("COMMIT")

    def append(self, client_id: str, kind: str, **values: Any) -> int | None:
        """Append one event; returns its seq, or None for a fill whose trade is already
        journaled for that order."""
        raw = values.pop("raw", None)
        row = {"ts_ms": values.pop("ts_ms", None) or self._now(), "client_id": client_id,
               "kind": kind, **values,
               "raw": raw if raw is None or isinstance(raw, str) else json.dumps(raw, default=str)}
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise ValueError(f"journal: unknown field(s) {sorted(unknown)}")
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        try:
            with self._lock:
                cur = self.db.execute(f"INSERT INTO events ({names}) VALUES ({marks})",
                                      tuple(row.values()))
        except sqlite3.IntegrityError:
            if kind == "fill":
                return None
            raise
        return cur.lastrowid

    def new(self, request: OrderRequest) -> None:
        self.append(request.client_id, "new", symbol=request.symbol, qty=request.qty,
                    price=request.price, raw=request.model_dump_json())

    def status(self, order: Order, status: OrderStatus, *, exchange_id: str | None = None,
               filled: float | None = None, avg_price: float | None = None,
               raw: Any = None, reason: str | None = None) -> bool:
        """Journal a status change if the machine allows it; a refused one is journaled as
        ``refused`` (with the reason) and leaves the state as it was. Same-status reports are
        journaled only when they say something new (filled, exchange id)."""
        if status == order.status and status != OrderStatus.PARTIALLY_FILLED:
            if exchange_id in (None, order.exchange_id) and filled in (None,
                                                                       order.reported_filled):
                return False
        elif not allowed(order.status, status):
            self.append(order.client_id, "refused", status=status.value,
                        reason=reason or f"transition {order.status} -> {status} not allowed",
                        raw=raw)
            return False
        self.append(order.client_id, "status", status=status.value, exchange_id=exchange_id,
                    filled=filled, avg_price=avg_price, symbol=order.symbol, reason=reason,
                    raw=raw)
        return True

    # reading ---------------------------------------------------------------------------------
    def events(self, client_id: str | None = None) -> Iterator[dict[str, Any]]:
        sql = "SELECT seq, " + ", ".join(COLUMNS) + " FROM events"
        args: tuple = ()
        if client_id is not None:
            sql += " WHERE client_id = ?"
            args = (client_id,)
        with self._lock:
            rows = self.db.execute(sql + " ORDER BY seq", args).fetchall()
        for row in rows:
            yield dict(zip(("seq", *COLUMNS), row, strict=True))

    def orders(self) -> dict[str, Order]:
        """Every order by client id, folded from its events in journal order."""
        return fold_orders(self.events())

    def order(self, client_id: str) -> Order | None:
        order = None
        for e in self.events(client_id):
            if order is None:
                order = Order(client_id, None)
            _apply(order, e)
        return order


def fold_orders(events: Iterable[dict[str, Any]]) -> dict[str, Order]:
    """Every order by client id, folded from journal events (``events`` rows: seq and
    ``COLUMNS``) in journal order; a reader with its own connection (the dashboard's,
    read-only) folds them as the journal does."""
    out: dict[str, Order] = {}
    for e in events:
        cid = e["client_id"]
        if cid.startswith("~"):  # session-level rows (balances, positions, flags)
            continue
        order = out.get(cid)
        if order is None:
            order = out[cid] = Order(cid, None)
        _apply(order, e)
    return out


def _apply(order: Order, e: dict[str, Any]) -> None:
    kind = e["kind"]
    order.last_seq = e["seq"]
    if kind in ("new", "adopted"):
        order.request = OrderRequest.model_validate_json(e["raw"]) if kind == "new" else \
            OrderRequest.model_validate(json.loads(e["raw"])["request"])
        order.adopted = order.adopted or kind == "adopted"
        if kind == "adopted":
            order.status = OrderStatus.SUBMITTED
    elif kind == "submitted":
        order.status = OrderStatus.SUBMITTED
    elif kind == "status":
        order.status = OrderStatus(e["status"])
        order.reason = e["reason"] or order.reason
        order.exchange_id = e["exchange_id"] or order.exchange_id
        if e["filled"] is not None:
            order.reported_filled = e["filled"]
        if e["avg_price"] is not None:
            order.avg_price = e["avg_price"]
    elif kind == "linked":
        order.actual_id = e["exchange_id"]
    elif kind == "fill":
        order.fills.append(Fill(e["trade_id"], e["qty"], e["price"], e["fee"] or 0.0,
                                e["fee_asset"], e["ts_ms"]))
