"""Where validation work runs: an ``Executor`` maps a picklable function over a list of tasks.

The validator only calls ``executor.map(fn, items, on_result)`` (``on_result()`` after each
result, for progress) and gets the results back IN ITEM ORDER, so
a serial run and a parallel run of the same deterministic tasks give identical results. Another
engine (a cluster, a job queue) plugs in by implementing the same two methods.

``ProcessExecutor`` starts worker processes with the ``spawn`` method (a forked child of a
process that already runs Polars/numba thread pools can deadlock) and pins every worker to one
thread (``POLARS_MAX_THREADS=1``, ``NUMBA_NUM_THREADS=1``) so N workers use N cores, not N x N
threads. Spawned children inherit the environment at start, so the variables are set in this
process while the pool starts its workers and restored afterwards; the workers are started
before any task runs.

``AutoExecutor`` (``--jobs auto``, the CLI default) starts such a pool only when the work is
worth it: a spawned worker pays seconds of start-up (``POOL_START_S``) while one evaluation of
a day of trades takes a few hundredths of a second, so it times the first evaluations here and
starts a pool only when the estimated saving exceeds that start-up (``choose_workers``).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from botclave_cli.errors import BotclaveError, UsageError
from botclave_cli.logs import get_logger

T = TypeVar("T")
R = TypeVar("R")

WORKER_ENV = {"POLARS_MAX_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
_ENV_LOCK = threading.Lock()


class Executor(Protocol):
    """Runs ``fn`` over ``items`` and returns the results in item order.

    Optional: ``expect(tasks, weight)``, which the validator calls (when present) before each
    batch with the work that will follow it, for an executor that sizes itself to the run.
    """

    @property
    def jobs(self) -> int: ...  # worker processes in use

    def map(self, fn: Callable[[T], R], items: Sequence[T],
            on_result: Callable[[], None] | None = None) -> list[R]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Everything in this process, one task after the other (``--jobs 1``)."""

    jobs = 1
    requested: int | str = 1

    def report(self) -> dict[str, Any]:
        why = "serial" if self.requested == 1 else "every core (os.cpu_count()) is one: serial"
        return {"requested": self.requested, "used": 1, "reason": f"--jobs {self.requested}: {why}"}

    def map(self, fn: Callable[[T], R], items: Sequence[T],
            on_result: Callable[[], None] | None = None) -> list[R]:
        out = []
        for item in items:
            out.append(fn(item))
            if on_result is not None:
                on_result()
        return out

    def close(self) -> None:
        return None

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pin_worker() -> None:
    os.environ.update(WORKER_ENV)


def _noop(_: int) -> int:
    return os.getpid()


@contextlib.contextmanager
def _worker_env() -> Iterator[None]:
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in WORKER_ENV}
        os.environ.update(WORKER_ENV)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


class ProcessExecutor:
    """A pool of ``jobs`` worker processes, kept for the executor's lifetime (use ``with``)."""

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = jobs if jobs and jobs > 0 else (os.cpu_count() or 1)
        self.requested: int | str = jobs or 0
        self._pool: ProcessPoolExecutor | None = None

    def report(self) -> dict[str, Any]:
        how = "every core (os.cpu_count())" if self.requested == 0 else "as asked"
        return {"requested": self.requested, "used": self.jobs,
                "reason": f"--jobs {self.requested}: {self.jobs} worker processes, {how}"}

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            with _worker_env():
                pool = ProcessPoolExecutor(
                    max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_pin_worker,
                )
                # start every worker now, while the pinned environment is in place
                list(pool.map(_noop, range(self.jobs)))
            self._pool = pool
        return self._pool

    def map(self, fn: Callable[[T], R], items: Sequence[T],
            on_result: Callable[[], None] | None = None) -> list[R]:
        items = list(items)
        if not items:
            return []
        pool = self._ensure_pool()
        # small chunks: the last ones finish close together (tasks vary in length)
        chunk = max(1, math.ceil(len(items) / (self.jobs * 16)))
        try:
            with _worker_env():  # a replacement worker would also start pinned
                out = []
                for result in pool.map(fn, items, chunksize=chunk):
                    out.append(result)
                    if on_result is not None:
                        on_result()
                return out
        except BrokenProcessPool as exc:
            self.close()
            raise BotclaveError(f"a validation worker process died: {exc}") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ProcessExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


