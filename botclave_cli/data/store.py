"""The Parquet dataset store: layout, partitioned atomic writes and lazy scans.

Layout (hive-partitioned, readable by ``pl.scan_parquet(..., hive_partitioning=True)`` and DuckDB)::

    <root>/<exchange>/<market>/<symbol folder>/<kind>/[<level>=<value>/]date=YYYY-MM-DD/data.parquet
    <root>/<exchange>/<market>/<symbol folder>/<kind>/[<level>=<value>/]manifest.json

One file per partition: a write merges new rows with the partition's rows (dedupe by the kind's
key, sort by its order) and replaces the file atomically, so a partition is always complete.
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

from botclave_cli.data import atomic
from botclave_cli.data.manifest import MANIFEST_NAME, Manifest, read_manifest, write_manifest
from botclave_cli.data.schemas import normalise, partition_dates, spec
from botclave_cli.errors import DataError

DATA_DIR_ENV = "BOTCLAVE_DATA_DIR"
PARTITION_FILE = "data.parquet"
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
    def partition_files(self, ref: DatasetRef) -> dict[str, Path]:
        """date (YYYY-MM-DD) -> partition file, sorted by date."""
        base = self.path(ref)
        if not base.exists():
            return {}
        found = {
            p.parent.name.removeprefix("date="): p
            for p in base.glob(f"date=*/{PARTITION_FILE}")
        }
        return dict(sorted(found.items()))

    def read_partition(self, ref: DatasetRef, date: str) -> pl.DataFrame:
        path = self.path(ref) / f"date={date}" / PARTITION_FILE
        if not path.exists():
            return pl.DataFrame(schema=spec(ref.kind).schema)
        return pl.read_parquet(path)

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
        df = normalise(df, ref.kind)
        base = self.path(ref)
        touched: list[str] = []
        rows_new = 0
        if df.height:
            dates = partition_dates(df)
            for (date,), part in df.with_columns(dates.alias("__date")).group_by(
                "__date", maintain_order=True
            ):
                day = date.isoformat() if date is not None else "unknown"
                part = part.drop("__date")
                existing = self.read_partition(ref, day)
                ordered = [part, existing] if prefer_new else [existing, part]
                merged = normalise(pl.concat(ordered, how="vertical"), ref.kind)
                rows_new += merged.height - existing.height
                if prefer_new or merged.height != existing.height or not existing.height:
                    atomic.write_parquet(base / f"date={day}" / PARTITION_FILE, merged)
                touched.append(day)
        manifest = self.manifest(ref)
        if manifest is None:
            if new_manifest is None:
                raise DataError(f"{base}: dataset has no manifest and none was given")
            manifest = new_manifest()
        for day in touched:
            path = base / f"date={day}" / PARTITION_FILE
            manifest.partitions[day] = pl.scan_parquet(path).select(pl.len()).collect().item()
        manifest.partitions = dict(sorted(manifest.partitions.items()))
        manifest.row_count = sum(manifest.partitions.values())
        if update_manifest is not None:
            update_manifest(manifest)
        self.save_manifest(ref, manifest)
        return WriteResult(df.height, rows_new, tuple(touched))

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
        lf = pl.scan_parquet([str(p) for p in files.values()])
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


def _lit_ts(value: dt.datetime) -> pl.Expr:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return pl.lit(value).cast(pl.Datetime("us", "UTC"))
