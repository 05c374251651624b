"""Atomic file writes: write beside the target under a temporary name, fsync, then rename.

A reader (or a crash) never sees a half-written file under the final name. Temporary names start
with ``.`` and end with ``.tmp-<pid>``, so Parquet globs (``*.parquet``) never pick them up and
``clean_stale_temp`` can remove leftovers of an interrupted run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import polars as pl

TEMP_MARK = ".tmp-"


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces ``target`` atomically, else it is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}{TEMP_MARK}{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_parquet(target: Path, df: pl.DataFrame) -> None:
    with atomic_path(target) as tmp:
        df.write_parquet(tmp, compression="zstd", statistics=True)


def clean_stale_temp(root: Path) -> int:
    """Remove temporary files left by interrupted writes below ``root``; returns how many."""
    removed = 0
    if not root.exists():
        return 0
    for path in root.rglob(f".*{TEMP_MARK}*"):
        pid = path.name.rsplit(TEMP_MARK, 1)[-1]
        if pid.isdigit() and _alive(int(pid)):
            continue  # a live writer's file
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
