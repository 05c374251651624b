"""The order manager under the exchange's error answers and under random faults, against the
spot trading emulator through the real ccxt class: a clock off by more than recvWindow (-1021),
429 with Retry-After, insufficient balance (-2010), filter failures (-1013), a connection reset
after the order was accepted, a cancel that races a fill; then a few hundred orders with random
faults: none placed twice, none lost, and the journal equal to the emulator."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from botclave_cli.exchange.connector import OutcomeUnknown
from botclave_cli.exchange.orders.model import OrderRequest, OrderStatus
from botclave_cli.exchange.orders.reconcile import reconcile
from botclave_cli.exchange.orders.session import client_prefix
from tests.test_order_manager import SESSION, emu, manager, posts, req  # noqa: F401

S = OrderStatus


def placed_ids(emu) -> list[str]:  # noqa: F811
    return [o.client_id for o in emu.orders.values()]


def test_a_clock_off_by_more_than_recv_window_is_resynchronised(emu, tmp_path: Path) -> None:  # noqa: F811
    m = manager(emu, tmp_path)
    emu.skew_ms = 30_000  # the server's clock 30 s ahead of ours: every signed call is -1021
    o = m.place(req(1), last_price=60_000.0).order
    assert o.status == S.ACKNOWLEDGED and placed_ids(emu) == [req(1).client_id]
    refused = [s for p, _, s in emu.log if p.endswith("/api/v3/order")]
    assert 400 in refused  # the first attempt was refused, unexecuted
    assert any(p.endswith("/api/v3/time") for p, _, _ in emu.log)  # the offset measured
    assert m.exchange.options["timeDifference"] <= -29_000


@pytest.mark.parametrize("status", ["429", "418"])
def test_a_refusal_is_waited_out_for_its_retry_after_and_placed_once(emu, tmp_path: Path,  # noqa: F811
                                                                       status: str) -> None:
    m = manager(emu, tmp_path)
    emu.order_faults.append(status)
    o = m.place(req(2), last_price=60_000.0).order
    assert o.status == S.ACKNOWLEDGED and placed_ids(emu) == [req(2).client_id]
    assert [s for p, _, s in emu.log if p.endswith("/api/v3/order")][:2] == [int(status), 200]
    assert any("Retry-After 1" in why and wait == 1 for why, wait in m.connector.stats.waits)


@pytest.mark.parametrize("tif, price, status, filled", [
    ("IOC", 60_000.0, S.FILLED, 0.01), ("IOC", 59_000.0, S.EXPIRED, 0.0),
    ("FOK", 60_000.0, S.FILLED, 0.01), ("FOK", 59_000.0, S.EXPIRED, 0.0)])
def test_ioc_and_fok(emu, tmp_path: Path, tif: str, price: float, status, filled) -> None:  # noqa: F811
    m = manager(emu, tmp_path)
    o = m.place(req(60, price=price, time_in_force=tif), last_price=60_000.0).order
    assert o.status == status and o.filled == pytest.approx(filled)
    sent = [q for p, q, _ in emu.log if p.endswith("/api/v3/order") and "side" in q]
    assert sent[-1]["timeInForce"] == tif and emu.open_client_ids() == []


def test_insufficient_balance_and_filter_failures_are_rejections(emu, tmp_path: Path) -> None:  # noqa: F811
    m = manager(emu, tmp_path, max_order_notional=10_000_000.0)
    o = m.place(req(3, qty=5.0), last_price=60_000.0).order  # 300k USDT, 100k in the account
    assert o.status == S.REJECTED and "insufficient balance" in o.reason
    emu.min_notional = 1_000.0  # the exchange's filter is stricter than the markets loaded
    o = m.place(req(4), last_price=60_000.0).order  # 590 USDT
    assert o.status == S.REJECTED and "Filter failure: NOTIONAL" in o.reason
    assert emu.open_client_ids() == []
    assert m.place(req(4), last_price=60_000.0).sent is False  # a rejection is final


def test_a_reset_after_acceptance_adopts_the_order(emu, tmp_path: Path) -> None:  # noqa: F811
    m = manager(emu, tmp_path)
    emu.order_faults.append("reset_after_accept")
    o = m.place(req(5), last_price=60_000.0).order
    assert o.adopted and o.status == S.ACKNOWLEDGED and placed_ids(emu) == [req(5).client_id]


def test_a_cancel_that_races_a_fill_ends_filled(emu, tmp_path: Path) -> None:  # noqa: F811
    m = manager(emu, tmp_path)
    cid = m.place(req(6), last_price=60_000.0).order.client_id
    emu.set_price("BTCUSDT", 58_900.0)  # filled on the exchange before our cancel arrives
    o = m.cancel(cid)
    assert o.status == S.FILLED and len(o.fills) == 1 and o.filled == pytest.approx(0.01)
    assert m.cancel(cid).status == S.FILLED


FAULTS = ["accept_then_timeout", "reject_with_503", "429", "reset_after_accept"]


def test_hundreds_of_orders_with_random_faults(emu, tmp_path: Path) -> None:  # noqa: F811
    """300 orders, about one in four with a fault on its placement, partial fills, price moves
    that fill resting limits, and cancels (some racing fills). After every order has been
    placed or retried to an end and a final reconcile, the journal equals the emulator."""
    rng = random.Random(11)
    emu.slow_answer_s = 0.3
    emu.retry_after_s = 0
    m = manager(emu, tmp_path, max_order_notional=1_000_000.0)
    m.exchange.timeout = 150  # ms: only the lost answers wait for it
    m.exchange.enableRateLimit = False  # ccxt's spacing of requests: not under test here
    emu.balances["USDT"] = 1_000_000.0
    injected: Counter[str] = Counter()
    price = 60_000.0
    unknown: list[OrderRequest] = []
    for i in range(300):
        if rng.random() < 0.25:
            fault = rng.choice(FAULTS)
            emu.order_faults.append(fault)
            injected[fault] += 1
        side = rng.choice(["buy", "sell"])
        kind = rng.choice(["limit", "limit", "market"])
        offset = rng.choice([-30, -10, 10, 30]) * (1 if side == "sell" else -1)
        r = req(1000 + i, side=side, type=kind, qty=round(rng.uniform(0.001, 0.02), 5),
                price=price + offset if kind == "limit" else None)
        try:
            m.place(r, last_price=price)
        except OutcomeUnknown:
            unknown.append(r)
        roll = rng.random()
        opened = emu.open_client_ids()
        if roll < 0.2 and opened:
            emu.fill_partially(rng.choice(opened), 0.001)
        elif roll < 0.4:
            price = round(price + rng.choice([-20.0, -10.0, 10.0, 20.0]), 2)
            emu.set_price("BTCUSDT", price)
        elif roll < 0.5 and opened:
            target = rng.choice(opened)
            if rng.random() < 0.5:  # the fill lands first, the cancel loses the race
                emu.set_price("BTCUSDT", emu.orders[_id(emu, target)].price or price)
                emu.set_price("BTCUSDT", price)
            m.cancel(target)
    assert unknown, "the plan injected no 503"
    for r in unknown:  # the strategy places it again: same request, same id
        m.place(r, last_price=price)
    report = reconcile(m, ["BTC/USDT"], client_prefix(SESSION))
    orders = m.journal.orders()
    on_exchange = placed_ids(emu)
    assert max(Counter(on_exchange).values()) == 1  # none placed twice
    sent = {c for c, o in orders.items() if o.status != S.REJECTED}
    assert sent == set(on_exchange)  # none lost, none unknown
    assert not report.lost and not report.flagged
    for o in emu.orders.values():
        j = orders[o.client_id]
        assert j.status.value == {"NEW": "acknowledged"}.get(o.status, o.status.lower()), o
        assert j.filled == pytest.approx(o.filled, abs=1e-9)
        assert sorted(int(f.trade_id) for f in j.fills) == sorted(t["id"] for t in o.trades)
    assert min(injected[f] for f in FAULTS) >= 5
    assert len(posts(emu)) > len(on_exchange)  # faults made the manager send and ask again


def _id(emu, client_id: str) -> int:  # noqa: F811
    return next(k for k, o in emu.orders.items() if o.client_id == client_id)


def test_reconcile_flags_a_trade_outside_the_session(emu, tmp_path: Path) -> None:  # noqa: F811
    m = manager(emu, tmp_path)
    first = reconcile(m, ["BTC/USDT"], client_prefix(SESSION))  # the baseline
    m.place(req(50, type="market", price=None), last_price=60_000.0)
    assert not reconcile(m, ["BTC/USDT"], client_prefix(SESSION)).flagged  # explained by fills
    emu.place({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.02",
               "newClientOrderId": "by-hand-1"})  # someone trades the account by hand
    report = reconcile(m, ["BTC/USDT"], client_prefix(SESSION))
    flags = [f for f in report.flagged if f.startswith("balance")]
    assert not first.flagged and len(flags) == 2  # BTC and USDT moved without a journaled fill
    assert any("balance BTC" in f for f in flags)
