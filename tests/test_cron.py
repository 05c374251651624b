"""Cron mode: no TTY -> one summary line and the documented exit codes; overlapping runs are
refused cleanly; SIGTERM mid-report leaves the previous report intact.

The pipeline runs on a small hand-made trade dataset (exchange "synth", data already stored, so
nothing is generated or fetched) with the layers' stages switched off where a test does not need
them, which keeps each run to a second or two.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from botclave_cli.cli.app import app
from botclave_cli.data.manifest import Gap, Manifest
from botclave_cli.data.store import DatasetRef, Store, to_us

PROJECT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
HOUR_US = 3_600_000_000


def make_store(root: Path, hours: int = 6, n: int = 3000, seed: int = 1,
               gap: bool = False, covered_hours: int | None = None,
               id_gap: int | None = None) -> Store:
    """``n`` random trades over ``hours`` hours from 2024-01-01 00:00 UTC as synth BTC/USDT;
    the manifest says ``covered_hours`` (default ``hours``) were fetched."""
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(0, hours * HOUR_US, n)) + to_us(T0)
    df = pl.DataFrame({
        "ts": pl.Series(ts).cast(pl.Datetime("us", "UTC")),
        "price": np.round(42_000 + np.cumsum(rng.normal(0, 1, n)), 2),
        "qty": np.round(rng.uniform(0.001, 0.1, n), 5),
        "side": rng.choice(["buy", "sell"], n), "trade_id": np.arange(n, dtype=np.int64),
    })

    def update(m: Manifest) -> None:
        m.add_coverage(to_us(T0), to_us(T0) + (covered_hours or hours) * HOUR_US)
        if id_gap is not None:
            m.gaps.append(Gap(kind="trade_id", start=id_gap, end=id_gap, detail="1 missing id"))
        if gap:
            m.gaps.append(Gap(kind="time", start=to_us(T0) + HOUR_US,
                              end=to_us(T0) + HOUR_US + 60_000_000, detail="no trades 60 s"))

    store = Store(root)
    store.write(DatasetRef("synth", "spot", "BTC/USDT", "trades"), df, update_manifest=update,
                new_manifest=lambda: Manifest(kind="trades", exchange="synth", market="spot",
                                              symbol="BTC/USDT", source="synth", tick_size=0.01,
                                              lot_size=0.00001, tick_source="synth"))
    return store


def pipeline_yaml(tmp_path: Path, **extra) -> Path:
    data = {"title": "cron test", "from": "2024-01-01T00:00:00", "to": "2024-01-01T06:00:00",
            "data_dir": str(tmp_path / "ds"), "reports_dir": str(tmp_path / "reports"),
            "footprint": {"enabled": False}, "depth": {"enabled": False},
            "backtest": {"enabled": False}, "validate": {"enabled": False}}
    data.update(extra)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def cli(*args: str, tmp_path: Path, real: bool = False, timeout: float = 120) -> Done:
    """The CLI without a terminal: in this process (Typer's runner: stdout is not a TTY), or
    with ``real`` as a child process whose stdout is a pipe, the way cron runs it."""
    log = ["--log-file", str(tmp_path / "botclave.log")]
    if not real:
        result = CliRunner().invoke(app, [*log, *args])
        return Done(result.exit_code, result.stdout, result.stderr)
    env = {**os.environ, "BOTCLAVE_DATA_DIR": str(tmp_path / "ds"), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "botclave_cli", *log, *args],
                          capture_output=True, text=True, env=env, cwd=PROJECT,
                          timeout=timeout)
    return Done(done.returncode, done.stdout, done.stderr)


def test_no_tty_prints_one_summary_line_and_logs_details(tmp_path: Path):
    make_store(tmp_path / "ds")
    done = cli("report", "--pipeline", str(pipeline_yaml(tmp_path)), tmp_path=tmp_path,
               real=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    assert "\x1b[" not in done.stdout + done.stderr  # no colours, no progress bar
    report = tmp_path / "reports" / "html"
    (run,) = report.iterdir()
    assert lines[0].startswith(f"report {run / 'report.html'}; ")
    assert lines[0].endswith("verdict n/a") or "verdict n/a;" in lines[0]
    assert (tmp_path / "reports" / "index.html").exists()
    log = [json.loads(x) for x in (tmp_path / "botclave.log").read_text().splitlines()]
    stages = [r["stage"] for r in log if r.get("msg") == "pipeline stage"]
    assert stages[:3] == ["data", "coverage", "market"]


def test_json_output_names_report_and_stages(tmp_path: Path):
    make_store(tmp_path / "ds")
    done = cli("report", "--pipeline", str(pipeline_yaml(tmp_path)), "--json", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert Path(data["report"]).exists() and data["verdict"] is None
    assert {s["name"]: s["status"] for s in data["stages"]}["market"] == "ok"


def test_bad_config_exits_2_with_one_line(tmp_path: Path):
    done = cli("report", "--pipeline", str(pipeline_yaml(tmp_path, colour="red")),
               tmp_path=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'pipeline.yaml'}: colour: unknown key (got 'red')"]


def test_usage_errors_exit_2(tmp_path: Path):
    done = cli("report", tmp_path=tmp_path)
    assert done.returncode == 2
    assert "give exactly one of --run <id>, --latest or --pipeline <file>" in done.stderr
    missing = cli("report", "--pipeline", str(tmp_path / "nope.yaml"), tmp_path=tmp_path)
    assert missing.returncode == 2 and "file not found" in missing.stderr


def test_missing_data_exits_3(tmp_path: Path):
    done = cli("report", "--pipeline", str(pipeline_yaml(tmp_path, exchange="binance",
                                                         fetch={"enabled": False})),
               tmp_path=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "no BTC/USDT trades cover 2024-01-01 00:00:00 .. 2024-01-01 06:00:00" in done.stderr
    assert not (tmp_path / "reports" / "html").exists()


def test_gap_in_window_exits_3_unless_allowed(tmp_path: Path):
    make_store(tmp_path / "ds", gap=True)
    done = cli("report", "--pipeline", str(pipeline_yaml(tmp_path)), tmp_path=tmp_path)
    assert done.returncode == 3
    assert "synth/spot/BTC-USDT/trades: 1 gap(s): no trades 60 s" in done.stderr
    allowed = cli("report", "--pipeline", str(pipeline_yaml(tmp_path, allow_gaps=True)),
                  tmp_path=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    (run,) = (tmp_path / "reports" / "html").iterdir()
    html = (run / "report.html").read_text()
    assert "coverage: skipped - synth/spot/BTC-USDT/trades: 1 gap(s): no trades 60 s" in html


HOLD_LOCK = """
import sys, time
from pathlib import Path
from botclave_cli.lock import RunLock
with RunLock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_overlapping_run_exits_1_and_leaves_outputs_intact(tmp_path: Path):
    make_store(tmp_path / "ds")
    cfg = pipeline_yaml(tmp_path)
    first = cli("report", "--pipeline", str(cfg), tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    (run,) = (tmp_path / "reports" / "html").iterdir()
    before = {p: p.read_bytes() for p in sorted(tmp_path.joinpath("reports").rglob("*"))
              if p.is_file() and p.name != ".pipeline.lock"}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK,
                               str(tmp_path / "reports" / ".pipeline.lock")],
                              stdout=subprocess.PIPE, text=True, cwd=PROJECT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        second = cli("report", "--pipeline", str(cfg), tmp_path=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 1
    assert second.stdout == ""
    assert f"another run is in progress (pid {holder.pid} since" in second.stderr
    after = {p: p.read_bytes() for p in sorted(tmp_path.joinpath("reports").rglob("*"))
             if p.is_file() and p.name != ".pipeline.lock"}
    assert after == before


SLOW_WRITE = """
import sys, time
from botclave_cli.cli.app import app
from botclave_cli.data import atomic
from botclave_cli.report import report as report_mod

class SlowAtomic:
    def __getattr__(self, name):
        return getattr(atomic, name)

    def write_text(self, target, text):
        if target.name != "report.html":
            return atomic.write_text(target, text)
        with atomic.atomic_path(target) as tmp:
            tmp.write_text(text[: len(text) // 2])
            print("writing", flush=True)
            time.sleep(60)

report_mod.atomic = SlowAtomic()
app(["report", "--pipeline", sys.argv[1]])
"""


def test_sigterm_mid_report_leaves_previous_report_intact(tmp_path: Path):
    from botclave_cli.pipeline import load_pipeline_config, run_pipeline

    make_store(tmp_path / "ds")
    cfg = pipeline_yaml(tmp_path)
    run_pipeline(load_pipeline_config(cfg))
    (run,) = (tmp_path / "reports" / "html").iterdir()
    html_before = (run / "report.html").read_bytes()
    json_before = (run / "report.json").read_bytes()
    make_store(tmp_path / "ds", n=3500, seed=2)  # new data: the same run id, a new report
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITE, str(cfg)], cwd=PROJECT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
        assert list(run.glob(".report.html.tmp-*"))  # caught in the middle of the write
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143
    assert err.strip().splitlines()[-1] == (
        "error: terminated by SIGTERM; the previous report is left as it was")
    assert (run / "report.html").read_bytes() == html_before
    assert (run / "report.json").read_bytes() == json_before
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]
    # and the lock was released: the next run goes through
    again = cli("report", "--pipeline", str(cfg), tmp_path=tmp_path)
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("verdict_fail", [True])
def test_validation_fail_exits_1_after_writing_the_report(tmp_path: Path, verdict_fail: bool,
                                                          monkeypatch):
    from typer.testing import CliRunner

    from botclave_cli.cli.app import app
    from botclave_cli.pipeline import stages as pipeline_stages
    from botclave_cli.report.report import Validation

    def failing(ctx):
        ctx.report.validation = Validation("fail", ["OOS Sharpe -0.4 <= 0"])
        return pipeline_stages._result("validate", "ok")

    monkeypatch.setattr(pipeline_stages, "STAGES", [*pipeline_stages.STAGES,
                                                    ("validate", failing)])
    make_store(tmp_path / "ds")
    result = CliRunner().invoke(app, ["report", "--pipeline", str(pipeline_yaml(tmp_path))])
    assert result.exit_code == 1
    (run,) = (tmp_path / "reports" / "html").iterdir()
    assert "Verdict: <strong>FAIL</strong>" in (run / "report.html").read_text()
    assert "verdict fail" in result.output


