"""The Parquet dataset store: layout, partitioned atomic writes and lazy scans.

Layout (hive-partitioned, readable by ``pl.scan_parquet(..., hive_partitioning=True)`` and DuckDB)::

    <root>/<exchange>/<market>/<symbol folder>/<kind>/[<level>=<value>/]date=YYYY-MM-DD/data.parquet
    <root>/<exchange>/<market>/<symbol folder>/<kind>/[<level>=<value>/]manifest.json

``write`` merges new rows with the partition's rows (dedupe by the kind's key, sort by its order)
and replaces ``data.parquet`` atomically, so a partition is always complete. ``append`` (for
writers that only ever add later rows, like the live recorder) writes a ``part-<n>.parquet``
beside it instead, and ``compact`` folds the parts in (see ``botclave_cli.data.partition``).
The manifest is written after the data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from botclave_cli.data import atomic, partition
from botclave_cli.data.manifest import MANIFEST_NAME, Manifest, read_manifest, write_manifest
from botclave_cli.data.schemas import normalise, partition_dates, spec
from botclave_cli.errors import DataError, UsageError

DATA_DIR_ENV = "BOTCLAVE_DATA_DIR"
#: the kinds that hold individual trades, in the order the engine prefers them (DECISIONS.md:
#: raw trades where present, else aggregate trades)
TRADE_KINDS = ("trades", "agg_trades")
PARTITION_FILE = partition.PARTITION_FILE
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, "datasets"))


def symbol_folder(symbol: str) -> str:
    """ccxt unified symbol -> folder name: ``/`` -> ``-``, ``:`` -> ``_``.

    Example: BTC/USDT:USDT -> BTC-USDT_USDT.
    """
    return symbol.replace("/", "-").replace(":", "_")


def symbol_from_folder(folder: str) -> str:
    return folder.replace("_", ":").replace("-", "/")


def params_hash(params: dict[str, Any]) -> str:
    """Short stable hash of parameters (canonical JSON).

    Used for a derived dataset's ``params=`` level.
    """
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def to_us(value: dt.datetime | dt.date) -> int:
    """UTC datetime/date -> microseconds since epoch (naive datetimes are taken as UTC)."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


@dataclass(frozen=True)
class DatasetRef:
    """Names one dataset: exchange, market, symbol, kind and optional extra levels
    (``(("timeframe", "1m"),)`` for ohlcv, ``(("params", "<hash>"),)`` for derived kinds)."""

    exchange: str
    market: str
    symbol: str
    kind: str
    levels: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def relpath(self) -> Path:
        path = Path(self.exchange) / self.market / symbol_folder(self.symbol) / self.kind
        for name, value in self.levels:
            path = path / f"{name}={value}"
        return path

    def with_level(self, name: str, value: str) -> DatasetRef:
        return DatasetRef(self.exchange, self.market, self.symbol, self.kind,
                          (*self.levels, (name, value)))

    def __str__(self) -> str:
        return str(self.relpath())


@dataclass(frozen=True)
class WriteResult:
    rows_written: int
    rows_new: int
    partitions: tuple[str, ...]


