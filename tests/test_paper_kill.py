"""``kill -9`` of a live ``botclave paper --session`` process, then a restart: the session resumes
from the store and, stopped by SIGTERM, exits 0 with a run folder equal to the backtest of
every trade stored (no order twice, none lost: the same orders, fills and trades)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from polars.testing import assert_frame_equal

from botclave_cli.backtest.results import RESULT_FILES, read_results
from botclave_cli.data.store import Store
from botclave_cli.live.status import status_path
from tests.conftest import PROJECT_ROOT, shared_file
from tests.emulator.binance_ws import BinanceWsEmulator
from tests.test_paper_session import BTC, Served, make_tester, stored_trades

SETTINGS = ["entry.setups=[bos,absorption]", "bars.timeframe=5s",
            "structure.swing_confirm_bars=2", "orderflow.absorption_min_baseline_bars=5",
            "risk.max_daily_loss=1.0", "risk.max_drawdown=1.0"]


def start(emu: BinanceWsEmulator, tmp: Path) -> subprocess.Popen:
    (tmp / "exchange.yaml").write_text("{}\n")
    args = [sys.executable, "-m", "botclave_cli", "paper", "--session", "k1", "--symbol",
            "BTC/USDT", "--market", "spot", "--ws-url", emu.ws_url, "--rest-url", emu.rest_url,
            "--tick-size", "0.01", "--lot-size", "0.00001", "--exchange-config",
            str(tmp / "exchange.yaml"), "--store-every", "300ms", "--flush-every", "100ms",
            "--data-dir", str(tmp / "store"), "--out-dir", str(tmp / "reports"), "--json"]
    for item in SETTINGS:
        args += ["--set", item]
    return subprocess.Popen(args, cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ})


def wait(cond, what: str, seconds: float = 90) -> None:
    give_up = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < give_up, what
        time.sleep(0.05)


def test_kill_9_then_restart_resumes_and_sigterm_ends_cleanly(tmp_path: Path) -> None:
    emu = BinanceWsEmulator(shared_file(BTC), limit=20_000, pause_s=0.0004)
    served = Served(emu)
    status = status_path(tmp_path / "store", "k1")
    try:
        first = start(emu, tmp_path)
        wait(lambda: emu.cursor > len(emu.messages) // 3, "the first process streams")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert first.returncode == -signal.SIGKILL
        before = stored_trades(Store(tmp_path / "store")).height
        second = start(emu, tmp_path)
        wait(lambda: emu.finished, "the second process streams to the end")
        time.sleep(3.0)  # the last bar closes on the clock; a heartbeat after it
        wait(lambda: status.exists() and json.loads(status.read_text())["pid"] == second.pid,
             "the second process's heartbeat")
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=60)
    finally:
        served.close()
    assert second.returncode == 0, err
    summary = json.loads(out)
    trades = stored_trades(Store(tmp_path / "store"))
    assert 0 < before < trades.height  # the kill left some stored, the restart added the rest
    batch = make_tester().run(trades)
    assert batch.signals.height >= 2
    written = read_results(Path(summary["folder"]))
    assert written["manifest"]["status"] == "stopped"
    for name in RESULT_FILES:
        assert_frame_equal(written[name], getattr(batch, name))
    assert json.loads(status.read_text())["state"] == "stopped"
