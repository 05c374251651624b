"""The order manager through the real ccxt Binance class against the local spot trading
emulator: orders placed once (also when the answer is lost or the journal is), fills journaled
once from REST and from the user-data events, cancels, pre-trade refusals sending nothing,
reconciliation, and the testnet as the default."""

from __future__ import annotations

from pathlib import Path

import pytest

from botclave_cli.config import ExchangeConfig, OrderLimits, RateLimit
from botclave_cli.exchange.connector import Connector, OutcomeUnknown
from botclave_cli.exchange.orders.checks import OrderRefused
from botclave_cli.exchange.orders.journal import Journal
from botclave_cli.exchange.orders.manager import OrderManager
from botclave_cli.exchange.orders.model import OrderRequest, OrderStatus, client_order_id
from botclave_cli.exchange.orders.reconcile import reconcile
from botclave_cli.exchange.orders.session import client_prefix, open_manager
from tests.emulator.binance_rest import EmuMarket, synthetic_agg_trades
from tests.emulator.binance_spot_trading import SpotTradingEmulator
from tests.test_paper_kill import wait

S = OrderStatus
KEY, SECRET = "test-key", "test-secret"
SESSION = "sess01"


@pytest.fixture()
def emu():
    agg = synthetic_agg_trades(2000, 1_723_075_200_000)
    market = EmuMarket("BTCUSDT", "spot", "BTC", "USDT", "0.01", "0.00001", agg)
    with SpotTradingEmulator([market], api_key=KEY, secret=SECRET) as e:
        e.set_price("BTCUSDT", 60_000.0)
        yield e


def config(emu: SpotTradingEmulator, **orders) -> ExchangeConfig:
    return ExchangeConfig(
        api_urls={"all": emu.base_url}, testnet_api_urls={"all": emu.base_url + "/testnet"},
        rate_limit=RateLimit(timeout_ms=800, max_retries=1, backoff_seconds=0.01),
        orders=OrderLimits(**{"max_order_notional": 10_000.0, **orders}))


def manager(emu: SpotTradingEmulator, tmp: Path, **orders) -> OrderManager:
    env = {"BOTCLAVE_BINANCE_API_KEY": KEY, "BOTCLAVE_BINANCE_SECRET": SECRET}
    return open_manager(config(emu, **orders), tmp, SESSION, environ=env)


def req(signal: int, **kw) -> OrderRequest:
    base = dict(client_id=client_order_id(SESSION, signal, "entry"), symbol="BTC/USDT",
                side="buy", type="limit", qty=0.01, price=59_000.0)
    return OrderRequest(**{**base, **kw})


def posts(emu: SpotTradingEmulator) -> list[str]:
    return [p for p, _, _ in emu.log if p.endswith("/api/v3/order")]


def test_limit_rests_then_fills_and_is_journaled_once(emu, tmp_path: Path) -> None:
    m = manager(emu, tmp_path)
    placed = m.place(req(1), last_price=60_000.0)
    assert placed.sent and placed.order.status == S.ACKNOWLEDGED
    assert placed.order.exchange_id is not None
    # the testnet is the default: every private call went to its base
    assert all(p.startswith("/testnet/") for p, _, _ in emu.log if "order" in p)
    emu.set_price("BTCUSDT", 58_990.0)
    done = m.refresh(placed.order.client_id)
    assert done.status == S.FILLED and done.filled == pytest.approx(0.01)
    assert done.fees == {"BTC": pytest.approx(0.01 * 0.001)}  # 0.1 % of the BTC received
    assert done.fills[0].price == 59_000.0  # a resting limit fills at its own price
    # placing the same request again sends nothing
    again = m.place(req(1), last_price=60_000.0)
    assert not again.sent and again.order.status == S.FILLED
    assert len([p for p in posts(emu) if "order" in p]) >= 1
    kinds = [e["kind"] for e in m.journal.events(placed.order.client_id)]
    assert kinds[:3] == ["new", "submitted", "status"] and kinds.count("fill") == 1


def test_market_order_fills_at_once(emu, tmp_path: Path) -> None:
    m = manager(emu, tmp_path)
    o = m.place(req(2, type="market", price=None), last_price=60_000.0).order
    assert o.status == S.FILLED and o.fills and o.fills[0].price == 60_000.0


def test_a_lost_answer_is_asked_for_never_resent(emu, tmp_path: Path) -> None:
    m = manager(emu, tmp_path)
    emu.order_faults.append("accept_then_timeout")  # placed; the answer comes too late
    o = m.place(req(3), last_price=60_000.0).order
    assert o.status == S.ACKNOWLEDGED and o.adopted
    assert emu.open_client_ids() == [req(3).client_id]  # one order on the exchange
    assert [o.client_id for o in emu.orders.values()] == [req(3).client_id]  # placed once
    # it asked the exchange by client id instead of sending again
    asked = [q for p, q, _ in emu.log if p.endswith("/order") and "origClientOrderId" in q]
    assert asked and asked[0]["origClientOrderId"] == req(3).client_id