#: Wall seconds a fresh pool costs before it does useful work: from starting the workers until
#: each has returned its first evaluation, less one warm evaluation (interpreter start, imports,
#: numba's cached kernels, the trades read once per worker). Measured on the project's 2-core
#: machine with a real backtest evaluation of one synthetic day, by the "pool start-up" row of
#: ``benchmarks/bench_validate.py`` (2026-11-26): 1.2-2.8 s for 2 workers (median 2.4 s; 1
#: worker 1.2-2.6 s) while other work kept a load of about 2 on the machine, 2.4-5.0 s at a
#: load of about 4. A typical figure, not a worst case: near the threshold either choice costs
#: little, and an idle machine starts a pool faster (so auto errs towards serial there).
POOL_START_S = 2.5
#: evaluations timed serially before a batch is judged (one, if it alone outlasts POOL_START_S);
#: in the executor's first batch one more runs first, untimed for the estimate, because it also
#: pays this process's warm-up (numba's kernels, first imports), which the workers pay inside
#: POOL_START_S
TIMED_TASKS = 2

log = get_logger(__name__)


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity (``os.sched_getaffinity``, else
    ``os.cpu_count()``), lowered to a cgroup v2 CPU quota (``cpu.max``, e.g. ``docker --cpus``)
    where one is set."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, int(quota) // int(period))
    except (OSError, ValueError):
        pass
    return max(1, cores)


@dataclass(frozen=True)
class JobsChoice:
    workers: int
    reason: str
    serial_s: float = 0.0  # the estimated serial time of the work judged
    saving_s: float = 0.0  # the estimated saving of the pool weighed (before its start-up)


def choose_workers(task_s: float, tasks: int, cores: int,
                   pool_start_s: float = POOL_START_S) -> JobsChoice:
    """How many processes should run ``tasks`` more tasks of ``task_s`` seconds each.

    1 (serially, here) unless a pool of ``w <= cores`` workers saves more than it costs to
    start: ``tasks * task_s - ceil(tasks / w) * task_s > pool_start_s``; among the pools that
    do, the smallest with the shortest estimate (at most one worker per task).
    """
    serial = tasks * task_s
    what = f"est. serial {serial:.3g} s ({tasks} evaluations x {task_s:.3g} s)"
    if cores < 2:
        return JobsChoice(1, f"{what}; {cores} core available", serial)
    if tasks < 2:
        return JobsChoice(1, f"{what}; nothing to share", serial)
    best, best_s = 1, serial
    for w in range(2, min(cores, tasks) + 1):
        est = pool_start_s + math.ceil(tasks / w) * task_s
        if est < best_s:
            best, best_s = w, est
    w = best if best > 1 else min(cores, tasks)
    saving = serial - math.ceil(tasks / w) * task_s
    if best == 1:
        return JobsChoice(1, f"{what}: {w} workers would save {saving:.3g} s < pool start "
                             f"{pool_start_s:g} s", serial, saving)
    return JobsChoice(best, f"{what}: {best} workers save {saving:.3g} s > pool start "
                            f"{pool_start_s:g} s", serial, saving)


