"""The three imports as library calls: parse every file, refuse or collect bad rows, then write.

Parsing raises (DataError, exit 3) before the store is touched, so a refused import writes
nothing; with ``skip_bad`` the good rows are written and the bad ones reported beside them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from botclave_cli.config import ExchangeConfig
from botclave_cli.data.importers.binance_archive import read_binance_archive
from botclave_cli.data.importers.capture import Capture, read_capture
from botclave_cli.data.importers.tardis import read_tardis
from botclave_cli.data.importers.writer import ImportResult, Parsed, write_import
from botclave_cli.data.store import Store
from botclave_cli.progress import Progress


def capture_parsed(cap: Capture) -> Parsed:
    """A parsed capture as the writer's input (exchange ``binance``, source ``capture``)."""
    return Parsed(
        exchange="binance",
        market=cap.market,
        symbol=cap.symbol,
        source="capture",
        sources=cap.files,
        frames=[(kind, (), df) for kind, df in cap.frames().items()],
        bad=cap.bad_lines,
        lines=cap.lines,
        notes=[f"receive time in {cap.local_unit}; market {cap.market} ({cap.raw_symbol})"],
    )


def _read_capture(
    paths: Sequence[Path | str], *, progress: Progress | None = None, **parse: Any
) -> Parsed:
    return capture_parsed(read_capture(paths, progress=progress, **parse))


#: import source -> its reader (parses every file; raises before anything is written)
READERS: dict[str, Callable[..., Parsed]] = {
    "capture": _read_capture,
    "binance-archive": read_binance_archive,
    "tardis": read_tardis,
}


def import_files(
    source: str,
    store: Store,
    paths: Sequence[Path | str],
    *,
    tick_size: float | None = None,
    lot_size: float | None = None,
    config: ExchangeConfig | None = None,
    progress: Progress | None = None,
    **parse: Any,
) -> ImportResult:
    """``botclave import <source>``: ``parse`` goes to ``READERS[source]`` (skip_bad, market...),
    then the parsed frames are written with the tick/lot/config given."""
    parsed = READERS[source](paths, progress=progress, **parse)
    return write_import(
        store, parsed, tick_size=tick_size, lot_size=lot_size, config=config, progress=progress
    )


def import_capture(store: Store, paths: Sequence[Path | str], **options: Any) -> ImportResult:
    """``botclave import capture``; ``options`` as for ``import_files`` / ``read_capture``."""
    return import_files("capture", store, paths, **options)


def import_binance_archive(
    store: Store, paths: Sequence[Path | str], **options: Any
) -> ImportResult:
    """``botclave import binance-archive``; options as for ``import_files`` /
    ``read_binance_archive``."""
    return import_files("binance-archive", store, paths, **options)


def import_tardis(store: Store, paths: Sequence[Path | str], **options: Any) -> ImportResult:
    """``botclave import tardis``; ``options`` as for ``import_files`` / ``read_tardis``."""
    return import_files("tardis", store, paths, **options)
