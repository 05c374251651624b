"""``botclave dashboard`` opened in headless Chromium (Debian's package; ``make test`` installs
it when missing and it can): every tab is visited, its plotly charts render, the console shows
no error and the page asks nothing of any other host; a screenshot of each tab is written
(also to ``$BOTCLAVE_TEST_ARTIFACTS`` when set)."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from tests.dashboard_browser import (
    browser,
    chromium,
    click_tab,
    dashboard,
    open_page,
    page_problems,
    tab_ready,
    wait_for,
)
from tests.dashboard_helpers import shared_world

pytestmark = pytest.mark.browser
pytest.importorskip("streamlit", reason="the dashboard extra is not installed (make venv does)")

#: tab -> plotly charts it must draw on the test's data (Configuration draws none: its form)
TABS = {"Order Flow": 2, "Strategy": 2, "Depth": 1, "Live": 1, "Configuration": 0}
#: the value of the metric labelled {label} in the open tab
METRIC = ("Array.from(document.querySelectorAll('[data-testid=stMetric]'))"
          ".filter(m => m.innerText.split('\\n')[0].trim() === '{label}')"
          ".map(m => m.querySelector('[data-testid=stMetricValue]').innerText.trim())[0]")


def screenshot(tools, target: Path) -> Path:
    shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
    target.write_bytes(base64.b64decode(shot["data"]))
    artifacts = os.environ.get("BOTCLAVE_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(target, Path(artifacts) / target.name)
    print(f"screenshot written: {target}")
    return target


def test_every_tab_renders_its_charts_without_console_errors(tmp_path_factory, tmp_path):
    binary = chromium()
    if binary is None:
        pytest.skip("headless Chromium not found: `make test` installs Debian's chromium "
                    "package with apt-get when run as root; otherwise apt-get install chromium")
    world = shared_world(tmp_path_factory)
    with dashboard(world["data"], world["runs"], tmp_path / "server.log") as url, \
            browser(tmp_path / "profile", binary) as tools:
        open_page(tools, url)
        wait_for(tools, "document.querySelectorAll('[role=tab]').length",
                 lambda n: n == len(TABS))
        for label, plots in TABS.items():
            click_tab(tools, label)
            tab_ready(tools, label, plots, idle=label != "Live")
            if label == "Configuration":
                wait_for(tools, "document.body.innerText.includes('parameters valid')", bool)
            shot = screenshot(tools, tmp_path / f"dashboard_{label.lower().replace(' ', '_')}"
                                                f".png")
            assert shot.stat().st_size > 10_000
        text = tools.evaluate("document.body.innerText")
        assert "Traceback" not in text
        follows_the_session(tools, world)
        assert page_problems(tools, url) == []


def follows_the_session(tools, world) -> None:
    """The Live tab shows a rewritten paper folder without a reload (the lag itself is
    measured in benchmarks/bench_dashboard.py)."""
    import polars as pl

    from tests.dashboard_helpers import write_paper

    write_paper(world["data"], world["runs"].parent, "paper-t1", hours=8)
    click_tab(tools, "Live")
    tab_ready(tools, "Live", 1, idle=False)
    tools.evaluate("window.__same_page = true")
    equity = METRIC.format(label="equity")
    before = pl.read_parquet(world["paper"] / "equity.parquet")["equity"][-1]
    wait_for(tools, equity, lambda v: v == f"{before:,.2f}")
    write_paper(world["data"], world["runs"].parent, "paper-t1", hours=16)
    after = pl.read_parquet(world["paper"] / "equity.parquet")["equity"][-1]
    assert f"{after:,.2f}" != f"{before:,.2f}"
    wait_for(tools, equity, lambda v: v == f"{after:,.2f}", timeout=60)
    assert tools.evaluate("window.__same_page === true")
