"""Dashboard benchmark, measured in the browser: ``botclave dashboard`` over one synthetic day
(~450k trades -> 1,440 one-minute bars) opened in headless Debian Chromium.

Figures: first paint of the Order Flow tab (navigation until its two plotly charts are drawn)
with a cold server (the footprint is built for the first visitor) and a warm one (a new
session: the server's cache holds the day), and a tab switch (Order Flow -> Strategy and back,
until the tab's charts are drawn and the app is idle). Targets from the issue: first paint
<= 2 s, tab switch <= 1 s. No peer: nothing else serves this store interactively; the static
HTML report is a file, not a page that computes.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.run import Result

AREA = "dashboard"
NO_PEER = "no peer (no other interactive view of this store); target from the issue: "


def _world(root: Path) -> tuple[Path, Path]:
    """One synthetic day, and one backtest run (its first six hours) for the Strategy tab."""
    from botclave_cli.backtest.backtester import Backtester
    from botclave_cli.backtest.results import write_results
    from botclave_cli.config import load_exchange_config
    from botclave_cli.data.store import DatasetRef, Store
    from botclave_cli.data.synth import SynthConfig, write_synth
    from botclave_cli.strategy.params import StrategyParams

    store = Store(root / "ds")
    write_synth(store, SynthConfig(start=dt.date(2024, 1, 1), days=1))
    ref = DatasetRef("synth", "spot", "BTC/USDT", "trades")
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    trades = store.scan(ref, start, start + dt.timedelta(hours=6)).select(
        "ts", "price", "qty", "side").collect()
    tester = Backtester(StrategyParams(), load_exchange_config(None), symbol="BTC/USDT",
                        tick_size=1.0, lot_size=store.manifest(ref).lot_size)
    write_results(tester.run(trades), root / "reports", extra={"dataset": str(ref)})
    return root / "ds", root / "reports" / "runs"


def run() -> list[Result]:
    from tests.dashboard_browser import (
        PLOTS,
        browser,
        chromium,
        click_tab,
        dashboard,
        open_page,
        tab_ready,
        wait_for,
    )

    binary = chromium()
    if binary is None:
        raise RuntimeError("needs Debian's chromium (apt-get install -y chromium)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    try:
        data, runs = _world(tmp)
        with dashboard(data, runs, tmp / "server.log") as url, \
                browser(tmp / "profile", binary) as tools:
            figures = {}
            for label in ("cold", "warm"):
                tools.call("Page.navigate", url="about:blank")
                started = time.perf_counter()
                open_page(tools, url)
                wait_for(tools, PLOTS, lambda n: n >= 2, timeout=300)
                figures[label] = time.perf_counter() - started
            switches = []
            for _ in range(3):
                for label, plots in (("Strategy", 2), ("Order Flow", 2)):
                    started = time.perf_counter()
                    click_tab(tools, label)
                    tab_ready(tools, label, plots)
                    switches.append((label, time.perf_counter() - started))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    to_strategy = sorted(s for label, s in switches if label == "Strategy")
    back = sorted(s for label, s in switches if label == "Order Flow")
    return [
        Result(AREA, "Order Flow first paint, 1 day of 1m bars, cold server", figures["cold"],
               "s", note=NO_PEER + "<= 2 s; includes building the footprint"),
        Result(AREA, "Order Flow first paint, 1 day of 1m bars, warm server", figures["warm"],
               "s", note=NO_PEER + "<= 2 s"),
        Result(AREA, "tab switch Order Flow -> Strategy (median of 3)",
               to_strategy[len(to_strategy) // 2], "s", note=NO_PEER + "<= 1 s"),
        Result(AREA, "tab switch Strategy -> Order Flow (median of 3)", back[len(back) // 2],
               "s", note=NO_PEER + "<= 1 s"),
    ]
