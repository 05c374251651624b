"""The order manager on USD-M and COIN-M futures through ccxt's binanceusdm / binancecoinm
against the local futures trading emulator: one-way mode, leverage and margin type set
explicitly before the first order; a long protected by a reduce-only STOP_MARKET and a
close-position TAKE_PROFIT_MARKET (ccxt routes both to Binance's Algo Order service): the
target fills through the order its trigger places, the stop expires; post-only as GTX;
reduce-only refusals; fills from ORDER_TRADE_UPDATE / ALGO_UPDATE events once; a lost answer
adopted; reconciliation with positions and balances."""

from __future__ import annotations

from pathlib import Path

import pytest

from botclave_cli.config import ExchangeConfig, OrderLimits, RateLimit
from botclave_cli.exchange.orders.model import OrderRequest, OrderStatus, client_order_id
from botclave_cli.exchange.orders.reconcile import reconcile
from botclave_cli.exchange.orders.session import client_prefix, open_manager
from tests.emulator.binance_futures_trading import FuturesTradingEmulator
from tests.emulator.binance_rest import EmuMarket, synthetic_agg_trades
from tests.test_paper_kill import wait

S = OrderStatus
KEY, SECRET = "fut-key", "fut-secret"
SESSION = "fut001"
#: market -> (Binance id, unified symbol, quote, tick, lot, qty of one test order, price)
MARKETS = {"usdm": ("BTCUSDT", "BTC/USDT:USDT", "USDT", "0.1", "0.001", 0.01, 60_000.0),
           "coinm": ("BTCUSD_PERP", "BTC/USD:BTC", "USD", "0.1", "1", 2.0, 60_000.0)}


@pytest.fixture(params=["usdm", "coinm"])
def fut(request):
    kind = request.param
    sym, unified, quote, tick, lot, qty, price = MARKETS[kind]
    agg = synthetic_agg_trades(2000, 1_723_075_200_000)
    market = EmuMarket(sym, kind, "BTC", quote, tick, lot, agg)
    with FuturesTradingEmulator([market], api_key=KEY, secret=SECRET) as emu:
        emu.set_price(sym, price)
        yield emu, kind


def futures_config(emu: FuturesTradingEmulator, kind: str) -> ExchangeConfig:
    """The ``kind`` market on ``emu`` (testnet base): leverage 5, isolated margin."""
    return ExchangeConfig(
        market=kind, api_urls={"all": emu.base_url},
        testnet_api_urls={"all": emu.base_url + "/testnet"},
        rate_limit=RateLimit(enabled=False, timeout_ms=800, max_retries=1, backoff_seconds=0.01),
        orders=OrderLimits(max_order_notional=100_000.0, leverage=5, margin_type="isolated"))


def manager(emu: FuturesTradingEmulator, kind: str, tmp: Path):
    env = {"BOTCLAVE_BINANCE_API_KEY": KEY, "BOTCLAVE_BINANCE_SECRET": SECRET}
    return open_manager(futures_config(emu, kind), tmp, SESSION, environ=env)


def req(kind: str, signal: int, leg: str = "entry", **kw) -> OrderRequest:
    _, unified, *_, qty, _ = MARKETS[kind]
    base = dict(client_id=client_order_id(SESSION, signal, leg), symbol=unified, side="buy",
                type="market", qty=qty)
    return OrderRequest(**{**base, **kw})


def test_settings_first_then_a_market_long(fut, tmp_path: Path) -> None:
    emu, kind = fut
    sym, _, _, _, _, qty, price = MARKETS[kind]
    assert emu.dual_side  # the account starts in hedge mode
    m = manager(emu, kind, tmp_path)
    o = m.place(req(kind, 1), last_price=price).order
    assert o.status == S.FILLED and o.filled == pytest.approx(qty)
    assert not emu.dual_side and emu.leverage[sym] == 5 and emu.margin_type[sym] == "ISOLATED"
    assert emu.positions[sym] == pytest.approx(qty)
    taker = qty * price * 0.0004 if kind == "usdm" else qty * 100 / price * 0.0004
    assert o.fees == {emu.margin_asset: pytest.approx(taker, abs=1e-8)}  # 8 decimals
    prefix = emu.prefix
    settings = [p.removeprefix("/testnet") for p, _, _ in emu.log
                if p.endswith(("dual", "marginType", "leverage", "/order"))]
    assert settings == [f"{prefix}/v1/positionSide/dual", f"{prefix}/v1/marginType",
                        f"{prefix}/v1/leverage", f"{prefix}/v1/order"]
    m.place(req(kind, 2), last_price=price)  # settings are made once per symbol
    assert sum(p.endswith("/leverage") for p, _, _ in emu.log) == 1


