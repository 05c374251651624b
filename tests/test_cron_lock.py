"""The run lock: a second run waits or fails with a message naming the holder."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from botclave_cli.lock import LockBusy, RunLock

HOLD = """
import sys, time
from pathlib import Path
from botclave_cli.lock import RunLock
with RunLock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_second_holder_fails_with_clear_message(tmp_path: Path):
    path = tmp_path / "run.lock"
    proc = hold(path, 30)
    try:
        with pytest.raises(LockBusy) as info:
            RunLock(path).acquire()
        assert f"pid {proc.pid} since" in info.value.message
        assert "another run is in progress" in info.value.message
        assert info.value.exit_code == 1
    finally:
        proc.kill()
        proc.wait()


def test_waiter_gets_the_lock_when_holder_finishes(tmp_path: Path):
    path = tmp_path / "run.lock"
    proc = hold(path, 0.5)
    started = time.monotonic()
    with RunLock(path, wait_seconds=20) as lock:
        assert lock.held
        assert time.monotonic() - started < 15
    proc.wait()
    assert proc.returncode == 0


def test_killed_holder_does_not_leave_a_stale_lock(tmp_path: Path):
    path = tmp_path / "run.lock"
    proc = hold(path, 30)
    proc.kill()
    proc.wait()
    with RunLock(path) as lock:
        assert lock.held
    assert not lock.held
