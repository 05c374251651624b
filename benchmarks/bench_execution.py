"""The execution core fed as backtest, paper and live feed it: the whole stream at once, chunks
of 1,000 trades (signals just in time), one trade per call (the live case: latency of each
call), and the first backtest of a fresh process (numba cache load).

Same 10M synthetic trades and default strategy as bench_backtest; the signals come from one
backtest run, so every way of feeding does the same work and gives the same bytes.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

from benchmarks.bench_backtest import synthetic_trades
from benchmarks.run import Result
from botclave_cli.backtest.backtester import Backtester
from botclave_cli.config import ExchangeConfig
from botclave_cli.execution.replay import replay
from botclave_cli.strategy.params import StrategyParams

AREA = "execution"
N_TRADES = 10_000_000
N_SINGLE = 200_000
FIRST_CALL = """
import time
started = time.perf_counter()
from benchmarks.bench_backtest import synthetic_trades
from botclave_cli.backtest.backtester import Backtester
from botclave_cli.config import ExchangeConfig
from botclave_cli.strategy.params import StrategyParams
trades = synthetic_trades(100_000)
ready = time.perf_counter()
Backtester(StrategyParams(), ExchangeConfig(), tick_size=0.01, lot_size=1e-5).run(trades)
print(time.perf_counter() - ready)
"""


def _setup():
    trades = synthetic_trades(N_TRADES)
    tester = Backtester(StrategyParams(), ExchangeConfig(), tick_size=0.01, lot_size=1e-5)
    res = tester.run(trades)
    inputs = tester.core_inputs(res.signals, None, False)
    ts = trades["ts"].dt.epoch("us").to_numpy()
    px = np.rint(trades["price"].to_numpy() / 0.01).astype(np.int64)
    qty = np.rint(trades["qty"].to_numpy() / 1e-5).astype(np.int64)
    return tester, inputs, ts, px, qty, res


def _timed_replay(tester, inputs, ts, px, qty, chunk: int) -> tuple[float, object]:
    core = tester.new_core(inputs)
    started = time.perf_counter()
    replay(core, inputs, ts, px, qty, range(chunk, len(ts), chunk))
    return time.perf_counter() - started, core


def _single_latencies(tester, inputs, ts, px, qty) -> np.ndarray:
    """Per-call wall time (us) of ``N_SINGLE`` trades fed one at a time, signals just in time."""
    core = tester.new_core(inputs)
    core.submit(inputs.signals)  # all arrive after the clock: fed up front, matched in time
    out = np.empty(N_SINGLE, np.float64)
    clock = time.perf_counter_ns
    for i in range(N_SINGLE):
        t0 = clock()
        core.trades_ticks(ts[i:i + 1], px[i:i + 1], qty[i:i + 1])
        out[i] = (clock() - t0) / 1e3
    return out


def run() -> list[Result]:
    tester, inputs, ts, px, qty, res = _setup()
    n = len(ts)
    whole = min(_timed_replay(tester, inputs, ts, px, qty, n)[0] for _ in range(2))
    chunked, core = _timed_replay(tester, inputs, ts, px, qty, 1_000)
    same = core.outputs()["fills_i"].shape[0] == res.fills.height
    lat = _single_latencies(tester, inputs, ts, px, qty)
    first = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True,
                           check=True)
    return [
        Result(AREA, f"core fed whole, {n / 1e6:.0f}M trades (fills only)", n / whole / 1e6,
               "M trades/s", note=f"{res.fills.height} fills, best of 2"),
        Result(AREA, "core fed in chunks of 1,000 trades", n / chunked / 1e6, "M trades/s",
               note=f"{n // 1000:,} calls, signals just in time; same fills: {same}"),
        Result(AREA, "one trade per call (live), median", float(np.median(lat)), "us",
               note=f"{N_SINGLE:,} calls; goal <= 20 us"),
        Result(AREA, "one trade per call (live), p99", float(np.percentile(lat, 99)), "us",
               note="goal <= 200 us"),
        Result(AREA, "first backtest in a fresh process (100k trades)",
               float(first.stdout.strip().splitlines()[-1]), "s",
               note="numba cache loaded from disk; goal <= 2 s"),
    ]
