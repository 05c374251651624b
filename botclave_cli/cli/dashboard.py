"""``botclave dashboard``: serve the Streamlit app over the store and the run folders.

The app (``botclave_cli/dashboard/app.py``) runs as its own program under ``streamlit run``
(started through ``botclave_cli.dashboard.server``, which warms the Order Flow cache first):
this command checks the options, starts it with the store and the runs folder in its
environment, and waits until it stops (Ctrl-C or SIGTERM stop both). The CLI does not import the
dashboard package (the two are sibling layers); it only names the script's file and the
server's module.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from botclave_cli.cli.common import DEFAULT_DATA_DIR, DataDirOpt, JsonOpt, QuietOpt, run
from botclave_cli.errors import UsageError

APP_SCRIPT = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
SERVER_MODULE = "botclave_cli.dashboard.server"  # streamlit run, plus a warm cache
RUNS_DIR_ENV = "BOTCLAVE_DASHBOARD_RUNS_DIR"  # read by dashboard/data.py (Sources.from_env)
DEFAULT_PORT = 8501


def check_port(host: str, port: int) -> None:
    """UsageError when ``port`` is out of range or already taken on ``host``."""
    if not 1 <= port <= 65535:
        raise UsageError(f"--port {port}: expected 1..65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            raise UsageError(f"--port {port}: already in use on {host} (pass another --port)"
                             ) from None


def streamlit_command(host: str, port: int, script: Path = APP_SCRIPT,
                      module: str = SERVER_MODULE) -> list[str]:
    """``streamlit run`` of the app (through the warming server module): headless, no usage
    statistics, no file watcher, and errors shown without details (the app shows its own
    one-line messages). The benchmark serves another ``script`` the same way (``module``
    ``streamlit``: no warming) to measure Streamlit's own floor."""
    return [sys.executable, "-m", module, "run", str(script),
            "--server.port", str(port), "--server.address", host,
            "--server.headless", "true", "--server.fileWatcherType", "none",
            "--server.runOnSave", "false", "--browser.gatherUsageStats", "false",
            "--client.showErrorDetails", "none", "--client.toolbarMode", "viewer",
            "--global.developmentMode", "false"]


def dashboard(
    runs_dir: Annotated[Path, typer.Option(
        "--runs-dir", help="The folder of run folders (a backtest's --out-dir D writes "
        "D/runs/<run id>).")] = Path("reports/runs"),
    port: Annotated[int, typer.Option("--port", help="HTTP port.")] = DEFAULT_PORT,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Serve the dashboard: Order Flow, Strategy, Depth, Live and Configuration tabs over
    the store and the run folders (read in place; only a backtest started from the page
    writes, into --runs-dir). Runs until Ctrl-C. Needs the dashboard extra
    (pip install 'botclave[dashboard]').

    Example: botclave dashboard --data-dir datasets --runs-dir reports/runs --port 8501
    """
    with run(json_, quiet) as out:
        if importlib.util.find_spec("streamlit") is None or \
                importlib.util.find_spec("plotly") is None:
            raise UsageError("the dashboard needs Streamlit and plotly: pip install "
                             "'botclave[dashboard]' (make venv installs them)")
        if runs_dir.name != "runs":
            raise UsageError(f"--runs-dir {runs_dir}: expected a folder named runs (botclave "
                             "backtest --out-dir D writes its runs to D/runs/<run id>)")
        if data_dir.exists() and not data_dir.is_dir():
            raise UsageError(f"--data-dir {data_dir}: not a directory")
        check_port(host, port)
        env = {**os.environ, "BOTCLAVE_DATA_DIR": str(data_dir.resolve()),
               RUNS_DIR_ENV: str(runs_dir.resolve())}
        url = f"http://{host}:{port}"
        data: dict[str, Any] = {"url": url, "data_dir": str(data_dir.resolve()),
                                "runs_dir": str(runs_dir.resolve())}
        out.emit(data, f"dashboard on {url} (store {data_dir}, runs {runs_dir}); "
                 "Ctrl-C stops it")
        sys.stdout.flush()
        code = serve(streamlit_command(host, port), env)
        if code not in (0, -signal.SIGTERM, -signal.SIGINT):
            raise typer.Exit(1)


def serve(command: list[str], env: dict[str, str]) -> int:
    """Run the server until it exits; SIGTERM / SIGINT to this process stop it first."""
    proc = subprocess.Popen(command, env=env)

    def stop(signum: int, _frame: Any) -> None:
        proc.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        return proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
