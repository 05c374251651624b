"""Shared by the dashboard tests: a small synthetic store with a backtest, its validation and a
running paper session; the app under Streamlit's AppTest; plotly specs read back as numbers."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from tests.conftest import PROJECT_ROOT

APP = PROJECT_ROOT / "botclave_cli" / "dashboard" / "app.py"
DAY = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
SETTINGS = ["--set", "entry.setups=[bos, absorption]", "--set", "bars.timeframe=2m",
            "--set", "risk.max_daily_loss=1.0", "--set", "risk.cooldown_losses=0"]


_WORLDS: dict[str, dict[str, Any]] = {}


def shared_world(tmp_path_factory: Any) -> dict[str, Any]:
    """``make_world`` once per test session (the dashboard's test modules read it; the tests
    that rewrite the paper folder read its values back from the files, never from memory)."""
    if "world" not in _WORLDS:
        _WORLDS["world"] = make_world(tmp_path_factory.mktemp("dashboard_world"))
    return _WORLDS["world"]


def make_world(root: Path) -> dict[str, Any]:
    """store (synth, 20,000 trades a day, book every second), reports/runs with one backtest
    and its validation (3 folds, 50 Monte Carlo runs), and a running paper session's folder."""
    from botclave_cli.cli.app import app
    from botclave_cli.data.store import Store
    from botclave_cli.data.synth import SynthConfig
    from botclave_cli.data.synth.write import write_synth

    data, out = root / "data", root / "reports"
    write_synth(Store(data), SynthConfig(trades_per_day=20_000, book_interval_ms=1_000, seed=5))
    common = ["--exchange", "synth", "--data-dir", str(data), "--out-dir", str(out), "--json",
              *SETTINGS]
    bt = CliRunner().invoke(app, ["backtest", "--no-book", *common])
    assert bt.exit_code == 0, bt.output
    val = CliRunner().invoke(app, ["validate", "all", "--from", "2024-01-01", "--to",
                                   "2024-01-02", "--folds", "3", "--runs", "50", *common])
    assert val.exit_code in (0, 1), val.output
    run_id = json.loads(bt.output)["run_id"]
    paper = write_paper(data, out, "paper-t1", hours=12)
    return {"data": data, "runs": out / "runs", "run_id": run_id, "paper": paper}


def write_paper(data: Path, out: Path, rid: str, hours: int) -> Path:
    """A paper session's folder as PaperSession.write leaves it ("running"), over the first
    ``hours`` of the store's trades."""
    from botclave_cli.backtest.backtester import Backtester
    from botclave_cli.backtest.results import write_results
    from botclave_cli.config import load_exchange_config
    from botclave_cli.data.store import DatasetRef, Store
    from botclave_cli.strategy.params import StrategyParams, params_with_overrides

    store = Store(data)
    ref = DatasetRef("synth", "spot", "BTC/USDT", "trades")
    trades = store.scan(ref, DAY, DAY + dt.timedelta(hours=hours)).select(
        "ts", "price", "qty", "side").collect()
    params = params_with_overrides(StrategyParams(), SETTINGS[1::2])
    tester = Backtester(params, load_exchange_config(None), symbol="BTC/USDT", tick_size=1.0,
                        lot_size=store.manifest(ref).lot_size)
    _, folder = write_results(tester.run(trades), out, rid=rid, status="running",
                              extra={"paper": True, "session": "t1", "dataset": str(ref)})
    return folder


def app_test(monkeypatch, data: Path, runs: Path, tab: str | None = None):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("BOTCLAVE_DATA_DIR", str(data))
    monkeypatch.setenv("BOTCLAVE_DASHBOARD_RUNS_DIR", str(runs))
    at = AppTest.from_file(str(APP), default_timeout=600)
    if tab is not None:
        at.session_state["tab"] = tab
    return at.run()


def no_traceback(at) -> None:
    assert [e.value for e in at.exception] == []


def figures(at) -> list[dict[str, Any]]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def trace(fig: dict[str, Any], name: str) -> dict[str, Any]:
    found = [t for t in fig["data"] if t.get("name") == name]
    assert found, f"no trace {name!r} in {[t.get('name') for t in fig['data']]}"
    return found[0]


def numbers(value: Any) -> np.ndarray:
    """A plotly array as numpy: a plain list, or plotly's typed array (dtype + base64)."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        if shape:
            arr = arr.reshape([int(x) for x in str(shape).split(",")])
        return arr.astype(np.float64)
    return np.array([np.nan if v is None else v for v in value], dtype=np.float64)


def times(value: Any) -> list[dt.datetime]:
    """A plotly date array as UTC datetimes: ISO strings, or milliseconds since the epoch (a
    typed array, as the Order Flow figures send them)."""
    if isinstance(value, dict):
        return [dt.datetime.fromtimestamp(0, dt.UTC) + dt.timedelta(milliseconds=float(ms))
                for ms in numbers(value)]
    return [dt.datetime.fromisoformat(v).astimezone(dt.UTC) for v in value]


def frames_with(at, *columns: str) -> list[Any]:
    """The tables shown (pandas frames, in page order) that have all of ``columns``
    (AppTest names a table by its key only when it is selectable)."""
    return [d.value for d in at.get("dataframe") if set(columns) <= set(d.value.columns)]
