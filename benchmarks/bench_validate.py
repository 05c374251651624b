"""Validation speed: --jobs 1, 2 workers and auto at demo scale and on a big run; Monte Carlo.

Big run: walk-forward 6 folds x 50 parameter sets; the evaluator is a moving-average cross over
one year of synthetic 1-minute bars (generated once per worker process from a seed, so tasks
stay small to ship). Wall times include starting the worker pool; the results of the runs are
compared for equality.

Demo scale: ``botclave validate all`` as a user runs it (a fresh CLI process each, the shipped
configs) on one synthetic day, with ``--jobs 1``, ``--jobs 2`` and ``--jobs auto``; and the
start-up of a pool measured the way ``executor.POOL_START_S`` is defined.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.run import Result
from botclave_cli.validate.config import ValidationConfig
from botclave_cli.validate.evaluation import (
    EvaluationResult,
    Task,
    Timeline,
    evaluation_metrics,
    run_task,
)
from botclave_cli.validate.executor import (
    POOL_START_S,
    AutoExecutor,
    ProcessExecutor,
    SerialExecutor,
)
from botclave_cli.validate.montecarlo import monte_carlo
from botclave_cli.validate.param_space import build_space
from botclave_cli.validate.validator import StrategyValidator

ROOT = Path(__file__).resolve().parents[1]  # the CLI runs find configs/ here
BAR_US = 60_000_000
START_US = 1_704_067_200_000_000  # 2024-01-01
N_BARS = 365 * 1440


@functools.lru_cache(maxsize=2)
def _closes(seed: int, n_bars: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 40_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, n_bars)))


@dataclass(frozen=True)
class SmaCrossEvaluator:
    """Long when the fast mean is above the slow mean (decided on the previous bar's close)."""

    seed: int = 1
    n_bars: int = N_BARS
    cost: float = 0.0005

    def __call__(self, params: dict, start_us: int, end_us: int) -> EvaluationResult:
        fast, slow = int(params["fast"]), int(params["slow"])
        a, b = (start_us - START_US) // BAR_US, (end_us - START_US) // BAR_US
        close = _closes(self.seed, self.n_bars)[:b]  # nothing at or after the window's end
        csum = np.concatenate([[0.0], np.cumsum(close)])
        i = np.arange(b)
        fast_ma = (csum[i + 1] - csum[np.maximum(i + 1 - fast, 0)]) / fast
        slow_ma = (csum[i + 1] - csum[np.maximum(i + 1 - slow, 0)]) / slow
        signal = ((fast_ma > slow_ma) & (i + 1 >= slow)).astype(np.float64)
        pos = np.concatenate([[0.0], signal[:-1]])[a:b]  # decided on the previous close
        bar_ret = np.concatenate([[0.0], np.diff(close) / close[:-1]])[a:b]
        prev = np.concatenate([[0.0], pos[:-1]])  # every window starts flat
        rets = pos * bar_ret - self.cost * np.abs(pos - prev)
        starts = np.flatnonzero((pos > 0) & (prev == 0))
        ends = np.flatnonzero((pos > 0) & (np.concatenate([pos[1:], [0.0]]) == 0))
        growth = np.concatenate([[0.0], np.cumsum(np.log1p(rets))])
        trades = np.expm1(growth[ends + 1] - growth[starts])
        return EvaluationResult(rets, trades, evaluation_metrics(rets, trades, 525_600.0))


def _config() -> ValidationConfig:
    return ValidationConfig.model_validate({
        "parameters": {"fast": [5, 10, 20, 40, 80], "slow": [60, 120, 240, 480, 720, 960, 1440,
                                                           2000, 2880, 4320]},
        "search": {"max_sets": 50},
        "walk_forward": {"folds": 6, "gap_bars": 60},
    })


def _walk_forward(executor) -> tuple[float, list]:
    cfg = _config()
    tl = Timeline(START_US, START_US + N_BARS * BAR_US, BAR_US)
    started = time.perf_counter()
    res = StrategyValidator(SmaCrossEvaluator(), tl, cfg, build_space(cfg), executor).run(
        "walk-forward")
    return time.perf_counter() - started, res.tables["walk_forward_folds"].to_dicts()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_walk_forward() -> list[Result]:
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    cpu0 = time.process_time()
    serial_s, serial_rows = _walk_forward(SerialExecutor())
    serial_cpu = time.process_time() - cpu0
    children0, cpu0 = _children_cpu(), time.process_time()
    with ProcessExecutor(cores) as pool:
        cold_s, cold_rows = _walk_forward(pool)  # spawns the workers, imports, first data
        warm_s, warm_rows = _walk_forward(pool)
    pool_cpu = _children_cpu() - children0 + time.process_time() - cpu0  # both runs
    with AutoExecutor() as auto:
        auto_s, auto_rows = _walk_forward(auto)
        chose = auto.report()
    same = "identical" if serial_rows == cold_rows == warm_rows == auto_rows else "DIFFERENT"
    evals = 6 * 50 + 6
    return [
        Result("validate", "walk-forward 6 folds x 50 sets, 1 worker", serial_s, "s",
               note=f"{evals} evaluations over {N_BARS:,} 1m bars; load avg {load:.1f} on "
                    f"{cores} cores before the run"),
        Result("validate", f"walk-forward 6 folds x 50 sets, {cores} workers (cold)", cold_s,
               "s", note=f"fresh pool: spawn, imports, data per worker; results {same}"),
        Result("validate", f"walk-forward 6 folds x 50 sets, {cores} workers (warm)", warm_s,
               "s", note="the same pool again"),
        Result("validate", f"walk-forward speed-up on {cores} cores (warm)", serial_s / warm_s,
               "x", note=f"goal >= 1.7 on 2 cores; cold {serial_s / cold_s:.2f}x"),
        Result("validate", "walk-forward 6 folds x 50 sets, --jobs auto", auto_s, "s",
               note=f"fresh: used {chose['used']} of {chose['cores']} cores ({chose['reason']})"
                    f"; {serial_s / auto_s:.2f}x serial; results {same}"),
        Result("validate", "CPU time of the pool runs / serial CPU time",
               pool_cpu / (2 * serial_cpu), "x",
               note=f"serial {serial_cpu:.1f} CPU s; pool (workers + parent, per run) "
                    f"{pool_cpu / 2:.1f} CPU s: the overhead, independent of machine load"),
    ]


def _botclave() -> list[str]:
    script = Path(sys.executable).parent / "botclave"
    return [str(script)] if script.exists() else [sys.executable, "-m", "botclave_cli"]


def _cli(args: list[str], data_dir: Path) -> tuple[float, dict]:
    """Wall seconds of one CLI run in a fresh process, and its --json output."""
    started = time.perf_counter()
    done = subprocess.run([*_botclave(), *args, "--data-dir", str(data_dir), "--json"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: a fail verdict, still a complete run
        raise RuntimeError(f"botclave {' '.join(args)}: exit {done.returncode}: {done.stderr}")
    return wall, json.loads(done.stdout)


def _pool_start(data_dir: Path, workers: int) -> tuple[float, float]:
    """(seconds from starting a pool of ``workers`` until each has returned its first backtest
    evaluation of 8 hours of the synthetic day, less one warm evaluation here; that warm
    evaluation): how ``executor.POOL_START_S`` is defined."""
    from botclave_cli.config import ExchangeConfig
    from botclave_cli.data.store import Store, find_trades
    from botclave_cli.strategy.params import StrategyParams
    from botclave_cli.validate.backtest_evaluator import backtest_validator
    from botclave_cli.validate.config import ValidationConfig

    store = Store(data_dir)
    day = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    v = backtest_validator(store, find_trades(store, "synth", "spot", "BTC/USDT"), day,
                           day + dt.timedelta(days=1), StrategyParams(), ExchangeConfig(),
                           ValidationConfig())
    start = v.timeline.start_us
    task = Task(v.evaluator, {}, start, start + 8 * 3600 * 1_000_000, False)
    run_task(task)  # this process's warm-up
    warm = min(_timed(run_task, task) for _ in range(3))
    started = time.perf_counter()
    with ProcessExecutor(workers) as pool:
        pool.map(run_task, [task] * workers)
        return time.perf_counter() - started - warm, warm


def _timed(fn, arg) -> float:
    started = time.perf_counter()
    fn(arg)
    return time.perf_counter() - started


def run_demo_scale() -> list[Result]:
    cores = os.cpu_count() or 1
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        data = Path(tmp) / "data"
        subprocess.run([*_botclave(), "synth", "--symbol", "BTC/USDT", "--from", "2024-01-01",
                        "--days", "1", "--seed", "7", "--data-dir", str(data), "--quiet"],
                       check=True, capture_output=True, timeout=600, cwd=ROOT)
        start_s, warm = _pool_start(data, min(2, cores))
        out.append(Result("validate", f"pool start-up, {min(2, cores)} workers", start_s, "s",
                          note=f"to a first backtest evaluation in each worker, less a warm one "
                               f"({warm * 1000:.0f} ms); executor.POOL_START_S = "
                               f"{POOL_START_S:g} s"))
        runs: dict[str, tuple[float, dict]] = {}
        for order in (("1", "2", "auto"), ("auto", "2", "1")):  # best of two, interleaved:
            for jobs in order:                                   # the machine's load drifts
                wall, result = _cli(["validate", "all", "--exchange", "synth", "--symbol",
                                     "BTC/USDT", "--from", "2024-01-01", "--to", "2024-01-02",
                                     "--jobs", jobs, "--out-dir",
                                     str(Path(tmp) / f"reports-{jobs}")], data)
                if jobs not in runs or wall < runs[jobs][0]:
                    runs[jobs] = (wall, result)
        files = [sorted((p.name, p.read_bytes()) for p in Path(o["folder"]).iterdir())
                 for _, o in runs.values()]
        same = "identical" if files[0] == files[1] == files[2] else "DIFFERENT"
        serial_s = runs["1"][0]
        for jobs, (wall, result) in runs.items():
            chose = result["jobs"]
            why = f"; auto: {chose['reason']}" if jobs == "auto" else ""
            out.append(Result(
                "validate", f"validate all, one synthetic day, --jobs {jobs}", wall, "s",
                note=f"fresh CLI process, shipped configs, best of 2; used {chose['used']} "
                     f"worker(s), "
                     f"{serial_s / wall:.2f}x --jobs 1; results {same}{why}"))
    return out


def run_monte_carlo() -> list[Result]:
    out = []
    trades = np.random.default_rng(0).normal(0.001, 0.02, 500)
    bars = np.random.default_rng(1).normal(0.0, 0.001, 20_000)
    for method, data, runs in (("reshuffle", trades, 20_000), ("bootstrap", bars, 2_000)):
        started = time.perf_counter()
        monte_carlo(data, method, runs=runs, seed=7, block_bars=60)  # type: ignore[arg-type]
        rate = runs / (time.perf_counter() - started)
        out.append(Result("validate", f"Monte Carlo {method}, 1 worker", rate, "runs/s",
                          note=f"{data.size:,} {'trades' if method == 'reshuffle' else 'bars'}"
                               " per run"))
    return out


def run() -> list[Result]:
    return run_demo_scale() + run_walk_forward() + run_monte_carlo()