def test_stop_and_target_protect_the_long(fut, tmp_path: Path) -> None:
    emu, kind = fut
    sym, _, _, _, _, qty, price = MARKETS[kind]
    m = manager(emu, kind, tmp_path)
    m.place(req(kind, 3), last_price=price)
    stop = m.place(req(kind, 3, "stop", side="sell", type="stop_market", stop_price=58_800.0,
                       reduce_only=True), last_price=price).order
    target = m.place(req(kind, 3, "target", side="sell", type="take_profit_market", qty=None,
                         stop_price=61_200.0, close_position=True), last_price=price).order
    assert stop.status == target.status == S.ACKNOWLEDGED
    algo_posts = [q for p, q, _ in emu.log if p.endswith("/v1/algoOrder") and "type" in q]
    assert [q["type"] for q in algo_posts] == ["STOP_MARKET", "TAKE_PROFIT_MARKET"]
    assert algo_posts[0]["reduceOnly"] == "true" and algo_posts[1]["closePosition"] == "true"
    assert "quantity" not in algo_posts[1] and algo_posts[1]["clientAlgoId"] == target.client_id
    emu.set_price(sym, 61_250.0)  # the target triggers: its market order closes the long
    assert emu.positions[sym] == 0
    done = m.refresh(target.client_id)
    assert done.status == S.FILLED and done.filled == pytest.approx(qty)
    assert done.actual_id is not None and done.fills[0].price == 61_250.0
    assert m.refresh(stop.client_id).status == S.EXPIRED  # flat: the stop is gone
    assert m.refresh(stop.client_id).filled == 0


def test_user_events_carry_the_fills_once(fut, tmp_path: Path) -> None:
    emu, kind = fut
    sym, _, _, _, _, qty, price = MARKETS[kind]
    m = manager(emu, kind, tmp_path)
    limit = m.place(req(kind, 4, type="limit", price=59_000.0), last_price=price).order
    target = None
    emu.set_price(sym, 58_900.0)  # the limit fills
    m.place(req(kind, 4, "target", side="sell", type="take_profit_market", qty=None,
                stop_price=59_500.0, close_position=True), last_price=58_900.0)
    emu.set_price(sym, 59_600.0)
    for event in emu.events:
        m.on_user_event(event)
    target = m.journal.order(req(kind, 4, "target", side="sell", type="take_profit_market",
                                 qty=None, stop_price=59_500.0, close_position=True).client_id)
    assert m.journal.order(limit.client_id).status == S.FILLED
    assert target.status == S.FILLED and len(target.fills) == 1 and target.actual_id
    assert {e["e"] for e in emu.events} == {"ORDER_TRADE_UPDATE", "ALGO_UPDATE"}
    m.refresh(target.client_id)  # REST sees the same trade: nothing added
    m.refresh(limit.client_id)
    assert len(m.journal.order(target.client_id).fills) == 1
    assert len(m.journal.order(limit.client_id).fills) == 1


def test_exchange_refusals_are_rejections(fut, tmp_path: Path) -> None:
    emu, kind = fut
    _, _, _, _, _, qty, price = MARKETS[kind]
    m = manager(emu, kind, tmp_path)
    o = m.place(req(kind, 5, side="sell", reduce_only=True), last_price=price).order
    assert o.status == S.REJECTED and "ReduceOnly Order is rejected" in o.reason  # no position
    o = m.place(req(kind, 6, type="limit", price=60_100.0, post_only=True),
                last_price=price).order
    assert o.status == S.REJECTED and "Post Only" in o.reason  # a GTX that would take
    o = m.place(req(kind, 7, type="limit", price=59_900.0, post_only=True),
                last_price=price).order
    assert o.status == S.ACKNOWLEDGED
    assert [q.get("timeInForce") for p, q, _ in emu.log if p.endswith("/v1/order")
            and q.get("newClientOrderId") == o.client_id] == ["GTX"]
    o = m.place(req(kind, 8, "stop", side="sell", type="stop_market", stop_price=60_100.0),
                last_price=price).order
    assert o.status == S.REJECTED and "immediately trigger" in o.reason