def test_unreachable_exchange_exits_4(tmp_path: Path):
    import socket

    with socket.socket() as probe:  # a local port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exchange = tmp_path / "exchange_config.yaml"
    exchange.write_text(yaml.safe_dump({
        "exchange": "binance", "market": "spot",
        "rate_limit": {"max_retries": 1, "backoff_seconds": 0.01, "timeout_ms": 1000},
        "api_urls": {"all": f"http://127.0.0.1:{port}"},
        "symbols": [{"symbol": "BTC/USDT", "tick_size": 0.01, "lot_size": 0.00001}]}))
    cfg = pipeline_yaml(tmp_path, exchange="binance", exchange_config=str(exchange))
    done = cli("report", "--pipeline", str(cfg), tmp_path=tmp_path)
    assert done.returncode == 4, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert not (tmp_path / "reports" / "html").exists()


def test_stale_data_exits_3(tmp_path: Path):
    from botclave_cli.errors import DataError
    from botclave_cli.pipeline import load_pipeline_config, run_pipeline

    # fetched up to 09:00, but the exchange sent no trade after 06:00
    make_store(tmp_path / "ds", hours=6, covered_hours=9)
    cfg = load_pipeline_config(pipeline_yaml(tmp_path, fetch={"max_staleness_minutes": 60}))
    run_pipeline(cfg, now=dt.datetime(2024, 1, 1, 6, 30, tzinfo=dt.UTC))  # within the hour
    cfg.end = dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC)
    with pytest.raises(DataError, match="stale data: the newest BTC/USDT trade is from "
                       "2024-01-01 05:5"):
        run_pipeline(cfg, now=dt.datetime(2024, 1, 1, 8, 0, tzinfo=dt.UTC))


