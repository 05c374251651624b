"""A real local Dask cluster for tests: ``dask scheduler`` and ``dask worker`` as separate
processes, as an operator starts them on a head and on worker nodes, torn down afterwards.

Workers run with ``--no-nanny`` (a killed worker stays dead, as a lost node does) and one
thread, pinned like the process pool (``POLARS_MAX_THREADS=1``, ``NUMBA_NUM_THREADS=1``) and
without Dask's sampling profiler (as the README says to run them), in their own working
directory, so nothing they read can come from the test's relative paths.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

distributed = pytest.importorskip(
    "distributed", reason="Dask distributed is not installed: pip install 'botclave[cluster]' "
    "(make venv installs it)")

START_TIMEOUT_S = 60.0
ROOT = Path(__file__).resolve().parents[1]


def slow_echo(item: tuple[int, float]) -> int:
    """A task for the workers (importable there: ``tests`` is on their path): waits ``item[1]``
    seconds, returns ``item[0]``."""
    time.sleep(item[1])
    return item[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalCluster:
    """A scheduler and its workers, each a process of its own."""

    folder: Path
    address: str = ""
    scheduler: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"POLARS_MAX_THREADS": "1", "NUMBA_NUM_THREADS": "1",
                    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
                    "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])})
        return env

    def _log(self, name: str):
        return open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - the process keeps it

    def start_scheduler(self) -> None:
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port",
             str(port), "--no-dashboard", "--no-show"],
            cwd=self.folder, env=self._env(), stdout=self._log("scheduler"),
            stderr=subprocess.STDOUT)
        self._wait(lambda: _answers(self.address), "the scheduler")

    def add_worker(self) -> subprocess.Popen:
        name = f"w{len(self.workers)}"
        wdir = self.folder / name
        wdir.mkdir(exist_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", self.address, "--nthreads", "1",
             "--no-nanny", "--no-dashboard", "--name", name, "--host", "127.0.0.1",
             "--local-directory", str(wdir)],
            cwd=wdir, env=self._env(), stdout=self._log(name), stderr=subprocess.STDOUT)
        self.workers.append(proc)
        return proc

    def wait_for_workers(self, n: int) -> None:
        with distributed.Client(self.address, timeout=START_TIMEOUT_S,
                                set_as_default=False) as client:
            client.wait_for_workers(n, timeout=START_TIMEOUT_S)

    def worker_names(self) -> list[str]:
        """The workers the scheduler knows now."""
        with distributed.Client(self.address, timeout=START_TIMEOUT_S,
                                set_as_default=False) as client:
            info = client.scheduler_info()["workers"]
        return sorted(str(w["name"]) for w in info.values())

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start: {self.logs()}")
            time.sleep(0.1)

    def logs(self) -> str:
        return json.dumps({p.name: p.read_text(errors="replace")[-2000:]
                           for p in self.folder.glob("*.log")})

    def kill(self, proc: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        """Workers first (each says goodbye to the scheduler), then the scheduler; a process
        that does not exit within a few seconds is killed."""
        for group in (self.workers, [self.scheduler]):
            for proc in group:
                if proc is not None and proc.poll() is None:
                    proc.terminate()
            for proc in group:
                if proc is None:
                    continue
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.kill(proc)


def _answers(address: str) -> bool:
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) == 0


@contextlib.contextmanager
def local_cluster(folder: Path, workers: int = 1) -> Iterator[LocalCluster]:
    folder.mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster(folder)
    try:
        cluster.start_scheduler()
        for _ in range(workers):
            cluster.add_worker()
        if workers:
            cluster.wait_for_workers(workers)
        yield cluster
    finally:
        cluster.stop()
