"""``botclave dashboard`` in a real browser: start the command on a free port, drive Debian's
headless Chromium over the DevTools protocol (the report test's client), open tabs and wait for
their plotly charts. Used by the browser test and by benchmarks/bench_dashboard.py."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.test_browser_report import CHROMIUM_NAMES, FLAGS, DevTools

#: the report test's flags, but the local server resolves (every other host still does not, and
#: any request elsewhere is reported by ``page_problems``)
BROWSER_FLAGS = tuple("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
                      if f.startswith("--host-resolver-rules") else f for f in FLAGS)
#: plotly charts drawn in the open tab: plotly has laid the chart out and drawn its SVG
#: (charts already there before a tab click are marked ``data-bc-old`` and not counted)
PLOTS = ("Array.from(document.querySelectorAll('[role=tabpanel] .js-plotly-plot'))"
         ".filter(p => !p.hasAttribute('data-bc-old') && p._fullLayout && p._fullData"
         " && p._fullData.length && p.querySelector('.main-svg')).length")
TAB_LABELS = "Array.from(document.querySelectorAll('[role=tab]')).map(b => b.innerText)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chromium() -> str | None:
    import shutil

    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


@contextlib.contextmanager
def dashboard(data: Path, runs: Path, log: Path, timeout: float = 120) -> Iterator[str]:
    """``botclave dashboard`` as a child process; yields its URL once /_stcore/health answers,
    stops it (SIGTERM, then kill) at the end."""
    port = free_port()
    with served([sys.executable, "-m", "botclave_cli", "dashboard", "--port", str(port),
                 "--data-dir", str(data), "--runs-dir", str(runs)], port, log, timeout) as url:
        yield url


@contextlib.contextmanager
def served(cmd: list[str], port: int, log: Path, timeout: float = 120) -> Iterator[str]:
    """A Streamlit server (``cmd``, listening on ``port``) as a child process (dashboard())."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"{' '.join(cmd[2:4])} exited {proc.returncode}: "
                                         f"{log.read_text(errors='replace')[-2000:]}")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.read().strip() == b"ok":
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"{' '.join(cmd[2:4])} did not answer in time")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def browser(profile: Path, binary: str) -> Iterator[DevTools]:
    proc = subprocess.Popen([binary, *BROWSER_FLAGS, "--window-size=1400,1000",
                             f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"chromium did not start (exit code {proc.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t.get("type") == "page"]
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            tools.call(f"{domain}.enable")
        try:
            yield tools
        finally:
            tools.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(tools: DevTools, expression: str, ok: Any, timeout: float = 120) -> float:
    """Poll ``expression`` in the page until ``ok(value)``; returns the seconds it took."""
    started = time.monotonic()
    while True:
        value = tools.evaluate(expression)
        if ok(value):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out waiting for {expression!r} (last {value!r})")
        time.sleep(0.05)


def open_page(tools: DevTools, url: str) -> None:
    tools.call("Page.navigate", url=url)
    tools.wait_event("Page.loadEventFired", timeout=60)


def click_tab(tools: DevTools, label: str) -> None:
    """Click the tab ``label``; the charts on the page before the click no longer count."""
    found = tools.evaluate(
        "(() => { document.querySelectorAll('.js-plotly-plot')"
        ".forEach(p => p.setAttribute('data-bc-old', ''));"
        " const b = Array.from(document.querySelectorAll('[role=tab]'))"
        f".find(b => b.innerText.trim() === {json.dumps(label)}); if (b) b.click(); "
        "return !!b; })()")
    assert found, f"no tab {label!r}: {tools.evaluate(TAB_LABELS)}"


def tab_ready(tools: DevTools, label: str, plots: int, timeout: float = 180,
              idle: bool = True) -> float:
    """Wait until the open tab is ``label``, ``plots`` charts drew and (``idle``) the app is
    not running (a tab that re-reads every second, Live, is never idle for long)."""
    expression = (
        "(() => { const sel = document.querySelector('[role=tab][aria-selected=true]');"
        " const running = document.querySelector('[data-testid=stStatusWidgetRunningIcon]');"
        f" return [sel ? sel.innerText.trim() : null, {PLOTS}, !!running]; }})()")
    return wait_for(tools, expression,
                    lambda v: v[0] == label and v[1] >= plots and not (idle and v[2]), timeout)


def page_problems(tools: DevTools, origin: str) -> list[str]:
    """Console errors, exceptions, error log entries and requests to anywhere but ``origin``."""
    found = []
    for event in tools.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append(f"console {params['type']}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            found.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            found.append(f"log error: {params['entry'].get('text')} {params['entry'].get('url')}")
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith((origin, origin.replace("http", "ws"), "data:", "blob:")):
                found.append(f"network request: {url}")
    return found