def test_a_503_leaves_it_submitted_and_the_retry_places_it_once(emu, tmp_path: Path) -> None:
    m = manager(emu, tmp_path)
    emu.order_faults.append("reject_with_503")  # not placed, outcome unknown to the client
    with pytest.raises(OutcomeUnknown):
        m.place(req(4), last_price=60_000.0)
    assert m.journal.order(req(4).client_id).status == S.SUBMITTED
    assert emu.open_client_ids() == []
    o = m.place(req(4), last_price=60_000.0).order  # asks first, then sends, same id
    assert o.status == S.ACKNOWLEDGED and emu.open_client_ids() == [req(4).client_id]


def test_a_journal_lost_after_placing_adopts_the_duplicate(emu, tmp_path: Path) -> None:
    first = manager(emu, tmp_path / "a")
    first.place(req(5), last_price=60_000.0)
    # another journal (a restore from before the order): the exchange refuses the id
    second = manager(emu, tmp_path / "b")
    o = second.place(req(5), last_price=60_000.0).order
    assert o.adopted and o.status == S.ACKNOWLEDGED
    assert emu.open_client_ids() == [req(5).client_id]


def test_refusals_send_nothing(emu, tmp_path: Path) -> None:
    m = manager(emu, tmp_path)
    before = len(posts(emu))
    with pytest.raises(OrderRefused, match="max order notional"):
        m.place(req(6, qty=1.0), last_price=60_000.0)
    with pytest.raises(OrderRefused, match="tick size"):
        m.place(req(7, price=59_000.005), last_price=60_000.0)
    assert len(posts(emu)) == before
    assert m.journal.order(req(6).client_id).status == S.REJECTED
    # the exchange's own refusal is journaled as rejected
    o = m.place(req(8, price=60_100.0, post_only=True), last_price=60_000.0).order
    assert o.status == S.REJECTED


def test_cancel_and_a_partial_fill(emu, tmp_path: Path) -> None:
    m = manager(emu, tmp_path)
    cid = m.place(req(9), last_price=60_000.0).order.client_id
    emu.fill_partially(cid, 0.004)
    assert m.refresh(cid).status == S.PARTIALLY_FILLED
    o = m.cancel(cid)
    assert o.status == S.CANCELED and o.filled == pytest.approx(0.004)
    assert m.cancel(cid).status == S.CANCELED  # nothing more to do


def test_user_events_fill_the_journal_once_with_rest(emu, tmp_path: Path) -> None:
    m = manager(emu, tmp_path)
    cid = m.place(req(10), last_price=60_000.0).order.client_id
    emu.fill_partially(cid, 0.004)
    emu.set_price("BTCUSDT", 58_000.0)
    for event in emu.events:
        m.on_user_event(event)
    o = m.journal.order(cid)
    assert o.status == S.FILLED and len(o.fills) == 2 and o.filled == pytest.approx(0.01)
    m.refresh(cid)  # REST sees the same two trades: nothing added
    assert len(m.journal.order(cid).fills) == 2


def test_reconcile_after_a_crash(emu, tmp_path: Path) -> None:
    m = manager(emu, tmp_path)
    a = m.place(req(11), last_price=60_000.0).order.client_id
    # a crash after journaling 'submitted', before the request left: never reached
    m.journal.new(req(12))
    m.journal.append(req(12).client_id, "submitted")
    # a crash after the exchange accepted, before the answer was journaled
    m.journal.new(req(13))
    m.journal.append(req(13).client_id, "submitted")
    emu.place({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
               "quantity": "0.01", "price": "59000", "newClientOrderId": req(13).client_id})
    # fills the journal never saw, and an order that is not this session's
    emu.set_price("BTCUSDT", 58_500.0)
    emu.place({"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
               "quantity": "0.01", "price": "61000", "newClientOrderId": "manual-1"})
    fresh = manager(emu, tmp_path)  # the restarted process
    report = reconcile(fresh, ["BTC/USDT"], client_prefix(SESSION))
    assert req(12).client_id in report.lost and req(13).client_id in report.adopted
    assert any("manual-1" in f for f in report.flagged)
    orders = fresh.journal.orders()
    assert orders[a].status == S.FILLED and orders[req(13).client_id].status == S.FILLED
    # the journal now equals the exchange: open orders, and every fill once
    journal_open = sorted(c for c, o in orders.items() if o.is_open)
    assert journal_open == sorted(c for c in emu.open_client_ids() if c.startswith("bc-"))
    exchange_trades = sorted(t["id"] for o in emu.orders.values() if o.client_id.startswith(
        client_prefix(SESSION)) for t in o.trades)
    journal_trades = sorted(int(f.trade_id) for o in orders.values() for f in o.fills)
    assert journal_trades == exchange_trades
    again = reconcile(fresh, ["BTC/USDT"], client_prefix(SESSION))
    assert not again.adopted and not again.lost and again.new_fills == 0


