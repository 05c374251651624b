"""A real browser opens the report from disk with networking disabled.

Headless Chromium (Debian's ``chromium`` package; ``make test`` installs it when missing and it
can) is driven over the DevTools protocol with a small client on ``websockets``: no console
errors or exceptions, no request other than the file itself and its data: images, every image
decodes with a non-zero size, every in-page link resolves to an element, and a full-page
screenshot is written for the test log (also to ``$BOTCLAVE_TEST_ARTIFACTS`` when set).
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

CHROMIUM_NAMES = ("chromium", "chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio",
         "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--remote-debugging-port=0", "--window-size=1280,1000")


def chromium_binary() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium not found: `make test` installs Debian's chromium package "
                "with apt-get when run as root; otherwise run `apt-get install -y chromium`")


class DevTools:
    """Minimal Chrome DevTools Protocol client for one page target."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self._conn = connect(ws_url, max_size=64 * 1024 * 1024, open_timeout=20)
        self.ws = self._conn.__enter__()
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if message.get("id") == msg_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = next((e for e in self.events if e.get("method") == method), None)
        while seen is None:
            message = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            self.events.append(message)
            if message.get("method") == method:
                seen = message
        return seen

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True,
                           returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        self._conn.__exit__(None, None, None)


@pytest.fixture()
def browser(tmp_path: Path):
    binary = chromium_binary()
    profile = tmp_path / "chromium-profile"
    proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start (exit code {proc.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t.get("type") == "page"]
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        yield tools
        tools.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def open_offline(tools: DevTools, page: Path) -> None:
    for domain in ("Page", "Runtime", "Log", "Network"):
        tools.call(f"{domain}.enable")
    tools.call("Network.emulateNetworkConditions", offline=True, latency=0,
               downloadThroughput=-1, uploadThroughput=-1)
    tools.call("Page.navigate", url=page.resolve().as_uri())
    tools.wait_event("Page.loadEventFired", timeout=60)


def problems(tools: DevTools) -> list[str]:
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
            if not url.startswith(("file://", "data:")):
                found.append(f"network request: {url}")
        elif method == "Network.loadingFailed":
            found.append(f"loading failed: {params.get('errorText')}")
    return found


IMAGES = """Promise.all(Array.from(document.images).map(img => img.decode().then(
  () => [img.alt, img.naturalWidth, img.naturalHeight],
  err => [img.alt, -1, String(err)])))"""
LINKS = """Array.from(document.querySelectorAll('a[href^="#"]')).map(a => [
  a.getAttribute('href'), document.getElementById(a.getAttribute('href').slice(1)) !== null])"""
FILE_LINKS = """Array.from(document.querySelectorAll('a[href]'))
  .map(a => a.getAttribute('href')).filter(h => !h.startsWith('#'))"""


def screenshot(tools: DevTools, target: Path) -> Path:
    shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    target.write_bytes(base64.b64decode(shot["data"]))
    artifacts = os.environ.get("BOTCLAVE_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(target, Path(artifacts) / target.name)
    print(f"screenshot written: {target}")
    return target


@pytest.fixture()
def written_report(tmp_path: Path) -> Path:
    """A pipeline report (market + backtest) plus a validation section with its charts."""
    from botclave_cli.pipeline import PipelineConfig, run_pipeline
    from botclave_cli.report import report as report_mod
    from tests.test_cron import make_store

    make_store(tmp_path / "ds", hours=6, n=4000)
    cfg = PipelineConfig.model_validate({
        "title": "browser test", "from": "2024-01-01T00:00:00", "to": "2024-01-01T06:00:00",
        "data_dir": str(tmp_path / "ds"), "reports_dir": str(tmp_path / "reports"),
        "footprint": {"enabled": False}, "depth": {"enabled": False},
        "validate": {"enabled": False}})
    real_write = report_mod.write_report

    def with_validation(report, out_dir):
        from botclave_cli.report.charts import ChartGenerator

        gen = ChartGenerator(dpi=60)
        t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        hour = dt.timedelta(hours=1)
        report.charts.append(gen.walk_forward(
            [{"is_start": t0, "is_end": t0 + 2 * hour, "oos_start": t0 + 2 * hour,
              "oos_end": t0 + 3 * hour}], [t0 + 2 * hour, t0 + 3 * hour], [100.0, 101.0]))
        report.charts.append(gen.drawdown_distribution([1.0, 2.0, 3.0, 4.0, 8.0], 20))
        report.validation = report_mod.Validation("warn", ["warn: dsr 0.5 < 0.95"],
                                                  [("folds", [{"fold": 0, "oos_sharpe": 0.4}])])
        return real_write(report, out_dir)

    import botclave_cli.report.report as pipeline_mod

    pipeline_mod.write_report = with_validation
    try:
        result = run_pipeline(cfg)
    finally:
        pipeline_mod.write_report = real_write
    return result.report


def test_report_opens_offline_without_errors(browser: DevTools, written_report: Path,
                                             tmp_path: Path):
    open_offline(browser, written_report)
    images = browser.evaluate(IMAGES)
    assert len(images) >= 5
    for alt, width, height in images:
        assert width > 0 and isinstance(height, int) and height > 0, (alt, width, height)
    links = browser.evaluate(LINKS)
    hrefs = {href for href, _ in links}
    for section in ("summary", "config", "coverage", "metrics", "charts", "trades",
                    "validation", "manifest"):
        assert f"#{section}" in hrefs
    assert [href for href, ok in links if not ok] == []
    assert browser.evaluate("document.querySelector('#validation .verdict').textContent"
                            ).strip() == "Verdict: WARN"
    for href in browser.evaluate(FILE_LINKS):
        assert (written_report.parent / href).exists(), href
    assert problems(browser) == []
    shot = screenshot(browser, tmp_path / "browser_report.png")
    assert shot.stat().st_size > 10_000


def test_index_links_resolve_offline(browser: DevTools, written_report: Path, tmp_path: Path):
    index = written_report.parents[2] / "index.html"
    open_offline(browser, index)
    hrefs = browser.evaluate(FILE_LINKS)
    assert hrefs == [f"html/{written_report.parent.name}/report.html"]
    assert all((index.parent / h).exists() for h in hrefs)
    assert problems(browser) == []
    screenshot(browser, tmp_path / "browser_index.png")


def test_the_checks_catch_a_broken_page(browser: DevTools, tmp_path: Path):
    """The same checks fail on a page with a network image, a console error and a dead link."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><a href="#nowhere">x</a>'
                    '<img alt="remote" src="https://example.invalid/x.png">'
                    '<img alt="corrupt" src="data:image/png;base64,iVBORw0KGgo=">'
                    '<script>console.error("boom")</script></body></html>', encoding="utf-8")
    open_offline(browser, page)
    images = browser.evaluate(IMAGES)
    assert [(alt, width) for alt, width, _ in images] == [("remote", -1), ("corrupt", -1)]
    assert browser.evaluate(LINKS) == [["#nowhere", False]]
    found = problems(browser)
    assert any(p.startswith("console error") for p in found)
    assert any("example.invalid" in p for p in found)
