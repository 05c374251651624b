"""Bad input in the dashboard: no data for a selection is a message naming the missing dataset
and the command that fetches it, a bad choice is one line, and nothing shows a traceback.
Also the command's own refusals (``botclave dashboard``: exit 2, one line)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from botclave_cli.cli.app import app
from tests.dashboard_helpers import app_test, no_traceback, shared_world

pytest.importorskip("streamlit", reason="the dashboard extra is not installed (make venv does)")

TABS = ("Order Flow", "Strategy", "Depth", "Live", "Configuration")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return shared_world(tmp_path_factory)


def messages(at) -> str:
    return " | ".join(x.value for x in (*at.info, *at.warning, *at.error))


@pytest.mark.parametrize("tab", TABS)
def test_an_empty_store_and_runs_folder_say_what_to_run(tab, monkeypatch, tmp_path):
    at = app_test(monkeypatch, tmp_path / "nothing", tmp_path / "reports" / "runs", tab=tab)
    no_traceback(at)
    text = messages(at)
    assert "botclave fetch trades" in text and "botclave synth" in text
    if tab == "Strategy":
        assert f"no run folder in {tmp_path / 'reports' / 'runs'}" in text
        assert "botclave backtest" in text
    if tab == "Live":
        assert "botclave paper --session" in text


def test_trades_without_a_book_name_the_book_dataset_and_record(world, monkeypatch, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(world["data"] / "synth" / "spot" / "BTC-USDT" / "trades",
                    data / "binance" / "spot" / "BTC-USDT" / "trades")
    at = app_test(monkeypatch, data, world["runs"], tab="Depth")
    no_traceback(at)
    text = messages(at)
    expected = data / "binance" / "spot" / "BTC-USDT" / "book_snapshot"
    assert f"no book_snapshot dataset at {expected}" in text
    assert "botclave record --symbol BTC/USDT --market spot" in text
    flow = app_test(monkeypatch, data, world["runs"])
    no_traceback(flow)
    assert len(flow.get("plotly_chart")) == 2  # the trades alone still draw the order flow


def test_a_bad_bar_spec_is_one_line(world, monkeypatch):
    at = app_test(monkeypatch, world["data"], world["runs"])
    at.text_input(key="bar").input("fortnight").run()
    no_traceback(at)
    text = messages(at)
    assert "fortnight" in text and "Traceback" not in text
    assert not at.get("plotly_chart")


def test_a_run_whose_dataset_is_gone_says_where_it_was(world, monkeypatch, tmp_path):
    at = app_test(monkeypatch, tmp_path / "empty", world["runs"], tab="Strategy")
    at.selectbox(key="run").set_value(world["run_id"]).run()
    no_traceback(at)
    assert "synth/spot/BTC-USDT/trades, which is not in" in messages(at)
    assert "botclave synth --symbol BTC/USDT" in messages(at)
    assert at.get("plotly_chart")  # equity and validation still show


def test_a_broken_run_folder_is_one_line_not_a_traceback(world, monkeypatch, tmp_path):
    runs = tmp_path / "reports" / "runs"
    shutil.copytree(world["runs"] / world["run_id"], runs / "broken")
    (runs / "broken" / "trades.parquet").write_bytes(b"not parquet")
    at = app_test(monkeypatch, world["data"], runs, tab="Strategy")
    no_traceback(at)
    text = messages(at)
    assert f"{runs / 'broken'}: the run folder is incomplete or damaged" in text
    assert "Traceback" not in text


def test_dashboard_command_refuses_bad_options_in_one_line(tmp_path):
    r = CliRunner().invoke(app, ["dashboard", "--runs-dir", str(tmp_path / "elsewhere")])
    assert r.exit_code == 2
    assert "--runs-dir" in r.output and "expected a folder named runs" in r.output
    assert "Traceback" not in r.output
    r = CliRunner().invoke(app, ["dashboard", "--port", "0"])
    assert r.exit_code == 2 and "--port 0: expected 1..65535" in r.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = CliRunner().invoke(app, ["dashboard", "--port", str(port)])
    assert r.exit_code == 2 and f"--port {port}: already in use" in r.output


def test_dashboard_command_without_the_extra_says_how_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "streamlit" else real(name, *a))
    r = CliRunner().invoke(app, ["dashboard"])
    assert r.exit_code == 2 and "pip install 'botclave[dashboard]'" in r.output


def test_the_app_script_the_command_starts_exists():
    from botclave_cli.cli.dashboard import APP_SCRIPT, streamlit_command

    assert APP_SCRIPT.is_file() and APP_SCRIPT == Path(__file__).resolve().parents[1] / \
        "botclave_cli" / "dashboard" / "app.py"
    cmd = streamlit_command("127.0.0.1", 8600)
    assert cmd[1:5] == ["-m", "botclave_cli.dashboard.server", "run", str(APP_SCRIPT)]
    assert cmd[cmd.index("--client.showErrorDetails") + 1] == "none"


def test_paper_write_every_must_be_positive(tmp_path):
    """``botclave paper --write-every S``: how often the session rewrites the folder the Live
    tab reads (seconds, > 0)."""
    r = CliRunner().invoke(app, ["paper", "--session", "s1", "--write-every", "0",
                                 "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and "--write-every 0.0: must be > 0 seconds" in r.output
