"""``paper status`` and ``paper stop`` on a live paper session (the WebSocket emulator streaming a
real capture): the heartbeat file says running and connected with the session's position and
equity, the exit code is 0; ``paper stop`` ends the session cleanly (status stopped, exit 1);
a heartbeat that stopped means "not responding" (exit 1), stale market data exit 3, and the
execution core's halts show as "halted"."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from botclave_cli.cli.app import app
from botclave_cli.data.store import Store
from botclave_cli.exchange.record_config import RecordConfig
from botclave_cli.exchange.recorder import ccxt_snapshot_fetcher
from botclave_cli.execution import layout as L
from botclave_cli.live.session import run_paper_session
from botclave_cli.live.status import SessionStatus, report, status_path, write_status
from tests.conftest import shared_file
from tests.emulator.binance_ws import BinanceWsEmulator
from tests.test_paper_session import BTC, LIMIT, Served, make_tester


def cli(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_status_and_stop_of_a_running_session(tmp_path: Path) -> None:
    emu = BinanceWsEmulator(shared_file(BTC), limit=LIMIT)
    served = Served(emu)
    data = tmp_path / "store"
    cfg = RecordConfig(symbol="BTC/USDT", market="spot", ws_url=emu.ws_url, flush_every_s=0.2,
                       store_every_s=0.5)
    done: dict = {}

    def session() -> None:
        done["result"] = run_paper_session(
            Store(data), cfg, make_tester(), data_dir=data, out_dir=tmp_path / "reports",
            session="st1", capture_dir=tmp_path / "captures",
            fetch_snapshot=ccxt_snapshot_fetcher("spot", emu.rest_url), grace_s=1.0,
            write_every_s=0.5)

    runner = threading.Thread(target=session, daemon=True)
    runner.start()
    try:
        give_up = time.monotonic() + 60
        while not (emu.finished and status_path(data, "st1").exists()):
            assert time.monotonic() < give_up, "the session did not get going"
            time.sleep(0.1)
        time.sleep(1.5)  # a heartbeat after the last message
        result = cli("paper", "status", "--session", "st1", "--data-dir", str(data), "--json",
                     "--max-event-age", "600")
        body = json.loads(result.output)
        assert result.exit_code == 0, result.output
        assert body["state"] == "running" and body["connected"] and body["alive"]
        assert body["messages"] > 1000 and body["equity"] == pytest.approx(
            body["initial_equity"] + body["pnl"])
        assert body["heartbeat_age_s"] < 5 and body["last_event_age_s"] is not None
        assert cli("paper", "stop", "--session", "st1", "--data-dir", str(data)).exit_code == 0
        runner.join(30)
        assert not runner.is_alive(), "paper stop did not end the session"
    finally:
        served.close()
    paper, folder = done["result"]
    assert folder is not None and paper.recorder.result.stopped_by == "stop requested"
    result = cli("paper", "status", "--session", "st1", "--data-dir", str(data), "--json")
    body = json.loads(result.output)
    assert result.exit_code == 1 and body["state"] == "stopped"
    assert body["trades"] == paper.trader.result().metrics["trades"]
    assert not (data / "sessions" / "st1" / "stop.request").exists()


def _status(**kw) -> SessionStatus:
    now = int(time.time() * 1000)
    base = dict(session="x1", mode="paper", symbol="BTC/USDT", market="spot", pid=1,
                started_ms=now - 60_000, heartbeat_ms=now, last_event_ms=now, connected=True,
                equity=10_100.0, initial_equity=10_000.0)
    return SessionStatus(**{**base, **kw})


def test_exit_codes_for_cron(tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    assert report(_status(), now, 30, 60)[0] == 0
    code, body, line = report(_status(heartbeat_ms=now - 120_000), now, 30, 60)
    assert code == 1 and "not responding" in line and not body["alive"]
    code, _, line = report(_status(last_event_ms=now - 300_000), now, 30, 60)
    assert code == 3 and "last event 300.0 s ago" in line
    code, _, line = report(_status(state="halted", halt="drawdown"), now, 30, 60)
    assert code == 1 and "halted (drawdown)" in line
    assert report(_status(), now, 30, 60)[1]["pnl"] == pytest.approx(100.0)
    write_status(status_path(tmp_path, "x1"), _status(heartbeat_ms=now - 120_000))
    result = cli("paper", "status", "--session", "x1", "--data-dir", str(tmp_path))
    assert result.exit_code == 1 and "not responding" in result.output
    result = cli("paper", "status", "--session", "nope", "--data-dir", str(tmp_path))
    assert result.exit_code == 2 and "no status file" in result.output


def test_the_core_halts_show_in_the_status(tmp_path: Path) -> None:
    from botclave_cli.live.session import PaperSession

    paper = PaperSession(make_tester(), tmp_path, "h1", data_dir=tmp_path)
    assert paper.status().state == "running" and paper.status().halt is None
    paper.trader.core.state.iv[L.I_HALTED_DD] = 1  # what the core sets past risk.max_drawdown
    assert paper.status().state == "halted" and paper.status().halt == "drawdown"
