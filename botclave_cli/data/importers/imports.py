"""The imports as library calls: parse every file, refuse or collect bad rows, then write.

Parsing raises (DataError, exit 3) before the store is touched, so a refused import writes
nothing; with ``skip_bad`` the good rows are written and the bad ones reported beside them.
Captures are imported per stream (capture.py groups the files); archives and Tardis files as
one dataset per kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botclave_cli.config import ExchangeConfig
from botclave_cli.data.importers.binance_archive import read_binance_archive
from botclave_cli.data.importers.capture import Capture, read_captures
from botclave_cli.data.importers.tardis import read_tardis
from botclave_cli.data.importers.writer import (
    ImportResult,
    Parsed,
    write_bad_report,
    write_import,
)
from botclave_cli.data.store import Store
from botclave_cli.errors import DataError, UsageError
from botclave_cli.progress import Progress


def capture_parsed(cap: Capture) -> Parsed:
    """A parsed capture as the writer's input (exchange ``binance``, source ``capture``); the
    time gaps between its files go to every kind."""
    frames = cap.frames()
    notes = [f"receive time in {cap.local_unit}; market {cap.market} ({cap.raw_symbol})"]
    if cap.repeated_lines:
        notes.append(f"{cap.repeated_lines} repeated line(s) of overlapping files read once")
    return Parsed(
        exchange="binance",
        market=cap.market,
        symbol=cap.symbol,
        source="capture",
        sources=cap.files,
        frames=[(kind, (), df) for kind, df in frames.items()],
        bad=cap.bad_lines,
        lines=cap.lines,
        notes=notes,
        gaps={kind: list(cap.time_gaps) for kind in frames} if cap.time_gaps else {},
    )


#: import source -> its reader (parses every file; raises before anything is written)
READERS: dict[str, Callable[..., Parsed]] = {
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


@dataclass
class StreamImport:
    """What one stream of an ``import capture`` wrote (``result`` None: no good row)."""

    parsed: Parsed
    result: ImportResult | None
    report: Path | None
    repeated_lines: int = 0

    @property
    def datasets(self) -> list[dict[str, Any]]:
        return self.result.datasets if self.result else []

    def summary(self) -> dict[str, Any]:
        """market, symbol, files, rows, days (UTC dates), gaps (distinct), bad rows, repeats."""
        days = sorted({d for ds in self.datasets for d in ds["partitions"]})
        gaps = {
            (g.kind, g.start, g.end)
            for gs in (self.result.gaps.values() if self.result else ())
            for g in gs
        }
        res = self.result
        return {
            "market": self.parsed.market,
            "symbol": self.parsed.symbol,
            "files": len(self.parsed.sources),
            "rows": sum(d["rows"] for d in self.datasets),
            "days": days,
            "gaps": len(gaps),
            "bad_rows": len(self.parsed.bad),
            "repeated_lines": self.repeated_lines,
            "bad_rows_report": str(self.report) if self.report else None,
            "tick_size": res.tick_size if res else None,
            "lot_size": res.lot_size if res else None,
            "tick_source": res.tick_source if res else None,
            "sources": self.parsed.sources,
            "datasets": self.datasets,
        }


@dataclass
class CaptureImport:
    """An ``import capture``: one StreamImport per stream, sorted by market and symbol."""

    streams: list[StreamImport]
    warnings: list[str] = field(default_factory=list)

    @property
    def datasets(self) -> list[dict[str, Any]]:
        return [d for s in self.streams for d in s.datasets]

    @property
    def bad_rows(self) -> int:
        return sum(len(s.parsed.bad) for s in self.streams)

    def as_dict(self) -> dict[str, Any]:
        return {
            "streams": [s.summary() for s in self.streams],
            "datasets": self.datasets,
            "bad_rows": self.bad_rows,
            "warnings": self.warnings,
        }


def import_capture(
    store: Store,
    paths: Sequence[Path | str],
    *,
    tick_size: float | None = None,
    lot_size: float | None = None,
    config: ExchangeConfig | None = None,
    progress: Progress | None = None,
    **parse: Any,
) -> CaptureImport:
    """``botclave import capture``: every stream of the files (``parse`` as for
    ``read_captures``), each written as if imported alone.

    All streams are parsed before anything is written. ``tick_size``/``lot_size`` are for one
    stream (UsageError otherwise: several symbols take their ticks from ``config``). Raises
    DataError when no stream has a good row; a stream without one is listed with its report.
    """
    caps = read_captures(paths, progress=progress, **parse)
    if len(caps) > 1 and (tick_size is not None or lot_size is not None):
        names = ", ".join(f"{c.market} {c.symbol}" for c in caps)
        raise UsageError(
            f"--tick-size/--lot-size are for one stream; the files hold {len(caps)} ({names}):"
            " give the ticks in --config"
        )
    parsed = [capture_parsed(c) for c in caps]
    if all(p.rows == 0 for p in parsed):
        reports = [str(write_bad_report(store, p)) for p in parsed if p.bad]
        where = f"; bad rows listed in {', '.join(reports)}" if reports else ""
        files = ", ".join(f for p in parsed for f in p.sources)
        raise DataError(f"{files}: no good row to import{where}")
    streams, warnings = [], []
    for cap, p in zip(caps, parsed, strict=True):
        if p.rows == 0:
            streams.append(StreamImport(p, None, write_bad_report(store, p), cap.repeated_lines))
            continue
        res = write_import(
            store, p, tick_size=tick_size, lot_size=lot_size, config=config, progress=progress
        )
        streams.append(StreamImport(p, res, res.report, cap.repeated_lines))
        warnings += res.warnings
    return CaptureImport(streams, warnings)


def import_binance_archive(
    store: Store, paths: Sequence[Path | str], **options: Any
) -> ImportResult:
    """``botclave import binance-archive``; options as for ``import_files`` /
    ``read_binance_archive``."""
    return import_files("binance-archive", store, paths, **options)


def import_tardis(store: Store, paths: Sequence[Path | str], **options: Any) -> ImportResult:
    """``botclave import tardis``; ``options`` as for ``import_files`` / ``read_tardis``."""
    return import_files("tardis", store, paths, **options)
