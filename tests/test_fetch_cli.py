"""``botclave fetch`` end to end: exit codes and one-line errors, and a run killed with SIGKILL.

The emulator runs in this process (a thread); the CLI talks to it over 127.0.0.1, in process
through Typer's runner or as a real subprocess for the kill test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from botclave_cli.cli.app import app
from botclave_cli.data.store import DatasetRef, Store
from tests.conftest import PROJECT_ROOT
from tests.emulator.binance_rest import BinanceEmulator, EmuMarket, synthetic_agg_trades

T0_MS = 1_723_075_200_000  # 2024-08-08 00:00 UTC
REF = DatasetRef("binance", "spot", "BTC/USDT", "agg_trades")


def market(n: int) -> EmuMarket:
    return EmuMarket("BTCUSDT", "spot", "BTC", "USDT", "0.01", "0.00001",
                     synthetic_agg_trades(n, T0_MS, seed=5, mean_gap_ms=20))


def write_config(tmp_path: Path, base_url: str, **rate_limit: float) -> Path:
    path = tmp_path / "exchange_config.yaml"
    cfg = {"exchange": "binance", "market": "spot", "api_urls": {"all": base_url}}
    if rate_limit:
        cfg["rate_limit"] = rate_limit
    path.write_text(yaml.safe_dump(cfg))
    return path


def invoke(*args: str):
    return CliRunner().invoke(app, ["fetch", *args])


@pytest.fixture(scope="module")
def emulator():
    with BinanceEmulator([market(2_000)]) as emu:
        yield emu


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_unknown_symbol_exits_2_with_one_line(emulator, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, emulator.base_url)
    done = invoke("trades", "--symbol", "NOPE/USDT", "--from", "2024-08-08", "--config", str(cfg))
    assert done.exit_code == 2
    assert one_line(done.stderr) == (
        "error: --symbol NOPE/USDT: not a binance spot market (a ccxt unified symbol such as "
        "BTC/USDT, or BTC/USDT:USDT on usdm)")


def test_reversed_date_range_exits_2_with_one_line(emulator, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, emulator.base_url)
    done = invoke("ohlcv", "--symbol", "BTC/USDT", "--since", "2024-08-09", "--until",
                  "2024-08-08", "--config", str(cfg))
    assert done.exit_code == 2
    assert one_line(done.stderr) == (
        "error: --from 2024-08-09 must be before --to 2024-08-08 (the range is [from, to))")


def test_missing_credentials_for_my_trades_exit_2(emulator, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(tmp_path, emulator.base_url)
    monkeypatch.setenv("BOTCLAVE_BINANCE_API_KEY", "only-the-key-is-set")
    done = invoke("my-trades", "--symbol", "BTC/USDT", "--from", "2024-08-08", "--config",
                  str(cfg))
    assert done.exit_code == 2
    assert one_line(done.stderr) == (
        "error: fetch my-trades needs credentials: set BOTCLAVE_BINANCE_API_KEY and "
        "BOTCLAVE_BINANCE_SECRET in the environment")
    assert "only-the-key-is-set" not in done.stderr + done.stdout


def test_unreachable_exchange_exits_4(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = write_config(tmp_path, f"http://127.0.0.1:{port}", max_retries=2,
                       backoff_seconds=0.01)
    done = invoke("trades", "--symbol", "BTC/USDT", "--from", "2024-08-08", "--config", str(cfg))
    assert done.exit_code == 4
    assert one_line(done.stderr) == (
        "error: binance spot load markets: network error (NetworkError); gave up after 2 retries")


def test_json_output_and_manifest(emulator, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, emulator.base_url)
    data = tmp_path / "store"
    done = invoke("trades", "--symbol", "BTC/USDT", "--from", "2024-08-08", "--to",
                  "2024-08-08T00:00:30", "--config", str(cfg), "--data-dir", str(data), "--json")
    assert done.exit_code == 0, done.stderr
    out = json.loads(done.stdout)
    rows = market(2_000).agg.filter(pl.col("T") < T0_MS + 30_000).height
    assert out["rows_new"] == out["rows_total"] == rows
    assert out["coverage"] == [["2024-08-08T00:00:00+00:00", "2024-08-08T00:00:30+00:00"]]
    assert (out["tick_size"], out["lot_size"], out["gaps"]) == (0.01, 1e-05, [])
    book = invoke("book", "--symbol", "BTC/USDT", "--limit", "3", "--config", str(cfg),
                  "--data-dir", str(data), "--quiet")
    assert book.exit_code == 0 and book.stdout == ""
    assert Store(data).scan(DatasetRef("binance", "spot", "BTC/USDT",
                                       "book_snapshot")).collect().height == 6


# the fetch command group itself, without importing every other command group (their imports
# cost seconds per process on a busy machine); the code run is the same as `botclave fetch`
FETCH_MAIN = "from botclave_cli.cli.fetch import fetch_app; fetch_app(prog_name='botclave fetch')"


def test_rejected_credentials_stay_out_of_output_and_log(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    key, secret = "K3y" * 20, "S3cr3t" * 10
    monkeypatch.setenv("BOTCLAVE_BINANCE_API_KEY", key)
    monkeypatch.setenv("BOTCLAVE_BINANCE_SECRET", secret)
    log = tmp_path / "botclave.log"
    with BinanceEmulator([market(500)], api_key=key, secret="another-secret") as emu:
        cfg = write_config(tmp_path, emu.base_url)
        done = CliRunner().invoke(app, ["-vv", "--log-file", str(log), "fetch", "my-trades",
                                        "--symbol", "BTC/USDT", "--from", "2024-08-08",
                                        "--to", "2024-08-09", "--config", str(cfg)])
        signed = [q for p, q, _ in emu.log if p == "/api/v3/myTrades"]
    assert done.exit_code == 2
    assert one_line(done.stderr) == (
        "error: binance fetch my trades: credentials rejected (Binance error -1022: Signature "
        "for this request is not valid.); check BOTCLAVE_BINANCE_API_KEY / _SECRET")
    assert signed and all(q["signature"] and q["timestamp"] for q in signed)
    text = done.stdout + done.stderr + log.read_text()
    assert "command failed" in log.read_text()
    assert key not in text and secret not in text and signed[0]["signature"] not in text


def _cli(args: list[str], data_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "BOTCLAVE_DATA_DIR": str(data_dir), "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen([sys.executable, "-c", FETCH_MAIN, *args], cwd=PROJECT_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_mid_fetch_then_rerun_equals_uninterrupted(tmp_path: Path) -> None:
    n = 40_000
    with BinanceEmulator([market(n)], delay_s=0.05) as emu:
        cfg = write_config(tmp_path, emu.base_url)
        args = ["trades", "--symbol", "BTC/USDT", "--from", "2024-08-08", "--to",
                "2024-08-09", "--config", str(cfg), "--chunk-rows", "3000"]
        killed = tmp_path / "killed"
        proc = _cli([*args, "--data-dir", str(killed)], killed)
        store = Store(killed)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # kill once some chunks are in, well before the end
            manifest = store.manifest(REF) if store.exists(REF) else None
            if manifest is not None and manifest.row_count >= 6_000:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        partial = store.manifest(REF)
        assert 6_000 <= partial.row_count < n  # really killed mid-way
        assert store.scan(REF).collect().height >= partial.row_count

        emu.delay_s = 0.0
        again = _cli([*args, "--data-dir", str(killed)], killed)
        out, err = again.communicate(timeout=60)
        assert again.returncode == 0, err
        assert "(resumed)" in out

        whole = tmp_path / "whole"  # the uninterrupted run
        fresh = invoke(*args, "--data-dir", str(whole))
        assert fresh.exit_code == 0, fresh.stderr

    resumed_rows = Store(killed).scan(REF).collect()
    whole_rows = Store(whole).scan(REF).collect()
    assert resumed_rows.height == n and resumed_rows["agg_id"].n_unique() == n
    assert_frame_equal(resumed_rows, whole_rows)
    m_resumed, m_whole = Store(killed).manifest(REF), Store(whole).manifest(REF)
    assert m_resumed.coverage == m_whole.coverage
    assert (m_resumed.row_count, m_resumed.partitions, m_resumed.gaps) == (
        m_whole.row_count, m_whole.partitions, m_whole.gaps)
    assert not list(killed.rglob(".*.tmp-*"))  # no temp file of the killed writer is left


def test_emulator_runs_as_a_subprocess_on_the_real_ccxt_trades(tmp_path: Path) -> None:
    from tests.conftest import shared_file

    data = shared_file("binance-rest/xrpeth_aggtrades_ccxt_20191011.json.gz")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    emu = subprocess.Popen([sys.executable, "-m", "tests.emulator.binance_rest", "--port", "0",
                            "--data", str(data)], cwd=PROJECT_ROOT, env=env,
                           stdout=subprocess.PIPE, text=True)
    try:
        line = emu.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        cfg = write_config(tmp_path, line.removeprefix("listening on "))
        done = invoke("trades", "--symbol", "XRP/ETH", "--from", "2019-10-11", "--to",
                      "2019-10-14", "--config", str(cfg), "--data-dir", str(tmp_path / "d"))
    finally:
        emu.terminate()
        emu.wait(timeout=10)
    assert done.exit_code == 0, done.stderr
    assert done.stdout.startswith("binance/spot/XRP-ETH/agg_trades: 12477 new row(s)")