def test_a_run_sharing_only_the_data_dir_is_refused_too(tmp_path: Path):
    make_store(tmp_path / "ds")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK,
                               str(tmp_path / "ds" / ".pipeline.lock")],
                              stdout=subprocess.PIPE, text=True, cwd=PROJECT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        done = cli("report", "--pipeline", str(pipeline_yaml(tmp_path)), tmp_path=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1
    assert f"{tmp_path / 'ds' / '.pipeline.lock'}: another run is in progress" in done.stderr


def test_same_dir_for_data_and_reports_takes_one_lock(tmp_path: Path):
    from botclave_cli.pipeline import load_pipeline_config, run_pipeline

    make_store(tmp_path / "ds")
    cfg = load_pipeline_config(pipeline_yaml(tmp_path, reports_dir=str(tmp_path / "ds")))
    result = run_pipeline(cfg)
    assert result.report.exists()


def test_an_id_gap_counts_only_inside_the_window(tmp_path: Path):
    from botclave_cli.errors import DataError
    from botclave_cli.pipeline import load_pipeline_config, run_pipeline

    store = make_store(tmp_path / "ds", hours=6, n=3000, id_gap=2990)  # near 06:00
    ts = store.scan(DatasetRef("synth", "spot", "BTC/USDT", "trades")).collect()["ts"]
    assert ts[2989] > T0 + dt.timedelta(hours=5)
    early = load_pipeline_config(pipeline_yaml(tmp_path, to="2024-01-01T03:00:00"))
    assert run_pipeline(early).report.exists()  # the gap lies after 03:00
    whole = load_pipeline_config(pipeline_yaml(tmp_path))
    with pytest.raises(DataError, match="1 gap\\(s\\): 1 missing id"):
        run_pipeline(whole)