class AutoExecutor:
    """``--jobs auto``: serial until the measured cost of the work says a pool pays.

    Each batch (one ``map``) runs its tasks here and times them; after ``TIMED_TASKS`` timed
    tasks ``choose_workers`` weighs the rest of the batch, and the work announced to follow it
    (``expect``), at the measured time per unit of the items' ``weight`` (an evaluation's
    window length), against ``POOL_START_S``, and again after 2x, 4x, ... as many timed tasks
    while it says serial (the estimate sharpens as the tasks vary). When a pool pays,
    it starts (at most ``available_cores()`` workers) and takes the rest of this batch and every
    later batch of two or more tasks. The results are the same functions' results in item
    order whichever way a task ran, so the output is identical to ``--jobs 1`` and ``--jobs N``.
    """

    def __init__(self, cores: int | None = None, pool_start_s: float = POOL_START_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.cores = cores if cores is not None else available_cores()
        self.pool_start_s = pool_start_s
        self._clock = clock
        self._pool: ProcessExecutor | None = None
        self._warm = False  # this process has run a task (its one-time costs are paid)
        self._started: JobsChoice | None = None
        self._judged: list[JobsChoice] = []
        self._later = (0, 0.0)  # (tasks, weight) the caller will submit after the next batch

    def expect(self, tasks: int, weight: float) -> None:
        """Announce the work that will follow the next batch: ``tasks`` tasks of total
        ``weight`` (in the items' ``weight``; see ``_weight``). A judgement then weighs the rest
        of the batch and that work together: one pool start can pay over several batches
        that would not pay for it one by one."""
        self._later = (tasks, weight)

    @property
    def jobs(self) -> int:
        return self._pool.jobs if self._pool is not None else 1

    @staticmethod
    def _weight(item: Any) -> float:
        """An item's relative cost: its ``weight`` attribute (an evaluation task's window
        length), else 1."""
        return float(getattr(item, "weight", 1.0))

    def _judge(self, times: list[float], weights: list[float], left: list[Any]) -> JobsChoice:
        """Weigh the rest of the batch and the announced later work at the cost per weight of
        the timed tasks. Not the first task of this process: its one-time costs can exceed a
        task many times over (e.g. numba compiling after a code change)."""
        if not self._warm:
            times, weights = times[1:], weights[1:]
        per_weight = sum(times) / max(sum(weights), 1e-300)
        tasks = len(left) + self._later[0]
        rest_s = per_weight * (sum(self._weight(x) for x in left) + self._later[1])
        return choose_workers(rest_s / tasks, tasks, self.cores, self.pool_start_s)

    def map(self, fn: Callable[[T], R], items: Sequence[T],
            on_result: Callable[[], None] | None = None) -> list[R]:
        items = list(items)
        if self._pool is not None and len(items) > 1:
            return self._pool.map(fn, items, on_result)
        out: list[R] = []
        times: list[float] = []
        judge_at, judged = TIMED_TASKS, False
        skip = 0 if self._warm else 1  # the first task of this process is not timed
        for i, item in enumerate(items):  # with a pool up, only a batch of one gets here
            started = self._clock()
            out.append(fn(item))
            times.append(self._clock() - started)
            if on_result is not None:
                on_result()
            left, timed = len(items) - i - 1, times[skip:]
            # a first timed task that alone outlasts a pool start is judged at once
            if not left or not timed or (len(timed) < judge_at and (
                    judged or sum(timed) < self.pool_start_s)):
                continue
            judge_at, judged = 2 * max(judge_at, len(timed)), True
            choice = self._judge(times, [self._weight(x) for x in items[:i + 1]],
                                 items[i + 1:])
            self._judged.append(choice)
            log.info("jobs auto: %s", choice.reason, extra={"workers": choice.workers})
            if choice.workers > 1:
                self._started = choice
                self._pool = ProcessExecutor(choice.workers)
                out.extend(self._pool.map(fn, items[i + 1:], on_result))
                break
        self._warm = self._warm or bool(items)
        self._later = (0, 0.0)  # announced for one batch
        return out

    def report(self) -> dict[str, Any]:
        """What ``--jobs auto`` chose and why (for ``--json`` and the log)."""
        if self._started is not None:
            reason = self._started.reason
        elif self._judged:  # the closest call
            reason = max(self._judged, key=lambda c: c.saving_s).reason
        elif self.cores < 2:
            reason = f"{self.cores} core available"
        else:
            reason = "no batch was large enough to time and judge: serial"
        return {"requested": "auto", "used": self.jobs, "cores": self.cores, "reason": reason}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> AutoExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def parse_jobs(text: str) -> int | str:
    """``--jobs`` text: ``auto``, or an integer >= 0 (UsageError naming the option otherwise)."""
    value = text.strip().lower()
    if value == "auto":
        return "auto"
    try:
        jobs = int(value)
    except ValueError:
        jobs = -1
    if jobs < 0:
        raise UsageError(f"--jobs {text!r}: expected auto, 0 (all cores) or a positive number")
    return jobs


def make_executor(jobs: int | str | None) -> SerialExecutor | ProcessExecutor | AutoExecutor:
    """``--jobs``: ``auto`` decides from the measured cost (``AutoExecutor``); 1 runs serially,
    N > 1 uses N processes, 0 or None uses every core (``os.cpu_count()``)."""
    if isinstance(jobs, str):
        jobs = parse_jobs(jobs)
    if jobs == "auto" or isinstance(jobs, str):
        return AutoExecutor()
    if jobs is not None and jobs < 0:
        raise UsageError(f"--jobs {jobs}: expected auto, 0 (all cores) or a positive number")
    resolved = jobs if jobs else (os.cpu_count() or 1)
    executor = ProcessExecutor(resolved) if resolved > 1 else SerialExecutor()
    executor.requested = jobs or 0  # 0 (every core) is reported as asked
    return executor
