"""A live session against the local exchange: market data from the WebSocket emulator streaming a
real capture, orders to the spot trading emulator (testnet base, signed, journaled) whose last
price follows the stream. Every fill of the session's core becomes one real market order, each
entry is protected by an OCO (stop below, target above for a long), protection is canceled
before the mirror exits, and on stop every open order is canceled and the position flattened:
the exchange ends flat with no order of the session open, and no client id placed twice."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.data.store import Store
from botclave_cli.exchange.orders.manager import OrderManager
from botclave_cli.exchange.orders.model import OrderStatus
from botclave_cli.exchange.orders.session import open_manager
from botclave_cli.exchange.record_config import RecordConfig
from botclave_cli.exchange.recorder import ccxt_snapshot_fetcher
from botclave_cli.execution import layout as L
from botclave_cli.live.live_session import LiveSession, run_live_session
from botclave_cli.live.replay import trade_message
from botclave_cli.live.status import status_path
from tests.conftest import shared_file
from tests.emulator.binance_rest import EmuMarket, synthetic_agg_trades
from tests.emulator.binance_spot_trading import SpotTradingEmulator
from tests.emulator.binance_ws import BinanceWsEmulator
from tests.test_order_manager import KEY, SECRET, config
from tests.test_paper_session import BTC, LIMIT, Served, make_tester, run_until_served


@contextmanager
def prices_follow_the_stream(exchange: SpotTradingEmulator, symbol_id: str) -> Iterator[None]:
    """While inside, the exchange trades where the stream does: each trade message of a live
    session sets the exchange's last price of ``symbol_id`` before the session reads it."""
    original = LiveSession.on_message

    def bridged(self: LiveSession, message: dict, receive_us: int) -> None:
        trade = trade_message(message)
        if trade is not None:
            exchange.set_price(symbol_id, trade[1])
        original(self, message, receive_us)

    LiveSession.on_message = bridged  # type: ignore[method-assign]
    try:
        yield
    finally:
        LiveSession.on_message = original  # type: ignore[method-assign]


def live_until_served(ws: BinanceWsEmulator, served: Served, exchange: SpotTradingEmulator,
                      symbol_id: str, manager: OrderManager, cfg: RecordConfig,
                      tester: Backtester, tmp_path: Path, session: str
                      ) -> tuple[LiveSession, Path | None]:
    """``run_live_session`` (flatten on stop) against ``exchange`` with its prices following
    the stream, until the recorder has read every message ``ws`` sent; the session and its run
    folder. The store is ``tmp_path / "store"``; ``served`` is closed at the end."""
    data = tmp_path / "store"
    try:
        with prices_follow_the_stream(exchange, symbol_id):
            return run_until_served(ws, lambda: run_live_session(
                manager, flatten=True, store=Store(data), cfg=cfg, tester=tester,
                data_dir=data, out_dir=tmp_path / "rep", session=session,
                capture_dir=tmp_path / "cap",
                fetch_snapshot=ccxt_snapshot_fetcher(cfg.market, ws.rest_url), grace_s=1.0,
                write_every_s=0.5))
    finally:
        served.close()


def test_a_live_session_mirrors_its_fills_protects_and_ends_flat(tmp_path: Path) -> None:
    ws = BinanceWsEmulator(shared_file(BTC), limit=LIMIT)
    served = Served(ws)
    market = EmuMarket("BTCUSDT", "spot", "BTC", "USDT", "0.01", "0.00001",
                       synthetic_agg_trades(2000, 1_723_075_200_000))
    data = tmp_path / "store"
    cfg = RecordConfig(symbol="BTC/USDT", market="spot", ws_url=ws.ws_url, flush_every_s=0.2,
                       store_every_s=0.5)
    with SpotTradingEmulator([market], api_key=KEY, secret=SECRET) as exchange:
        env = {"BOTCLAVE_BINANCE_API_KEY": KEY, "BOTCLAVE_BINANCE_SECRET": SECRET}
        manager = open_manager(config(exchange, max_order_notional=1e6), data, "lv1",
                               environ=env)
        exchange.set_price("BTCUSDT", 61_700.0)
        start_btc = exchange.balances["BTC"]
        live, folder = live_until_served(ws, served, exchange, "BTCUSDT", manager, cfg,
                                         make_tester(), tmp_path, "lv1")
        orders = manager.journal.orders()
        core = live.trader.core
        n_fills = int(core.state.iv[L.I_N_FILLS])
        mirrored = {c: o for c, o in orders.items() if c.endswith(("-en", "-ex"))}
        placed = [o.client_id for o in exchange.orders.values()]
        # every fill of the core was looked at; entries and exits went out as market orders
        assert n_fills > 0 and live.mirror.mirrored == n_fills
        assert mirrored and all(o.status == OrderStatus.FILLED for o in mirrored.values())
        assert max(Counter(placed).values()) == 1  # no client id twice
        assert set(placed) == {c for c, o in orders.items() if o.status != OrderStatus.REJECTED}
        assert live.mirror.stats.protections >= 1
        assert any(o.list_id >= 0 for o in exchange.orders.values())  # OCO lists went out
        # stopped: nothing of the session open, flat on the exchange
        assert exchange.open_client_ids() == []
        assert abs(live.mirror.position()) < 1e-9
        fees_btc = sum(o.fees.get("BTC", 0.0) for o in orders.values())
        assert abs(exchange.balances["BTC"] - start_btc + fees_btc) < 1e-9
    status = json.loads(status_path(data, "lv1").read_text())
    assert status["mode"] == "live" and status["state"] == "stopped"
    assert folder is not None and folder.name == "live-lv1"


def test_live_refuses_without_keys_and_the_mainnet_without_both_flags(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from botclave_cli.cli.app import app

    yaml = tmp_path / "ex.yaml"
    yaml.write_text("testnet: true\n")
    result = CliRunner().invoke(app, ["live", "--session", "l1", "--exchange-config", str(yaml),
                                      "--data-dir", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "BOTCLAVE_BINANCE_API_KEY" in result.output
    yaml.write_text("testnet: false\n")
    env = {"BOTCLAVE_BINANCE_API_KEY": "k", "BOTCLAVE_BINANCE_SECRET": "s", "COLUMNS": "200"}
    result = CliRunner().invoke(app, ["live", "--session", "l1", "--exchange-config", str(yaml),
                                      "--data-dir", str(tmp_path)], env=env)
    assert result.exit_code == 2 and "--live was not given" in result.output
