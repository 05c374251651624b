"""Atomic writes: write beside the target under a temporary name, fsync, then rename.

A reader (or a crash) never sees a half-written file under the final name. Temporary names start
with ``.`` and end with ``.tmp-<pid>``, so Parquet globs (``*.parquet``) never pick them up and
``clean_stale_temp`` can remove leftovers of an interrupted run. ``atomic_dir`` does the same
for a whole folder (a run, a validation): built beside the target, swapped in when complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl

TEMP_MARK = ".tmp-"
#: ``atomic_dir`` moves the folder it replaces to ``.<name>.old.tmp-<pid>`` during the swap
OLD_SUFFIX = ".old"


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


def _aside_target(path: Path) -> Path | None:
    """The folder that ``path`` (``.<name>.old.tmp-<pid>``) was moved aside from, else None."""
    name = path.name.rsplit(TEMP_MARK, 1)[0][1:].removesuffix(OLD_SUFFIX)
    return path.with_name(name) if name and path.name.startswith(f".{name}{OLD_SUFFIX}") else None


def _settle_aside(aside: Path, target: Path) -> None:
    """A folder left aside by a swap that did not finish: back in place when ``target`` is
    missing (the swap stopped between its two renames), else removed (the swap was done)."""
    if not aside.exists():
        return
    if target.exists():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(aside, target)


@contextlib.contextmanager
def atomic_dir(target: Path, keep: Callable[[Path, Path], None] | None = None
               ) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; when the block ends without an error
    it takes ``target``'s place as a whole.

    Before the swap ``keep(old, new)`` (when given and ``target`` exists) copies into the new
    folder what it should carry over from the old one. The old folder is then moved aside
    (``.<name>.old.tmp-<pid>``), the new one renamed to ``target`` and the old one removed. An
    error anywhere leaves ``target`` as it was (moved back when the second rename fails) and
    removes the temporary folder; a crash leaves names that ``clean_stale_temp`` cleans up
    (and puts the old folder back if it was caught between the two renames). Readers see the
    old folder or the new one, never a mix.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}{TEMP_MARK}{os.getpid()}")
    aside = target.with_name(f".{target.name}{OLD_SUFFIX}{TEMP_MARK}{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    _settle_aside(aside, target)
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():
            if keep is not None:
                keep(target, tmp)
            os.replace(target, aside)
        try:
            os.replace(tmp, target)
        except BaseException:
            if aside.exists() and not target.exists():
                os.replace(aside, target)  # the previous folder stays as it was
            raise
        _fsync_dir(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(aside, ignore_errors=True)


def clean_stale_temp(root: Path) -> int:
    """Remove temporary files and folders left by interrupted writes below ``root`` (a folder
    an interrupted ``atomic_dir`` moved aside goes back in place when its target is missing);
    returns how many leftovers were handled. Those of a live process stay."""
    removed = 0
    if not root.exists():
        return 0
    for path in sorted(root.rglob(f".*{TEMP_MARK}*")):  # a folder before what it holds
        if not path.exists() and not path.is_symlink():
            continue  # inside a leftover folder removed just before
        pid = path.name.rsplit(TEMP_MARK, 1)[-1]
        if pid.isdigit() and _alive(int(pid)):
            continue  # a live writer's file
        with contextlib.suppress(OSError):
            target = _aside_target(path)
            if target is not None and path.is_dir() and not path.is_symlink():
                _settle_aside(path, target)
            elif path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
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
