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
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar

from botclave_cli.errors import BotclaveError, UsageError

T = TypeVar("T")
R = TypeVar("R")

WORKER_ENV = {"POLARS_MAX_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
_ENV_LOCK = threading.Lock()


class Executor(Protocol):
    """Runs ``fn`` over ``items`` and returns the results in item order."""

    jobs: int

    def map(self, fn: Callable[[T], R], items: Sequence[T],
            on_result: Callable[[], None] | None = None) -> list[R]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Everything in this process, one task after the other (``--jobs 1``)."""

    jobs = 1

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
        self._pool: ProcessPoolExecutor | None = None

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


def make_executor(jobs: int | None) -> SerialExecutor | ProcessExecutor:
    """``--jobs``: 1 runs serially, N > 1 uses N processes, 0 or None uses every core."""
    if jobs is not None and jobs < 0:
        raise UsageError(f"--jobs {jobs}: expected 0 (all cores) or a positive number")
    resolved = jobs if jobs else (os.cpu_count() or 1)
    return SerialExecutor() if resolved == 1 else ProcessExecutor(resolved)