class Store:
    """A dataset store rooted at ``root`` (default ``./datasets`` or ``$BOTCLAVE_DATA_DIR``)."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_data_dir()

    def path(self, ref: DatasetRef) -> Path:
        return self.root / ref.relpath()

    # manifests -------------------------------------------------------------------------------
    def manifest(self, ref: DatasetRef) -> Manifest | None:
        return read_manifest(self.path(ref))

    def save_manifest(self, ref: DatasetRef, manifest: Manifest) -> None:
        write_manifest(self.path(ref), manifest)

    # partitions ------------------------------------------------------------------------------
    def partition_files(self, ref: DatasetRef) -> dict[str, list[Path]]:
        """date (YYYY-MM-DD) -> the partition's files (``data.parquet``, then parts), by date."""
        base = self.path(ref)
        if not base.exists():
            return {}
        found = {d.name.removeprefix("date="): partition.live_files(d)
                 for d in base.glob("date=*") if d.is_dir()}
        return {day: files for day, files in sorted(found.items()) if files}

    def read_partition(self, ref: DatasetRef, date: str) -> pl.DataFrame:
        return partition.read(self.path(ref) / f"date={date}", ref.kind)

    def write(
        self,
        ref: DatasetRef,
        df: pl.DataFrame,
        update_manifest: Callable[[Manifest], None] | None = None,
        new_manifest: Callable[[], Manifest] | None = None,
        prefer_new: bool = False,
    ) -> WriteResult:
        """Merge ``df`` into the dataset, partition by partition, then update the manifest.

        On a key collision the stored row wins (market data is immutable), unless
        ``prefer_new``: derived kinds pass it so that a rebuilt bar (say, one that was still
        open at the previous run) replaces the stored one. ``new_manifest`` makes the manifest
        when the dataset has none; ``update_manifest`` is applied to it after the data is
        written (row counts are maintained here).
        """
        base = self.path(ref)
        touched: list[str] = []
        rows_new = 0
        for day, part in self._by_day(df, ref.kind):
            existing = self.read_partition(ref, day)
            ordered = [part, existing] if prefer_new else [existing, part]
            merged = normalise(pl.concat(ordered, how="vertical"), ref.kind)
            rows_new += merged.height - existing.height
            if prefer_new or merged.height != existing.height or not existing.height:
                partition.replace(base / f"date={day}", merged)
            touched.append(day)
        self._finish(ref, touched, update_manifest, new_manifest)
        return WriteResult(df.height, rows_new, tuple(touched))

    def append(
        self,
        ref: DatasetRef,
        df: pl.DataFrame,
        update_manifest: Callable[[Manifest], None] | None = None,
        new_manifest: Callable[[], Manifest] | None = None,
    ) -> WriteResult:
        """Add ``df`` as new part files, without reading the stored rows.

        For writers whose rows are new by construction (the recorder numbers its lines past
        the stored ``seq``): rows are deduped within ``df`` only. Memory and time depend on
        ``df``, not on the partition's size. ``compact`` folds the parts in later.
        """
        base = self.path(ref)
        touched: list[str] = []
        for day, part in self._by_day(df, ref.kind):
            partition.append(base / f"date={day}", part)
            touched.append(day)
        self._finish(ref, touched, update_manifest, new_manifest)
        return WriteResult(df.height, df.height, tuple(touched))

    def compact(self, ref: DatasetRef, dates: list[str] | None = None) -> list[str]:
        """Fold appended parts into each partition's ``data.parquet`` (all dates, or ``dates``);
        returns the dates compacted. Row counts do not change, so the manifest stays as it is."""
        base = self.path(ref)
        days = dates if dates is not None else [
            d.name.removeprefix("date=") for d in sorted(base.glob("date=*"))]
        return [day for day in days if partition.compact(base / f"date={day}", ref.kind)]

    def _by_day(self, df: pl.DataFrame, kind: str) -> Iterator[tuple[str, pl.DataFrame]]:
        """``df`` normalised and split into ``date=`` partitions (YYYY-MM-DD)."""
        df = normalise(df, kind)
        if not df.height:
            return
        dates = partition_dates(df)
        for (date,), part in df.with_columns(dates.alias("__date")).group_by(
            "__date", maintain_order=True
        ):
            yield (date.isoformat() if date is not None else "unknown"), part.drop("__date")

    def _finish(self, ref: DatasetRef, touched: list[str],
                update_manifest: Callable[[Manifest], None] | None,
                new_manifest: Callable[[], Manifest] | None) -> None:
        """Recount the touched partitions (from Parquet footers), update and save the manifest."""
        base = self.path(ref)
        manifest = self.manifest(ref)
        if manifest is None:
            if new_manifest is None:
                raise DataError(f"{base}: dataset has no manifest and none was given")
            manifest = new_manifest()
        for day in touched:
            manifest.partitions[day] = partition.row_count(
                partition.live_files(base / f"date={day}"))
        manifest.partitions = dict(sorted(manifest.partitions.items()))
        manifest.row_count = sum(manifest.partitions.values())
        if update_manifest is not None:
            update_manifest(manifest)
        self.save_manifest(ref, manifest)

    def scan(
        self,
        ref: DatasetRef,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> pl.LazyFrame:
        """Lazy scan of the dataset, optionally limited to ``start <= ts < end`` (UTC).

        Partitions outside the range are pruned by their ``date=`` level.
        """
        files = self.partition_files(ref)
        if start is not None:
            files = {d: p for d, p in files.items() if d >= start.date().isoformat()}
        if end is not None:
            files = {d: p for d, p in files.items() if d <= end.date().isoformat()}
        if not files:
            return pl.DataFrame(schema=spec(ref.kind).schema).lazy()
        lf = pl.scan_parquet([str(p) for paths in files.values() for p in paths])
        # rows without exchange time (spot bookTicker, REST snapshot) are placed by receive time
        has_local = "ts_local" in spec(ref.kind).schema
        when = pl.coalesce("ts", "ts_local") if has_local else pl.col("ts")
        if start is not None:
            lf = lf.filter(when >= _lit_ts(start))
        if end is not None:
            lf = lf.filter(when < _lit_ts(end))
        return lf

    def exists(self, ref: DatasetRef) -> bool:
        return (self.path(ref) / MANIFEST_NAME).exists()

    def datasets(self) -> Iterator[DatasetRef]:
        """Every dataset below the root (found by its manifest)."""
        if not self.root.exists():
            return
        for manifest_path in sorted(self.root.rglob(MANIFEST_NAME)):
            rel = manifest_path.parent.relative_to(self.root).parts
            if len(rel) < 4:
                continue
            exchange, market, folder, kind, *levels = rel
            pairs = tuple((n, v) for n, v in (level.split("=", 1) for level in levels))
            manifest = read_manifest(manifest_path.parent)
            symbol = manifest.symbol if manifest is not None else symbol_from_folder(folder)
            yield DatasetRef(exchange, market, symbol, kind, pairs)

    def clean_stale_temp(self) -> int:
        return atomic.clean_stale_temp(self.root)


def find_trades(store: Store, exchange: str, market: str, symbol: str,
                kind: str | None = None) -> DatasetRef:
    """The trades dataset to read: ``kind`` if given (``--kind``), else ``trades`` where present,
    else ``agg_trades``. UsageError for another kind, DataError when none exists."""
    if kind is not None and kind not in TRADE_KINDS:
        raise UsageError(f"--kind {kind!r}: expected trades or agg_trades")
    for k in ([kind] if kind else TRADE_KINDS):
        ref = DatasetRef(exchange, market, symbol, k)
        if store.exists(ref):
            return ref
    where = store.root / DatasetRef(exchange, market, symbol, kind or "trades").relpath().parent
    raise DataError(f"no {kind or 'trades or agg_trades'} dataset in {where}")


def _lit_ts(value: dt.datetime) -> pl.Expr:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return pl.lit(value).cast(pl.Datetime("us", "UTC"))