def test_mainnet_needs_the_flag_and_keys(emu, tmp_path: Path) -> None:
    cfg = config(emu).model_copy(update={"testnet": False})
    env = {"BOTCLAVE_BINANCE_API_KEY": KEY, "BOTCLAVE_BINANCE_SECRET": SECRET}
    with pytest.raises(Exception, match="--live was not given"):
        open_manager(cfg, tmp_path, SESSION, environ=env)
    with pytest.raises(Exception, match="needs testnet: false"):
        open_manager(config(emu), tmp_path, SESSION, live=True, environ=env)
    with pytest.raises(Exception, match="BOTCLAVE_BINANCE_API_KEY"):
        open_manager(config(emu), tmp_path, SESSION, environ={})
    live = open_manager(cfg, tmp_path, SESSION, live=True, environ=env)
    live.place(req(20), last_price=60_000.0)
    assert posts(emu)[-1] == "/api/v3/order"  # the mainnet base, no /testnet


def test_journal_and_manager_survive_reopening(emu, tmp_path: Path) -> None:
    m = manager(emu, tmp_path)
    m.place(req(21), last_price=60_000.0)
    j = Journal(tmp_path / "sessions" / SESSION / "journal.sqlite")
    assert j.order(req(21).client_id).status == S.ACKNOWLEDGED
    conn = Connector(config(emu), credentials=(KEY, SECRET))
    assert conn.sandbox


def test_user_data_stream_fills_in_real_time_and_catches_up_after_a_drop(emu, tmp_path) -> None:
    import asyncio
    import threading

    from botclave_cli.exchange.orders.user_stream import UserStream
    from tests.emulator.binance_user_ws import UserStreamEmulator

    m = manager(emu, tmp_path)
    with UserStreamEmulator("spot", emu.on_user_event, emu.key_ok) as ws:
        stream = UserStream(m, ws_url=ws.url, keepalive_s=0.3, max_backoff_s=0.2)
        runner = threading.Thread(target=lambda: asyncio.run(stream.run()), daemon=True)
        runner.start()

        wait(lambda: stream.stats.connected, "connected")
        cid = m.place(req(30), last_price=60_000.0).order.client_id
        emu.fill_partially(cid, 0.004)
        wait(lambda: len(m.journal.order(cid).fills) == 1, "the partial fill from the stream")
        polls = stream.stats.polls
        ws.mute = {ws._count + 1, ws._count + 2}  # the next events never reach the client
        ws.drop()
        emu.set_price("BTCUSDT", 58_000.0)  # fills the rest while the stream is down
        wait(lambda: stream.stats.connects >= 2, "reconnected")
        wait(lambda: m.journal.order(cid).status == S.FILLED, "caught up by REST")
        wait(lambda: stream.stats.keepalives >= 1, "the listen key kept alive")
        stream.stop()
        runner.join(10)
    o = m.journal.order(cid)
    assert len(o.fills) == 2 and o.filled == pytest.approx(0.01)
    assert stream.stats.polls > polls and stream.stats.keepalives >= 1
    assert stream.stats.events >= 2
    puts = [q for p, q, _ in emu.log if p.endswith("/userDataStream") and "listenKey" in q]
    assert puts and puts[0]["listenKey"] in emu.listen_keys


@pytest.mark.parametrize("hit", ["target", "stop"])
def test_oco_protects_a_long_one_leg_fills_the_other_expires(emu, tmp_path, hit: str) -> None:
    m = manager(emu, tmp_path)
    m.place(req(40, type="market", price=None), last_price=60_000.0)
    stop = OrderRequest(client_id=client_order_id(SESSION, 40, "stop"), symbol="BTC/USDT",
                        side="sell", type="stop_market", qty=0.01, stop_price=58_800.0)
    target = OrderRequest(client_id=client_order_id(SESSION, 40, "target"),
                          symbol="BTC/USDT", side="sell", type="limit", qty=0.01,
                          price=61_200.0)
    legs = m.place_oco(stop, target, "bc-sess01-0000000040-oc", last_price=60_000.0)
    assert [o.status for o in legs] == [S.ACKNOWLEDGED, S.ACKNOWLEDGED]
    sent = [q for p, q, _ in emu.log if p.endswith("/orderList/oco")]
    assert sent[0]["aboveType"] == "LIMIT_MAKER" and sent[0]["belowType"] == "STOP_LOSS"
    assert sent[0]["belowStopPrice"] == "58800" and sent[0]["abovePrice"] == "61200"
    # asking again sends nothing
    assert [o.status for o in m.place_oco(stop, target, "bc-sess01-0000000040-oc")] == [
        S.ACKNOWLEDGED, S.ACKNOWLEDGED]
    assert len([p for p, _, _ in emu.log if p.endswith("/orderList/oco")]) == 1
    emu.set_price("BTCUSDT", 61_300.0 if hit == "target" else 58_700.0)
    s_o, t_o = m.refresh(stop.client_id), m.refresh(target.client_id)
    filled, expired = (t_o, s_o) if hit == "target" else (s_o, t_o)
    assert filled.status == S.FILLED and expired.status == S.EXPIRED
    assert filled.fills[0].price == (61_200.0 if hit == "target" else 58_700.0)
