"""A live paper session with alerts (local fake Telegram Bot API over HTTPS): every paper fill
is one FILL message, and a WebSocket dropped mid-stream for longer than the threshold gives a
disconnect message once the session reconnects."""

from __future__ import annotations

from pathlib import Path

from botclave_cli.config import AlertsConfig
from botclave_cli.data.store import Store
from botclave_cli.exchange.record_config import RecordConfig
from botclave_cli.exchange.recorder import ccxt_snapshot_fetcher
from botclave_cli.live.alerts.alerter import Alerter
from botclave_cli.live.alerts.channels import TelegramChannel
from botclave_cli.live.session import run_paper_session
from tests.alerts_fakes import FakeBotApi, self_signed_cert
from tests.conftest import shared_file
from tests.emulator.binance_ws import BinanceWsEmulator
from tests.test_paper_session import BTC, LIMIT, Served, make_tester, run_until_served

TOKEN, CHAT = "123456:paper-test-token", "4242"


def test_fills_and_a_disconnect_are_alerted(tmp_path: Path) -> None:
    cert = self_signed_cert(tmp_path)
    emu = BinanceWsEmulator(shared_file(BTC), limit=LIMIT, disconnect_after={LIMIT // 2})
    served = Served(emu)
    cfg = RecordConfig(symbol="BTC/USDT", market="spot", ws_url=emu.ws_url, flush_every_s=0.2,
                       store_every_s=0.5, max_backoff_s=1.0)
    alerts = AlertsConfig(disconnect_after_s=0.0, max_per_window=1000)
    with FakeBotApi(*cert, token=TOKEN) as api:
        alerter = Alerter([TelegramChannel(TOKEN, CHAT, api_url=api.url, ca_file=cert[0])],
                          alerts, session="al1")
        try:
            paper, _ = run_until_served(emu, lambda: run_paper_session(
                Store(tmp_path / "store"), cfg, make_tester(), data_dir=tmp_path / "store",
                out_dir=tmp_path / "rep", session="al1", capture_dir=tmp_path / "cap",
                fetch_snapshot=ccxt_snapshot_fetcher("spot", emu.rest_url), grace_s=1.0,
                write_every_s=0.5, alerter=alerter))
        finally:
            served.close()
        texts = api.texts()
    fills = paper.trader.result().fills
    fill_texts = [t for t in texts if " FILL " in t]
    assert fills.height > 0 and len(fill_texts) == fills.height
    assert all(t.startswith("[botclave al1] ") for t in texts)
    assert emu.connections >= 2 and any("RECONNECTED market data after" in t for t in texts)
