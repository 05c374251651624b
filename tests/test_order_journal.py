"""The order journal and the order model: append-only SQLite, state folded from events, the
status machine refusing what it does not allow, deterministic client ids, pre-trade checks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from botclave_cli.config import OrderLimits
from botclave_cli.errors import UsageError
from botclave_cli.exchange.orders import checks
from botclave_cli.exchange.orders.journal import Journal
from botclave_cli.exchange.orders.model import (
    ALLOWED,
    TERMINAL,
    OrderRequest,
    OrderStatus,
    client_order_id,
)

S = OrderStatus


def limit_buy(cid: str = "bc-abc123-0000000001-en", **kw) -> OrderRequest:
    base = dict(client_id=cid, symbol="BTC/USDT", side="buy", type="limit", qty=0.01,
                price=60000.0)
    return OrderRequest(**{**base, **kw})


def test_client_ids_are_deterministic_short_and_in_binance_alphabet() -> None:
    a = client_order_id("session-2026-12-07", 42, "entry")
    assert a == client_order_id("session-2026-12-07", 42, "entry")
    assert a != client_order_id("session-2026-12-07", 42, "stop")
    assert a != client_order_id("session-2026-12-08", 42, "entry")
    assert a.startswith("bc-") and a.endswith("-0000000042-en") and len(a) == 23
    assert client_order_id("abc123", 7, "target") == "bc-abc123-0000000007-tp"
    with pytest.raises(UsageError, match="leg 'foo'"):
        client_order_id("abc123", 1, "foo")
    with pytest.raises(UsageError, match="signal number"):
        client_order_id("abc123", 10**10, "entry")


def test_request_validation() -> None:
    with pytest.raises(ValueError, match="needs a price"):
        OrderRequest(client_id="bc-x", symbol="BTC/USDT", side="buy", type="limit", qty=1.0)
    with pytest.raises(ValueError, match="needs a stop_price"):
        OrderRequest(client_id="bc-x", symbol="BTC/USDT", side="sell", type="stop_market",
                     qty=1.0)
    with pytest.raises(ValueError, match="client_id"):
        limit_buy(cid="has space")
    with pytest.raises(ValueError, match="post_only"):
        limit_buy(post_only=True, time_in_force="IOC")
    OrderRequest(client_id="bc-x", symbol="BTC/USDT:USDT", side="sell", type="stop_market",
                 stop_price=1.0, close_position=True)


def test_status_machine() -> None:
    assert ALLOWED[S.NEW] == {S.SUBMITTED, S.REJECTED}
    assert S.FILLED in ALLOWED[S.ACKNOWLEDGED] and S.REJECTED not in ALLOWED[S.ACKNOWLEDGED]
    assert all(not ALLOWED[t] for t in TERMINAL)


def test_journal_is_append_only_and_durable(tmp_path: Path) -> None:
    path = tmp_path / "s" / "journal.sqlite"
    j = Journal(path)
    j.new(limit_buy())
    mode = j.db.execute("PRAGMA journal_mode").fetchone()[0]
    sync = j.db.execute("PRAGMA synchronous").fetchone()[0]
    assert mode == "wal" and sync == 2  # FULL
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        j.db.execute("UPDATE events SET status = 'filled'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        j.db.execute("DELETE FROM events")
    j.close()
    again = Journal(path)  # a second process sees the row
    assert list(again.orders()) == ["bc-abc123-0000000001-en"]


def test_state_is_a_fold_of_the_events(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite", clock_ms=lambda: 1_700_000_000_000)
    req = limit_buy()
    j.new(req)
    j.append(req.client_id, "submitted")
    o = j.order(req.client_id)
    assert o is not None and o.status == S.SUBMITTED and o.request == req
    assert j.status(o, S.ACKNOWLEDGED, exchange_id="77", filled=0.0)
    assert not j.status(j.order(req.client_id), S.ACKNOWLEDGED, exchange_id="77", filled=0.0)
    j.append(req.client_id, "fill", trade_id="t1", qty=0.004, price=60000.0, fee=0.000004,
             fee_asset="BTC")
    # the same trade seen again (stream and REST catch-up): journaled once
    assert j.append(req.client_id, "fill", trade_id="t1", qty=0.004, price=60000.0) is None
    assert j.status(j.order(req.client_id), S.PARTIALLY_FILLED, filled=0.004)
    j.append(req.client_id, "fill", trade_id="t2", qty=0.006, price=59990.0, fee=0.000006,
             fee_asset="BTC")
    assert j.status(j.order(req.client_id), S.FILLED, filled=0.01, avg_price=59994.0)
    o = j.order(req.client_id)
    assert o.status == S.FILLED and o.filled == pytest.approx(0.01)
    assert o.fees == {"BTC": pytest.approx(0.00001)} and o.exchange_id == "77"
    # a filled order cannot be canceled: refused, journaled as such, the state unchanged
    assert not j.status(o, S.CANCELED)
    refused = [e for e in j.events(req.client_id) if e["kind"] == "refused"]
    assert refused[0]["reason"] == "transition filled -> canceled not allowed"
    assert j.order(req.client_id).status == S.FILLED
    assert [e["kind"] for e in j.events()] == ["new", "submitted", "status", "fill", "status",
                                               "fill", "status", "refused"]


def test_a_file_that_is_not_a_journal(tmp_path: Path) -> None:
    bad = tmp_path / "x.sqlite"
    bad.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(Exception, match="not an order journal"):
        Journal(bad)


RULES = checks.MarketRules("BTC/USDT", tick=0.01, step=0.00001, min_qty=0.00001, max_qty=9000.0,
                           min_notional=5.0, contract_size=None)


@pytest.mark.parametrize("kw, rule", [
    (dict(price=60000.005), "tick size"),
    (dict(qty=0.000015), "step size"),
    (dict(qty=0.00005), "min notional"),            # 3 USDT
    (dict(qty=0.1), "max order notional"),          # 6000 > 1000
    (dict(price=66000.0), "price band"),            # 10 % away
])
def test_each_rule_refuses_with_one_line(kw, rule: str) -> None:
    limits = OrderLimits(max_order_notional=1000.0, max_position_notional=5000.0)
    with pytest.raises(checks.OrderRefused) as err:
        checks.check(limit_buy(**kw), RULES, limits, last_price=60000.0, position_qty=0.0)
    assert err.value.rule == rule
    assert "\n" not in str(err.value) and rule in str(err.value)
    checks.check(limit_buy(), RULES, limits, last_price=60000.0, position_qty=0.0)  # passes


def test_max_position_and_kill_switch(tmp_path: Path) -> None:
    switch = tmp_path / "KILL"
    limits = OrderLimits(max_order_notional=1000.0, max_position_notional=1000.0,
                         kill_switch_file=switch)
    # holding 0.015 BTC (900 USDT): buying 0.01 more makes 1500 > 1000
    with pytest.raises(checks.OrderRefused, match="max position"):
        checks.check(limit_buy(), RULES, limits, 60000.0, position_qty=0.015)
    sell = limit_buy(side="sell", price=60000.0)
    checks.check(sell, RULES, limits, 60000.0, position_qty=0.015)  # reducing passes
    switch.write_text("stop")
    with pytest.raises(checks.OrderRefused, match="kill switch"):
        checks.check(limit_buy(), RULES, limits, 60000.0, position_qty=0.0)
    checks.check(sell, RULES, limits, 60000.0, position_qty=0.015)  # still passes
