"""``kill -9`` of a ``botclave live`` process mid-stream, then a restart: it reconciles with the
exchange on start, resumes from the store, and SIGTERM ends it cleanly with its open orders
canceled; no client id is ever placed twice and the journal agrees with the exchange. Market
data from the WebSocket emulator (a real capture); orders to the spot trading emulator on the
testnet base, whose price follows the stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import yaml

from botclave_cli.exchange.orders.journal import Journal
from botclave_cli.exchange.orders.model import OrderStatus
from botclave_cli.live.replay import trade_message
from tests.conftest import PROJECT_ROOT, shared_file
from tests.emulator.binance_rest import EmuMarket, synthetic_agg_trades
from tests.emulator.binance_spot_trading import SpotTradingEmulator
from tests.emulator.binance_ws import BinanceWsEmulator
from tests.test_order_manager import KEY, SECRET, config
from tests.test_paper_kill import SETTINGS, wait
from tests.test_paper_session import BTC, Served


def follow(ws: BinanceWsEmulator, exchange: SpotTradingEmulator, stop: threading.Event) -> None:
    """The exchange's last price follows the trades the WebSocket has sent."""
    seen = 0
    while not stop.is_set():
        upto = min(ws.cursor, len(ws.messages))
        for kind, msg in ws.messages[seen:upto]:
            trade = trade_message(msg) if kind == "trade" else None
            if trade is not None:
                exchange.set_price("BTCUSDT", trade[1])
        seen = upto
        time.sleep(0.002)


def start(ws: BinanceWsEmulator, cfg_file: Path, tmp: Path, *extra: str,
          symbol: str = "BTC/USDT", keys: tuple[str, str] = (KEY, SECRET)) -> subprocess.Popen:
    """``botclave live --session kl1`` on ``symbol`` (``extra``: more options) with the
    exchange emulator's ``keys``, its data under ``tmp``."""
    args = [sys.executable, "-m", "botclave_cli", "live", "--session", "kl1", "--symbol",
            symbol, "--ws-url", ws.ws_url, "--rest-url", ws.rest_url, "--exchange-config",
            str(cfg_file), "--data-dir", str(tmp / "store"), "--out-dir", str(tmp / "reports"),
            "--json", *extra]
    for item in SETTINGS:
        args += ["--set", item]
    env = {**os.environ, "BOTCLAVE_BINANCE_API_KEY": keys[0],
           "BOTCLAVE_BINANCE_SECRET": keys[1]}
    return subprocess.Popen(args, cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_kill_9_then_restart_places_nothing_twice(tmp_path: Path) -> None:
    ws = BinanceWsEmulator(shared_file(BTC), limit=40_000, pause_s=0.0002)
    served = Served(ws)
    market = EmuMarket("BTCUSDT", "spot", "BTC", "USDT", "0.01", "0.00001",
                       synthetic_agg_trades(2000, 1_723_075_200_000))
    stop = threading.Event()
    with SpotTradingEmulator([market], api_key=KEY, secret=SECRET) as exchange:
        exchange.set_price("BTCUSDT", 61_700.0)
        cfg_file = tmp_path / "exchange.yaml"
        cfg_file.write_text(yaml.safe_dump(config(exchange, max_order_notional=1e6)
                                           .model_dump(mode="json")))
        follower = threading.Thread(target=follow, args=(ws, exchange, stop), daemon=True)
        follower.start()
        try:
            first = start(ws, cfg_file, tmp_path)
            wait(lambda: ws.cursor > len(ws.messages) * 3 // 5, "the first process streams")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            placed_before = len(exchange.orders)
            second = start(ws, cfg_file, tmp_path)
            try:
                wait(lambda: ws.finished or second.poll() is not None,
                     "the second process streams to the end", 300)
            except AssertionError:
                second.kill()
                raise
            assert second.poll() is None, second.communicate()[1][-2000:]
            time.sleep(3.0)
            second.send_signal(signal.SIGTERM)
            out, err = second.communicate(timeout=60)
        finally:
            stop.set()
            served.close()
        assert second.returncode == 0, err
        summary = json.loads(out)
        journal = Journal(tmp_path / "store" / "sessions" / "kl1" / "journal.sqlite")
        orders = journal.orders()
        placed = [o.client_id for o in exchange.orders.values()]
        assert placed_before > 0 and len(placed) >= placed_before
        assert max(Counter(placed).values()) == 1  # nothing placed twice across the kill
        sent = {c for c, o in orders.items() if o.status != OrderStatus.REJECTED}
        assert sent == set(placed)  # none lost: the journal knows every order on the exchange
        assert exchange.open_client_ids() == []  # SIGTERM canceled what was open
        for o in exchange.orders.values():
            j = orders[o.client_id]
            assert j.filled == sum(float(t["qty"]) for t in o.trades), o.client_id
        assert summary["testnet"] is True
        assert all(p.startswith("/testnet/") for p, _, _ in exchange.log if "order" in p)
