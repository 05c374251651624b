"""Memory and time at scale: ``synth``, ``footprint`` and ``backtest`` from the store.

Per size N (trades; ``BOTCLAVE_SCALE_TRADES``, default ``10M,30M,100M``; 100M takes many minutes
and several GB of disk in a temporary folder): the synthetic market of ``ceil(N / prints per
day)`` UTC days at ``BOTCLAVE_SCALE_PER_DAY`` background orders a day (default 3,300,000: about
3.45M prints, so 100M is a month of 30 days) is written by ``botclave synth``; then ``botclave
footprint`` (1m bars, 10-tick rows) and ``botclave backtest --no-book`` (the default order-flow
strategy) read it from the store. Each command runs as the CLI in a fresh interpreter; its wall
time, trades/s and peak RSS (VmHWM of that process: interpreter, polars and numba included) are
printed per size, so that growth with N is visible. Goal: peak RSS < 2 GiB each and time linear
in the trades.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

from benchmarks.procs import run_cli
from benchmarks.run import Result

AREA = "scale"
PRINTS_PER_ORDER = 1.04  # prints per background order (measured: 94.2M from 90M orders)


def _sizes() -> list[int]:
    raw = os.environ.get("BOTCLAVE_SCALE_TRADES", "10M,30M,100M")
    out = []
    for item in raw.split(","):
        item = item.strip().upper()
        scale = {"K": 1e3, "M": 1e6}.get(item[-1:], 1.0)
        out.append(int(float(item.rstrip("KM")) * scale))
    return out


def run() -> list[Result]:
    per_day = int(os.environ.get("BOTCLAVE_SCALE_PER_DAY", "3300000"))
    out: list[Result] = []
    for n in _sizes():
        days = max(1, math.ceil(n / (per_day * PRINTS_PER_ORDER)))
        root = Path(tempfile.mkdtemp(prefix="botclave-scale-"))
        try:
            out.extend(_one_size(root, days, per_day))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return out


def _one_size(root: Path, days: int, per_day: int) -> list[Result]:
    data = ["--data-dir", str(root), "--json"]
    synth, secs, peak = run_cli(["synth", "--days", str(days), "--trades-per-day",
                                 str(per_day), *data])
    n = int(synth["rows"]["trades"])
    label = f"{n / 1e6:.1f}M trades ({days} days)"
    rows = [_result("synth", label, n, secs, peak, f"{synth['rows']['book_diff']:,} diff rows")]
    common = ["--exchange", "synth", "--symbol", "BTC/USDT", *data]
    _, secs, peak = run_cli(["footprint", "--bar", "1m", "--row-size", "10", *common])
    rows.append(_result("footprint", label, n, secs, peak, "store -> footprint datasets"))
    bt, secs, peak = run_cli(["backtest", "--no-book", "--out-dir", str(root / "reports"),
                              *common])
    rows.append(_result("backtest", label, n, secs, peak,
                        f"default strategy, {bt.get('metrics', {}).get('trades', '?')} trades"))
    return rows


def _result(command: str, label: str, n: int, secs: float, peak: float, note: str) -> Result:
    status = "ok" if peak < 2048 else "over 2 GiB"
    return Result(AREA, f"botclave {command}, {label}", n / secs / 1e6, "M trades/s",
                  note=f"{secs:.1f} s, peak RSS {peak:,.0f} MiB ({status}); {note}")
