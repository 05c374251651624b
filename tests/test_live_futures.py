"""A live session on USD-M futures against the local exchange, end to end: market data from the
WebSocket emulator streaming a real USD-M capture, orders through ccxt's binanceusdm to the
futures trading emulator (testnet base, signed, journaled, one-way mode), whose last price
follows the stream. Over the first 83,000 messages the core opens four positions (short,
short, long, short): each entry fill is a market order, each followed by a reduce-only
STOP_MARKET and a close-position TAKE_PROFIT_MARKET for the whole position (algo orders, the
earlier pair canceled); the exchange's target closes the two first shorts (the core's own exits
then place nothing), the core's signal exit of the long goes out reduce-only after its
protection is canceled, and the stop flattens the last short reduce-only after canceling its
protection. The exchange ends with no position and nothing open, no client id received
twice. Also: ``botclave live`` on USD-M killed with SIGKILL, restarted and stopped with ``live
stop``; and a restart onto the other side of the real position."""

from __future__ import annotations

import json
import signal
import threading
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import yaml

from botclave_cli.exchange.orders.journal import Journal
from botclave_cli.exchange.orders.model import OrderRequest, OrderStatus, client_order_id
from botclave_cli.exchange.record_config import RecordConfig
from botclave_cli.execution import layout as L
from botclave_cli.live.live_session import FLATTEN_SIGNAL
from botclave_cli.live.mirror import OrderMirror
from botclave_cli.live.status import read_status, status_path
from tests.conftest import shared_file
from tests.emulator.binance_futures_trading import FuturesTradingEmulator
from tests.emulator.binance_rest import EmuMarket, synthetic_agg_trades
from tests.emulator.binance_ws import BinanceWsEmulator
from tests.test_live_kill import follow, start
from tests.test_live_session import live_until_served
from tests.test_order_futures import KEY, MARKETS, SECRET, SESSION, futures_config, manager
from tests.test_paper_kill import wait
from tests.test_paper_session import Served, make_tester

USDM = "binance-ws/usdm_btcusdt_20240808.gz"
#: messages served: through the long's signal exit (about message 80,950) and the short after
USDM_LIMIT = 83_000
#: the kill test's stream, and the messages the first process has read when it is killed (the
#: second short, entered about message 31,700, is open and protected)
KILL_LIMIT, KILL_AT = 50_000, 35_000
SYM, UNIFIED, QUOTE, TICK, LOT, *_ = MARKETS["usdm"]
DONE = {"CANCELED", "EXPIRED", "FINISHED"}  # an algo order no longer working


def usdm_exchange() -> FuturesTradingEmulator:
    market = EmuMarket(SYM, "usdm", "BTC", QUOTE, TICK, LOT,
                       synthetic_agg_trades(2000, 1_723_075_200_000))
    return FuturesTradingEmulator([market], api_key=KEY, secret=SECRET)


def received(exchange: FuturesTradingEmulator) -> list[dict[str, str]]:
    """The create requests the exchange received, in order: orders (``newClientOrderId``)
    and algo orders (``clientAlgoId``, with their ``type``), each with its client id as
    ``cid``."""
    out = []
    for path, query, _ in exchange.log:
        if path.endswith("/v1/order") and "newClientOrderId" in query:
            out.append({**query, "cid": query["newClientOrderId"]})
        elif path.endswith("/v1/algoOrder") and "type" in query:
            out.append({**query, "cid": query["clientAlgoId"]})
    return out


def working_at_exits(exchange: FuturesTradingEmulator) -> dict[str, set[str]]:
    """For each exit order of the session (client id ``-ex``): the algo orders still working
    on the exchange when it arrived (from the exchange's user-data events, in order)."""
    working: set[str] = set()
    out = {}
    for event in exchange.events:
        o = event["o"]
        if event["e"] == "ALGO_UPDATE":
            (working.add if o["X"] == "NEW" else working.discard)(o["caid"])
        elif o["c"].endswith("-ex") and o["x"] == "NEW":
            out[o["c"]] = set(working)
    return out


