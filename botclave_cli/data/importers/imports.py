"""The three imports as library calls: parse every file, refuse or collect bad rows, then write.

Parsing raises (DataError, exit 3) before the store is touched, so a refused import writes
nothing; with ``skip_bad`` the good rows are written and the bad ones reported beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def import_capture(
    store: Store,
    paths: Sequence[Path | str],
    *,
    tick_size: float | None = None,
    lot_size: float | None = None,
    config: ExchangeConfig | None = None,
    progress: Progress | None = None,
    **parse: Any,
) -> ImportResult:
    """``botclave import capture``; ``parse`` goes to ``read_capture`` (skip_bad, market...)."""
    parsed = capture_parsed(read_capture(paths, progress=progress, **parse))
    return write_import(
        store, parsed, tick_size=tick_size, lot_size=lot_size, config=config, progress=progress
    )


def import_binance_archive(
    store: Store,
    paths: Sequence[Path | str],
    *,
    tick_size: float | None = None,
    lot_size: float | None = None,
    config: ExchangeConfig | None = None,
    progress: Progress | None = None,
    **parse: Any,
) -> ImportResult:
    """``botclave import binance-archive``; ``parse`` goes to ``read_binance_archive``."""
    parsed = read_binance_archive(paths, progress=progress, **parse)
    return write_import(
        store, parsed, tick_size=tick_size, lot_size=lot_size, config=config, progress=progress
    )


def import_tardis(
    store: Store,
    paths: Sequence[Path | str],
    *,
    tick_size: float | None = None,
    lot_size: float | None = None,
    config: ExchangeConfig | None = None,
    progress: Progress | None = None,
    **parse: Any,
) -> ImportResult:
    """``botclave import tardis``; ``parse`` goes to ``read_tardis``."""
    parsed = read_tardis(paths, progress=progress, **parse)
    return write_import(
        store, parsed, tick_size=tick_size, lot_size=lot_size, config=config, progress=progress
    )