def test_a_lost_answer_is_adopted_and_reconcile_matches(fut, tmp_path: Path) -> None:
    emu, kind = fut
    sym, _, _, _, _, qty, price = MARKETS[kind]
    m = manager(emu, kind, tmp_path)
    m.place(req(kind, 9), last_price=price)
    emu.slow_answer_s = 1.2
    emu.order_faults.append("accept_then_timeout")
    stop = m.place(req(kind, 9, "stop", side="sell", type="stop_market", stop_price=58_000.0,
                       reduce_only=True), last_price=price).order
    assert stop.adopted and stop.status == S.ACKNOWLEDGED and len(emu.algos) == 1
    # a crash after the exchange accepted a limit, before the answer was journaled
    lost = req(kind, 10, type="limit", price=59_000.0)
    m.journal.new(lost)
    m.journal.append(lost.client_id, "submitted")
    emu.dual_side = False
    emu.place({"symbol": sym, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
               "quantity": str(qty), "price": "59000", "newClientOrderId": lost.client_id})
    emu.set_price(sym, 58_500.0)  # the limit fills, then the stop below it
    emu.set_price(sym, 57_900.0)
    fresh = manager(emu, kind, tmp_path)
    report = reconcile(fresh, [MARKETS[kind][1]], client_prefix(SESSION))
    assert lost.client_id in report.adopted and not report.flagged
    orders = fresh.journal.orders()
    assert orders[stop.client_id].status == S.FILLED and orders[lost.client_id].status == S.FILLED
    trades = sorted(t["id"] for o in emu.orders.values() for t in o.trades)
    assert sorted(int(f.trade_id) for o in orders.values() for f in o.fills) == trades
    snapshot = [e for e in fresh.journal.events("~account") if e["kind"] == "position"][-1]
    assert '"contracts": ' in snapshot["raw"] and emu.positions[sym] == pytest.approx(qty)


def test_futures_user_stream_with_an_expired_listen_key(fut, tmp_path: Path) -> None:
    import asyncio
    import threading

    from botclave_cli.exchange.orders.user_stream import UserStream
    from tests.emulator.binance_user_ws import UserStreamEmulator

    emu, kind = fut
    sym, _, _, _, _, qty, price = MARKETS[kind]
    m = manager(emu, kind, tmp_path)
    with UserStreamEmulator(kind, emu.on_user_event, emu.key_ok) as ws:
        stream = UserStream(m, ws_url=ws.url, keepalive_s=0.3, max_backoff_s=0.2)
        runner = threading.Thread(target=lambda: asyncio.run(stream.run()), daemon=True)
        runner.start()

        wait(lambda: stream.stats.connected, "connected")
        first_key = sorted(emu.listen_keys)[-1]
        ws.expire(first_key)  # Binance ends the stream: a new key, a new connection
        wait(lambda: stream.stats.connects >= 2 and stream.stats.connected, "reconnected")
        assert len(emu.listen_keys) == 2
        cid = m.place(req(kind, 20, type="limit", price=59_000.0), last_price=price).order.client_id
        emu.set_price(sym, 58_900.0)
        wait(lambda: m.journal.order(cid).status == S.FILLED, "the fill from ORDER_TRADE_UPDATE")
        wait(lambda: stream.stats.keepalives >= 1, "kept alive")
        stream.stop()
        runner.join(10)
    o = m.journal.order(cid)
    assert len(o.fills) == 1 and o.filled == pytest.approx(qty)
    keepalives = [p for p, _, _ in emu.log if p.endswith("/v1/listenKey")]
    assert len(keepalives) >= 3  # two creations and at least one keepalive (PUT)


def test_a_canceled_stop_is_journaled_canceled(fut, tmp_path: Path) -> None:
    emu, kind = fut
    _, _, _, _, _, qty, price = MARKETS[kind]
    m = manager(emu, kind, tmp_path)
    m.place(req(kind, 11), last_price=price)
    stop = m.place(req(kind, 11, "stop", side="sell", type="stop_market", stop_price=58_800.0,
                       reduce_only=True), last_price=price).order
    assert m.cancel(stop.client_id).status == S.CANCELED
    assert [a.status for a in emu.algos.values()] == ["CANCELED"]
    assert m.journal.order(stop.client_id).status == S.CANCELED
