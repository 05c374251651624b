"""A run lock, so two overlapping cron runs never write the same outputs at once.

``RunLock(path)`` takes an exclusive ``flock`` on a lock file. The kernel releases it when the
holder exits for any reason (crash, SIGKILL), so a stale lock cannot block the next run; the pid
and start time written into the file only serve the message that names the holder. A second run
waits up to ``wait_seconds`` (0: do not wait) and then fails with ``LockBusy`` (exit code 1).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from botclave_cli.errors import BotclaveError

POLL_SECONDS = 0.2


class LockBusy(BotclaveError):
    """Another run holds the lock (exit code 1)."""


class RunLock:
    """Exclusive lock on ``path`` (created if missing), usable as a context manager."""

    def __init__(self, path: Path, wait_seconds: float = 0.0) -> None:
        self.path = path
        self.wait_seconds = wait_seconds
        self._fd: int | None = None

    def holder(self) -> str:
        """The holder's "pid N since T" as written in the lock file ('' when unknown)."""
        try:
            return self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return ""

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(self.wait_seconds, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    who = self.holder() or "another process"
                    waited = f" after waiting {self.wait_seconds:g} s" if self.wait_seconds else ""
                    raise LockBusy(
                        f"{self.path}: another run is in progress ({who}){waited}; "
                        "try again later or raise lock_wait_seconds"
                    ) from None
                time.sleep(POLL_SECONDS)
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {stamp}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