def test_a_usdm_live_session_protects_exits_reduce_only_and_flattens(tmp_path: Path) -> None:
    ws = BinanceWsEmulator(shared_file(USDM), limit=USDM_LIMIT)
    served = Served(ws)
    data = tmp_path / "store"
    cfg = RecordConfig(symbol=UNIFIED, market="usdm", ws_url=ws.ws_url, flush_every_s=0.2,
                       store_every_s=0.5)
    tester = make_tester(float(TICK), float(LOT), symbol=UNIFIED, market="usdm")
    with usdm_exchange() as exchange:
        exchange.set_price(SYM, 61_700.0)
        m = manager(exchange, "usdm", data)
        live, _ = live_until_served(ws, served, exchange, SYM, m, cfg, tester, tmp_path,
                                    SESSION)
        orders = m.journal.orders()
        posts = received(exchange)
        by_leg = {leg: [q for q in posts if q["cid"].endswith(f"-{leg}")]
                  for leg in ("en", "ex", "sl", "tp")}
        # every fill of the core was looked at; nothing was received twice
        assert int(live.trader.core.state.iv[L.I_N_FILLS]) == live.mirror.mirrored > 0
        assert max(Counter(q["cid"] for q in posts).values()) == 1
        assert set(orders) == {q["cid"] for q in posts}
        # entries: plain market orders, filled; each then protected, stop and target
        assert by_leg["en"] and all(q["type"] == "MARKET" and "reduceOnly" not in q
                                    for q in by_leg["en"])
        assert all(orders[q["cid"]].status == OrderStatus.FILLED for q in by_leg["en"])
        assert [q["cid"][:-3] for q in by_leg["sl"]] == [q["cid"][:-3] for q in by_leg["en"]]
        assert [q["cid"][:-3] for q in by_leg["tp"]] == [q["cid"][:-3] for q in by_leg["en"]]
        order_of = {q["cid"]: i for i, q in enumerate(posts)}
        assert all(order_of[q["cid"][:-3] + "-en"] < order_of[q["cid"]]
                   for q in by_leg["sl"] + by_leg["tp"])
        assert all(q["type"] == "STOP_MARKET" and q["reduceOnly"] == "true"
                   and "closePosition" not in q for q in by_leg["sl"])
        assert all(q["type"] == "TAKE_PROFIT_MARKET" and q["closePosition"] == "true"
                   and "quantity" not in q and "reduceOnly" not in q for q in by_leg["tp"])
        sides = {o.request.side for c, o in orders.items() if c.endswith("-en")}
        assert sides == {"buy", "sell"}  # longs and shorts
        # the exchange's target closed positions; its stop then expired
        finished = [a for a in exchange.algos.values() if a.status == "FINISHED"]
        assert finished and all(a.type == "TAKE_PROFIT_MARKET" for a in finished)
        assert all(orders[a.client_id].status == OrderStatus.FILLED for a in finished)
        # exits (the core's signal exit, the flatten on stop): reduce-only market orders, sent
        # with no protection working
        flatten = client_order_id(SESSION, FLATTEN_SIGNAL, "exit")
        assert len(by_leg["ex"]) >= 2 and by_leg["ex"][-1]["cid"] == flatten
        assert all(q["type"] == "MARKET" and q["reduceOnly"] == "true" for q in by_leg["ex"])
        assert all(orders[q["cid"]].status == OrderStatus.FILLED for q in by_leg["ex"])
        assert working_at_exits(exchange) == {q["cid"]: set() for q in by_leg["ex"]}
        # stopped: no position, nothing working on the exchange, the journal agrees
        assert exchange.positions[SYM] == 0 and live.mirror.position() == 0
        assert exchange.open_client_ids() == []
        assert all(a.status in DONE for a in exchange.algos.values())
        assert not [o for o in orders.values() if o.is_open]
    status = json.loads(status_path(data, SESSION).read_text())
    assert status["mode"] == "live" and status["state"] == "stopped"
    assert status["position_qty"] == 0 and status["open_orders"] == []


def has_read(data: Path, pid: int, messages: int) -> bool:
    """Whether process ``pid`` says in its heartbeat (session kl1's status file, rewritten
    about once a second) that it has read ``messages`` stream messages."""
    if not status_path(data, "kl1").exists():
        return False
    status = read_status(data, "kl1")
    return status.pid == pid and status.messages >= messages


