"""Cluster executor: walk-forward 6 folds x 200 parameter sets over a year of 1-minute bars,
serially, on a 2-process pool and on a local Dask cluster (a ``dask scheduler`` and two
``dask worker`` processes started here), the per-task overhead of each executor, and a scaling
projection for N nodes computed from the measured figures.

The year of bars is one Parquet file (525,600 closes); a task carries its path and reads it
once per worker process, as the validation's evaluator reads the store. The results of the
three runs are compared for equality (printed in the note). Other engineers share this
machine's two cores: the load average is printed beside the figures.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.run import Result
from botclave_cli.validate.cluster import CHUNKS_PER_THREAD, DaskExecutor
from botclave_cli.validate.config import ValidationConfig
from botclave_cli.validate.evaluation import EvaluationResult, Timeline, evaluation_metrics
from botclave_cli.validate.executor import ProcessExecutor, SerialExecutor
from botclave_cli.validate.param_space import build_space
from botclave_cli.validate.validator import StrategyValidator

ROOT = Path(__file__).resolve().parents[1]
BAR_US = 60_000_000
START_US = 1_704_067_200_000_000  # 2024-01-01
N_BARS = 365 * 1440
SETS = 200
FOLDS = 6
NOOP_TASKS = 400
#: the projection's assumptions where this machine cannot measure them
NODE_WORKERS = 2  # worker processes per node (this machine's cores)
NETWORK_MB_S = 125.0  # 1 Gbit/s between a node and the shared store


@functools.lru_cache(maxsize=2)
def _closes(path: str) -> np.ndarray:
    return pl.read_parquet(path)["close"].to_numpy()


@dataclass(frozen=True)
class ParquetSmaEvaluator:
    """Long when the fast mean is above the slow mean (decided on the previous close), on the
    closes of a Parquet file read once per process."""

    path: str
    cost: float = 0.0005

    def __call__(self, params: dict, start_us: int, end_us: int) -> EvaluationResult:
        fast, slow = int(params["fast"]), int(params["slow"])
        a, b = (start_us - START_US) // BAR_US, (end_us - START_US) // BAR_US
        a0 = max(a - slow - 1, 0)  # the warm-up the means need, nothing at or after b
        close = _closes(self.path)[a0:b]
        csum = np.concatenate([[0.0], np.cumsum(close)])
        i = np.arange(b - a0)
        fast_ma = (csum[i + 1] - csum[np.maximum(i + 1 - fast, 0)]) / fast
        slow_ma = (csum[i + 1] - csum[np.maximum(i + 1 - slow, 0)]) / slow
        signal = ((fast_ma > slow_ma) & (a0 + i + 1 >= slow)).astype(np.float64)
        pos = np.concatenate([[0.0], signal[:-1]])[a - a0:]
        bar_ret = np.concatenate([[0.0], np.diff(close) / close[:-1]])[a - a0:]
        prev = np.concatenate([[0.0], pos[:-1]])
        rets = pos * bar_ret - self.cost * np.abs(pos - prev)
        starts = np.flatnonzero((pos > 0) & (prev == 0))
        ends = np.flatnonzero((pos > 0) & (np.concatenate([pos[1:], [0.0]]) == 0))
        growth = np.concatenate([[0.0], np.cumsum(np.log1p(rets))])
        trades = np.expm1(growth[ends + 1] - growth[starts])
        return EvaluationResult(rets, trades, evaluation_metrics(rets, trades, 525_600.0))


def _config() -> ValidationConfig:
    fast = [3, 5, 8, 10, 15, 20, 30, 40, 60, 80]
    slow = [60 * k for k in range(1, 21)]
    return ValidationConfig.model_validate({
        "parameters": {"fast": fast, "slow": slow}, "search": {"max_sets": SETS},
        "walk_forward": {"folds": FOLDS, "gap_bars": 60}})


def _walk_forward(path: str, executor) -> tuple[float, list]:
    cfg = _config()
    tl = Timeline(START_US, START_US + N_BARS * BAR_US, BAR_US)
    started = time.perf_counter()
    res = StrategyValidator(ParquetSmaEvaluator(path), tl, cfg, build_space(cfg),
                            executor).run("walk-forward")
    return time.perf_counter() - started, res.tables["walk_forward_folds"].to_dicts()


def _noop(x: int) -> int:
    return x


def _overhead(executor) -> float:
    """Seconds per task of a map of no-op tasks (shipping, scheduling, collecting)."""
    executor.map(_noop, list(range(8)))  # warm
    started = time.perf_counter()
    executor.map(_noop, list(range(NOOP_TASKS)))
    return (time.perf_counter() - started) / NOOP_TASKS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_cluster(folder: Path, workers: int) -> tuple[str, list[subprocess.Popen]]:
    import distributed

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "POLARS_MAX_THREADS": "1", "NUMBA_NUM_THREADS": "1",
           # Dask's sampling profiler walks the stacks every 10 ms: ~40 % slower evaluations
           "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    log = open(folder / "cluster.log", "ab")  # noqa: SIM115 - the processes keep it
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host",
                               "127.0.0.1", "--port", str(port), "--no-dashboard", "--no-show"],
                              cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)]
    procs += [subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nthreads",
                                "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"],
                               cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
              for _ in range(workers)]
    try:
        with distributed.Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=60)
    except BaseException:
        _stop([*procs[1:], procs[0]])
        raise
    return address, procs


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def projection(task_s: float, tasks: int, overhead_s: float, start_s: float,
               data_mb: float, nodes: int, workers: int = NODE_WORKERS,
               chunks_per_thread: int | None = None) -> float:
    """Projected wall seconds on ``nodes`` nodes of ``workers`` processes: the cluster's start,
    each node reading the data once (in parallel, at NETWORK_MB_S), the evaluations spread over
    every worker, and the scheduler's ``overhead_s`` per task, which one scheduler pays for all
    of them; with ``chunks_per_thread`` the evaluations travel as that many tasks per worker
    (DaskExecutor's chunking), at most one per evaluation."""
    rounds = -(-tasks // (nodes * workers))
    sent = tasks if not chunks_per_thread else min(tasks, nodes * workers * chunks_per_thread)
    return start_s + data_mb / NETWORK_MB_S + rounds * task_s + sent * overhead_s


def run() -> list[Result]:
    try:
        import distributed  # noqa: F401 - the cluster extra
    except ImportError as exc:
        return [Result("cluster", "skipped", 0, "", note=f"cluster extra absent: {exc}")]
    load = os.getloadavg()[0]
    out: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(1)
        closes = 40_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, N_BARS)))
        path = str(Path(tmp) / "closes.parquet")
        pl.DataFrame({"close": closes}).write_parquet(path)
        data_mb = Path(path).stat().st_size / 1e6
        print(f"  {FOLDS * SETS + FOLDS} tasks; data {Path(path).stat().st_size / 1e6:.1f} MB")
        serial_s, ref = _walk_forward(path, SerialExecutor())
        print(f"  serial {serial_s:.1f} s")
        tasks = FOLDS * SETS + FOLDS
        task_s = serial_s / tasks
        with ProcessExecutor(2) as pool:
            pool_s, pool_rows = _walk_forward(path, pool)  # includes the pool's start
            pool_over = _overhead(pool)
        started = time.perf_counter()
        address, procs = _start_cluster(Path(tmp), 2)
        cluster_start_s = time.perf_counter() - started
        try:
            with DaskExecutor(address) as dask:
                dask_s, dask_rows = _walk_forward(path, dask)
                dask_over = _overhead(dask)  # per item, chunked as a run is
            with DaskExecutor(address, chunks_per_thread=None) as one_each:
                task_over = _overhead(one_each)  # per scheduler task: what N nodes pay
        finally:
            _stop([*procs[1:], procs[0]])  # workers first: each says goodbye to the scheduler
    same = "identical to serial" if pool_rows == ref and dask_rows == ref else "DIFFERENT"
    what = f"walk-forward {FOLDS} folds x {SETS} sets, 1y of 1m bars"
    note = f"load {load:.1f} on 2 shared cores"
    out += [
        Result("cluster", f"{what}, serial", serial_s, "s", note=note),
        Result("cluster", f"{what}, 2 processes (with pool start)", pool_s, "s", "serial",
               serial_s, note=f"results {same}"),
        Result("cluster", f"{what}, Dask 2 workers", dask_s, "s", "serial", serial_s,
               note=f"results {same}; cluster start {cluster_start_s:.1f} s not included"),
        Result("cluster", "evaluation task, serial", task_s * 1e3, "ms/task",
               note=f"{tasks} tasks"),
        Result("cluster", "per-task overhead, process pool", pool_over * 1e3, "ms/task",
               note=f"{NOOP_TASKS} no-op tasks"),
        Result("cluster", "per-item overhead, Dask (chunked)", dask_over * 1e3, "ms/item",
               "process pool", pool_over * 1e3, note=f"{NOOP_TASKS} no-op items, 2 workers, "
               f"{CHUNKS_PER_THREAD} tasks per thread"),
        Result("cluster", "per-task overhead, Dask (a task per item)", task_over * 1e3,
               "ms/task", "process pool", pool_over * 1e3, note=f"{NOOP_TASKS} no-op tasks"),
        Result("cluster", "local cluster start (scheduler + 2 workers)", cluster_start_s, "s"),
        Result("cluster", "data per node (Parquet, read once per worker)", data_mb, "MB"),
    ]
    for nodes in (1, 2, 4, 8, 16, 32, 64):
        est = projection(task_s, tasks, task_over, cluster_start_s, data_mb, nodes,
                         chunks_per_thread=CHUNKS_PER_THREAD)
        out.append(Result("cluster", f"projection: {nodes} node(s) x {NODE_WORKERS} workers",
                          est, "s", "serial", serial_s,
                          note=f"a core per worker, {NETWORK_MB_S:g} MB/s to the store "
                               "assumed"))
    _print_projection(task_s, tasks, task_over, cluster_start_s, data_mb)
    return out


def _print_projection(task_s: float, tasks: int, overhead_s: float, start_s: float,
                      data_mb: float) -> None:
    print(f"  scaling projection: {tasks} evaluations x {task_s * 1e3:.2f} ms, Dask overhead "
          f"{overhead_s * 1e3:.2f} ms per task, {CHUNKS_PER_THREAD} tasks per worker at most, "
          f"start {start_s:.1f} s, {data_mb:.1f} MB per node")
    print("  nodes  workers  projected s  speed-up vs serial  (speed-up if tasks were 10x heavier)")
    for nodes in (1, 2, 4, 8, 16, 32, 64):
        est = projection(task_s, tasks, overhead_s, start_s, data_mb, nodes,
                         chunks_per_thread=CHUNKS_PER_THREAD)
        heavy = projection(task_s * 10, tasks, overhead_s, start_s, data_mb, nodes,
                           chunks_per_thread=CHUNKS_PER_THREAD)
        base = projection(task_s * 10, tasks, 0.0, 0.0, 0.0, 1, 1)
        print(f"  {nodes:5d}  {nodes * NODE_WORKERS:7d}  {est:11.1f}  "
              f"{tasks * task_s / est:18.2f}  ({base / heavy:.1f}x)")
