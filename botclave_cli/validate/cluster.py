"""The cluster executor: the same ``map`` as the local executors, on a Dask distributed cluster.

Why Dask distributed rather than Ray: it is pure Python (a few MB of wheels beside what we have,
against Ray's ~70 MB binary wheel with its own object store and dashboard), a scheduler plus a
worker start in about two seconds on a 2-core machine, and its two processes are plain
commands (``dask scheduler``, ``dask worker ADDRESS``) that tests start and stop themselves. It
gives what the validation needs and no more: tasks sent by reference to a pool of workers,
retried on another worker when the one running them dies, and results streamed back as they
complete.

``DaskExecutor.map(fn, items)`` submits the items in chunks, at most ``CHUNKS_PER_THREAD``
tasks per worker thread (``fn`` and the items are pickled; an item carries paths and
parameters, never the dataset: a worker reads its Parquet window itself from the store path
every node sees, once per process, see ``backtest_evaluator.TradeSource``), and returns the
results IN ITEM ORDER whatever the order of completion, so the files a run writes are the same
bytes as a serial run's. ``on_item(index, result)`` is called in the client as each result
arrives: the validator saves its checkpoint there (``remote = True``), so the saved evaluations
live where the command runs, and a run interrupted on the cluster resumes on a laptop and the
other way round.

Faults: a worker that dies mid-task has its tasks rescheduled by the scheduler on another
worker (up to Dask's ``distributed.scheduler.allowed-failures`` deaths per task; more raise
``BotclaveError`` naming the task). A scheduler that cannot be reached, at the start or during
the run, raises ``ClusterUnreachable`` (exit code 4) and the evaluations received so far stay
saved.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from botclave_cli.errors import BotclaveError, ClusterUnreachable, UsageError
from botclave_cli.logs import get_logger

T = TypeVar("T")
R = TypeVar("R")

#: seconds to wait for the scheduler at connection (and to reconnect after losing it)
CONNECT_TIMEOUT_S = 10.0
#: extra attempts of a task that raised (a worker's death is retried by the scheduler anyway)
RETRIES = 0
#: a batch goes out in at most this many tasks per worker thread: the scheduler costs a few ms
#: per task, so 1,200 evaluations on 2 threads travel as 32 tasks of 38, while on 128 threads
#: every evaluation is a task of its own (the last tasks still finish close together)
CHUNKS_PER_THREAD = 16
#: the cluster extra: what to install when distributed is missing
INSTALL_HINT = "pip install 'botclave[cluster]'"
log = get_logger(__name__)


#: Dask's loggers print tracebacks on stderr when the scheduler goes; the command says it in
#: one line (ClusterUnreachable) instead
QUIET_LOGGERS = ("distributed", "distributed.client", "distributed.core", "distributed.comm",
                 "distributed.utils", "tornado", "tornado.application", "asyncio")


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise UsageError(f"--executor dask: Dask distributed is not installed ({INSTALL_HINT})"
                         ) from None
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    return distributed


def _apply(fn: Callable[[T], R], chunk: list[T]) -> list[R]:
    """What a worker runs: ``fn`` over one chunk of items, in order."""
    return [fn(item) for item in chunk]


def chunk_size(items: int, threads: int, chunks_per_thread: int | None) -> int:
    """Items per task: ``ceil(items / (threads * chunks_per_thread))``, 1 without chunking."""
    if not chunks_per_thread:
        return 1
    return max(1, math.ceil(items / (max(1, threads) * chunks_per_thread)))


def worker_host(_: object = None) -> str:
    """The host and process a task ran in (for reports and tests)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class DaskExecutor:
    """Tasks on the Dask scheduler at ``address`` (``tcp://host:8786``); use ``with``."""

    remote = True  # results arrive in this process: the caller saves them here (on_item)

    def __init__(self, address: str, connect_timeout_s: float | None = None,
                 retries: int = RETRIES,
                 chunks_per_thread: int | None = CHUNKS_PER_THREAD) -> None:
        self.address = address
        self.chunks_per_thread = chunks_per_thread
        self.connect_timeout_s = CONNECT_TIMEOUT_S if connect_timeout_s is None \
            else connect_timeout_s
        self.retries = retries
        self.requested = f"dask={address}"
        self._client: Any = None
        self.tasks = 0

    def _unreachable(self, exc: BaseException | None) -> ClusterUnreachable:
        why = f" ({type(exc).__name__}: {exc})" if exc is not None and str(exc) else ""
        return ClusterUnreachable(
            f"--executor dask={self.address}: the Dask scheduler cannot be reached{why}; "
            f"start it with `dask scheduler` and join workers with `dask worker "
            f"{self.address}`; the evaluations received so far are saved and a rerun resumes")

    def client(self) -> Any:
        if self._client is None:
            distributed = _distributed()
            try:
                self._client = distributed.Client(
                    self.address, timeout=self.connect_timeout_s, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise self._unreachable(exc) from None
            try:  # tasks sent to a scheduler without workers would wait for ever
                self._client.wait_for_workers(1, timeout=self.connect_timeout_s)
            except (OSError, TimeoutError):
                self.close()
                raise ClusterUnreachable(
                    f"--executor dask={self.address}: the scheduler answers but no worker "
                    f"joined it within {self.connect_timeout_s:g} s; start workers with "
                    f"`dask worker {self.address}`") from None
        return self._client

    @property
    def jobs(self) -> int:
        """Worker threads on the cluster now (tasks it runs at once)."""
        try:
            return max(1, sum(self.client().nthreads().values()))
        except (OSError, TimeoutError) as exc:
            raise self._unreachable(exc) from None

    def report(self) -> dict[str, Any]:
        try:
            workers = self.client().nthreads()
        except (OSError, TimeoutError, ClusterUnreachable):
            workers = {}
        return {"requested": self.requested, "used": sum(workers.values()),
                "executor": "dask", "address": self.address, "workers": len(workers),
                "tasks": self.tasks,
                "reason": f"--executor dask: {len(workers)} worker(s), "
                          f"{sum(workers.values())} thread(s) at {self.address}"}

    def map(self, fn: Callable[[T], R], items: Sequence[T],
            on_result: Callable[[], None] | None = None,
            on_item: Callable[[int, R], None] | None = None) -> list[R]:
        items = list(items)
        if not items:
            return []
        distributed = _distributed()
        client = self.client()
        size = chunk_size(len(items), self.jobs, self.chunks_per_thread)
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        batch = uuid.uuid4().hex[:12]
        name = getattr(fn, "__name__", "task")
        keys = [f"botclave-{name}-{batch}-{i}" for i in range(len(chunks))]
        first = {k: i * size for i, k in enumerate(keys)}  # a chunk's first item
        out: list[Any] = [None] * len(items)
        futures: list[Any] = []
        try:
            futures = client.map(functools.partial(_apply, fn), chunks, key=keys, pure=False,
                                 retries=self.retries)
            for future in distributed.as_completed(futures, loop=client.loop):
                start = first[future.key]
                for j, result in enumerate(self._result(future, distributed)):
                    out[start + j] = result
                    self.tasks += 1
                    if on_item is not None:
                        on_item(start + j, result)
                    if on_result is not None:
                        on_result()
        except (OSError, TimeoutError) as exc:
            raise self._unreachable(exc) from None
        finally:  # an error or Ctrl-C: the rest of the batch is not left running
            if futures and client.status == "running":
                client.cancel(futures, force=True)
        return out

    def _result(self, future: Any, distributed: Any) -> Any:
        """A future's result; the scheduler lost -> ClusterUnreachable; a task that killed
        every worker it ran on -> BotclaveError; the task's own exception re-raised."""
        status = future.status
        if status == "cancelled" or self._client.status not in ("running", "connecting"):
            raise self._unreachable(None)
        try:
            return future.result()
        except distributed.client.FutureCancelledError as exc:
            raise self._unreachable(exc) from None
        except distributed.scheduler.KilledWorker as exc:
            raise BotclaveError(f"--executor dask: a task killed every worker it ran on "
                                f"({exc}); see the workers' logs") from None

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close(timeout=self.connect_timeout_s)
            except (OSError, TimeoutError):
                log.info("dask client: closed with the scheduler gone")
            self._client = None

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class ExecutorSpec:
    """``--executor``: ``auto`` (``--jobs`` decides, as before), ``serial``, ``processes``
    (``--jobs`` workers, 0 or auto = every core) or ``dask`` at ``address``."""

    kind: str
    address: str | None = None


KINDS = ("auto", "serial", "processes", "dask")


def parse_executor(text: str) -> ExecutorSpec:
    """``--executor`` text -> ExecutorSpec (UsageError naming the option otherwise). ``dask``
    without an address takes Dask's own ``DASK_SCHEDULER_ADDRESS``."""
    kind, _, address = text.strip().partition("=")
    kind = kind.lower()
    if kind not in KINDS or (address and kind != "dask"):
        raise UsageError(f"--executor {text!r}: expected auto, serial, processes or "
                         "dask=ADDRESS (e.g. dask=tcp://head:8786)")
    if kind == "dask":
        address = address or os.environ.get("DASK_SCHEDULER_ADDRESS", "")
        if not address:
            raise UsageError(f"--executor {text!r}: give the scheduler, dask=tcp://HOST:8786 "
                             "(or set DASK_SCHEDULER_ADDRESS)")
        return ExecutorSpec("dask", address)
    return ExecutorSpec(kind)


def open_executor(spec: ExecutorSpec | str, jobs: int | str = "auto") -> Any:
    """The executor of ``--executor`` (and ``--jobs`` for auto and processes); use ``with``."""
    from botclave_cli.validate.executor import ProcessExecutor, SerialExecutor, make_executor

    if isinstance(spec, str):
        spec = parse_executor(spec)
    if spec.kind == "dask":
        assert spec.address is not None
        return DaskExecutor(spec.address)
    if spec.kind == "serial":
        return SerialExecutor()
    if spec.kind == "processes":
        n = jobs if isinstance(jobs, int) and jobs > 0 else 0  # 0: every core
        executor = ProcessExecutor(n or None)
        executor.requested = n
        return executor
    return make_executor(jobs)


def map_each(executor: Any, fn: Callable[[T], R], items: Sequence[T],
             on_result: Callable[[], None] | None = None,
             on_item: Callable[[int, R], None] | None = None) -> list[R]:
    """``executor.map`` with ``on_item(index, result)`` for every item: as each result arrives
    on a remote executor, after the whole batch (in item order) on a local one."""
    if getattr(executor, "remote", False):
        return list(executor.map(fn, items, on_result, on_item=on_item))
    out = list(executor.map(fn, items, on_result))
    if on_item is not None:
        for i, result in enumerate(out):
            on_item(i, result)
    return out