def test_kill_9_of_a_usdm_session_then_live_stop_flattens_placing_nothing_twice(
        tmp_path: Path) -> None:
    """``botclave live --flatten-on-stop`` on USD-M, killed with SIGKILL mid-stream (a short
    open, its protection working on the exchange), started again: it reconciles, replays the
    store, cancels the last process's protection and brings the real position to the core's
    (protected); ``botclave live stop`` then flattens what is held. No client id is received
    twice, the journal knows every order the exchange accepted, every exit is reduce-only, and
    the exchange ends flat with nothing working."""
    from typer.testing import CliRunner

    from botclave_cli.cli.app import app

    ws = BinanceWsEmulator(shared_file(USDM), limit=KILL_LIMIT, pause_s=0.0002)
    served = Served(ws)
    stop = threading.Event()
    data = tmp_path / "store"
    with usdm_exchange() as exchange:
        exchange.set_price(SYM, 61_700.0)
        cfg_file = tmp_path / "exchange.yaml"
        cfg_file.write_text(yaml.safe_dump(futures_config(exchange, "usdm")
                                           .model_dump(mode="json")))
        follower = threading.Thread(target=follow, args=(ws, exchange, stop), daemon=True)
        follower.start()
        try:
            first = start(ws, cfg_file, tmp_path, "--flatten-on-stop", symbol=UNIFIED,
                          keys=(KEY, SECRET))
            wait(lambda: has_read(data, first.pid, KILL_AT), "the first process streams", 300)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            before = len(received(exchange))
            left_working = [a for a in exchange.algos.values() if a.status == "NEW"]
            second = start(ws, cfg_file, tmp_path, "--flatten-on-stop", symbol=UNIFIED,
                          keys=(KEY, SECRET))
            try:
                wait(lambda: (ws.finished and len(ws.served) == 2) or second.poll() is not None,
                     "the second process streams to the end", 300)
                wait(lambda: second.poll() is not None or
                     has_read(data, second.pid, ws.served[-1]),
                     "the second process reads everything", 60)
            except AssertionError:
                second.kill()
                raise
            assert second.poll() is None, second.communicate()[1][-2000:]
            asked = CliRunner().invoke(app, ["live", "stop", "--session", "kl1",
                                             "--data-dir", str(data)])
            assert asked.exit_code == 0, asked.output
            out, err = second.communicate(timeout=60)
        finally:
            stop.set()
            served.close()
        assert second.returncode == 0, err
        assert json.loads(out)["position"] == 0
        orders = Journal(data / "sessions" / "kl1" / "journal.sqlite").orders()
        posts = received(exchange)
        assert 0 < before < len(posts)  # both processes placed orders
        # the killed process's protection: canceled by the second process
        assert left_working and all(a.status == "CANCELED" for a in left_working)
        assert max(Counter(q["cid"] for q in posts).values()) == 1
        accepted = {o.client_id for o in exchange.orders.values()
                    if not o.client_id.startswith("x-emu")}  # not a trigger's own order
        accepted |= {a.client_id for a in exchange.algos.values()}
        assert accepted == {c for c, o in orders.items() if o.status != OrderStatus.REJECTED}
        assert all(q["reduceOnly"] == "true" for q in posts if q["cid"].endswith(("-ex", "-sl")))
        assert all(q["closePosition"] == "true" for q in posts if q["cid"].endswith("-tp"))
        assert exchange.positions[SYM] == 0
        assert exchange.open_client_ids() == []
        assert all(a.status in DONE for a in exchange.algos.values())
        assert not [o for o in orders.values() if o.is_open]
        assert all(p.startswith("/testnet/") for p, _, _ in exchange.log if "order" in p.lower())


class HeldByCore:
    """An execution core as OrderMirror.restart reads it: only its position (base units)."""

    def __init__(self, qty: float) -> None:
        self.qty = qty

    def view(self) -> SimpleNamespace:
        return SimpleNamespace(position_qty=self.qty, positions=[])


def test_a_restart_onto_the_other_side_closes_reduce_only_then_opens(tmp_path: Path) -> None:
    """The real position short, the core's (replayed) long: a reduce-only order cannot flip
    it, so the restart closes it reduce-only, then opens the long."""
    with usdm_exchange() as exchange:
        exchange.set_price(SYM, 60_000.0)
        m = manager(exchange, "usdm", tmp_path)
        m.place(OrderRequest(client_id=client_order_id(SESSION, 1, "entry"), symbol=UNIFIED,
                             side="sell", type="market", qty=0.01), last_price=60_000.0)
        mirror = OrderMirror(m, SESSION, UNIFIED, protect=False)
        mirror.restart(HeldByCore(0.02), 60_000.0)  # type: ignore[arg-type]
        sent = [(q["cid"][-2:], q["side"], q["quantity"], q.get("reduceOnly"))
                for q in received(exchange)]
        assert sent == [("en", "SELL", "0.01", None), ("ex", "BUY", "0.01", "true"),
                        ("en", "BUY", "0.02", None)]
        assert exchange.positions[SYM] == 0.02 and mirror.position() == 0.02
