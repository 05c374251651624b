"""Keep numba's on-disk cache of the execution core in step with its sources.

numba keys a cached function on its own file's timestamp only, and ``kernel.advance`` inlines
the steps of the sibling modules (``core_step``); after a change to one of them the cache would
silently run the old machine code. So the package's cache files are dropped whenever the
digest of its sources differs from the one recorded beside them. (With ``NUMBA_CACHE_DIR`` set,
numba keeps the cache elsewhere and this is left to whoever set it.)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / "__pycache__"
STAMP = CACHE / "core_sources.sha256"
# the modules whose compiled steps end up inside kernel.advance
COMPILED = ("layout.py", "orders.py", "queue.py", "steps.py", "matching.py", "kernel.py")


def sources_digest() -> str:
    h = hashlib.sha256()
    for name in COMPILED:
        h.update(name.encode())
        h.update((HERE / name).read_bytes())
    return h.hexdigest()


def drop_stale_cache() -> None:
    """Delete the cached machine code of this package when its sources changed."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    digest = sources_digest()
    try:
        if STAMP.read_text() == digest:
            return
    except OSError:
        pass
    try:
        CACHE.mkdir(exist_ok=True)
        for stale in [*CACHE.glob("*.nbi"), *CACHE.glob("*.nbc")]:
            stale.unlink(missing_ok=True)
        tmp = STAMP.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(digest)
        tmp.replace(STAMP)
    except OSError:
        return  # a read-only install: numba then compiles in memory
