"""Chunked, resumable writes of a fetch into the store, and the fetch's result.

A fetch appends rows in order inside one uncovered interval ("hole") of the dataset. Every
``chunk_rows`` rows it writes them through ``Store.write`` (atomic per partition) and extends the
manifest's coverage to what is now known to be complete, so a run killed at any moment keeps all
it wrote, claims nothing it did not, and the next run starts from the first uncovered time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from botclave_cli.data import atomic
from botclave_cli.data.manifest import Gap, Manifest
from botclave_cli.data.schemas import empty_frame, spec
from botclave_cli.data.store import DatasetRef, Store, from_us
from botclave_cli.exchange.connector import Connector, MarketInfo
from botclave_cli.progress import Progress

DEFAULT_CHUNK_ROWS = 50_000


@dataclass
class FetchResult:
    """What one fetch did; ``as_dict`` is the command's JSON output."""

    dataset: str
    kind: str
    symbol: str
    rows_new: int = 0
    rows_total: int = 0
    requests: int = 0
    retries: int = 0
    resumed: bool = False
    coverage: list[tuple[int, int]] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    tick_size: float | None = None
    lot_size: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "kind": self.kind, "symbol": self.symbol,
            "rows_new": self.rows_new, "rows_total": self.rows_total,
            "requests": self.requests, "retries": self.retries, "resumed": self.resumed,
            "coverage": [[from_us(a).isoformat(), from_us(b).isoformat()]
                         for a, b in self.coverage],
            "gaps": [g.model_dump() for g in self.gaps],
            "tick_size": self.tick_size, "lot_size": self.lot_size,
        }

    def summary(self) -> str:
        gaps = f", {len(self.gaps)} gap(s)" if self.gaps else ""
        again = " (resumed)" if self.resumed else ""
        return (f"{self.dataset}: {self.rows_new} new row(s), {self.rows_total} in the dataset"
                f"{gaps}{again}; {self.requests} request(s), {self.retries} retr"
                f"{'y' if self.retries == 1 else 'ies'}")


def manifest_factory(conn: Connector, ref: DatasetRef, info: MarketInfo,
                     endpoint: str) -> Callable[[], Manifest]:
    def make() -> Manifest:
        return Manifest(kind=ref.kind, exchange=ref.exchange, market=ref.market,
                        symbol=ref.symbol, source=f"ccxt:{conn.exchange.id}",
                        sources=[endpoint])
    return make


def stamp_market(manifest: Manifest, info: MarketInfo, endpoint: str) -> None:
    """Tick, lot and quantity unit as the exchange's markets say (tick_source ``exchange``)."""
    manifest.tick_size, manifest.lot_size = info.tick_size, info.lot_size
    manifest.tick_source = "exchange" if info.tick_size is not None else manifest.tick_source
    manifest.qty_unit = "contracts" if info.qty_unit == "contracts" else "base"
    manifest.contract_size = info.contract_size
    if endpoint not in manifest.sources:
        manifest.sources.append(endpoint)


class ChunkWriter:
    """Buffers rows of one hole; writes every ``chunk_rows`` rows and extends coverage.

    ``complete_until(df)`` says up to which time (us, exclusive) the written rows make the dataset
    complete; for trades that is the last trade's time (more trades may share it), for candles
    the last candle's close.
    """

    def __init__(self, store: Store, ref: DatasetRef, conn: Connector, info: MarketInfo,
                 endpoint: str, chunk_rows: int,
                 complete_until: Callable[[pl.DataFrame], int]) -> None:
        self.store, self.ref, self.info, self.endpoint = store, ref, info, endpoint
        self.chunk_rows = max(1, chunk_rows)
        self.complete_until = complete_until
        self.new_manifest = manifest_factory(conn, ref, info, endpoint)
        self.frames: list[pl.DataFrame] = []
        self.buffered = 0
        self.rows_new = 0
        self.cover_from: int | None = None
        atomic.clean_stale_temp(store.path(ref))  # temp files of a killed run (pid-aware)

    def begin(self, start_us: int) -> None:
        self.cover_from = start_us

    def add(self, df: pl.DataFrame) -> None:
        if df.height:
            self.frames.append(df)
            self.buffered += df.height
        if self.buffered >= self.chunk_rows:
            self.flush(None)

    def flush(self, cover_to: int | None) -> None:
        """Write the buffer; coverage up to ``cover_to`` (None: what the rows prove)."""
        df = pl.concat(self.frames) if self.frames else empty_frame(self.ref.kind)
        if cover_to is None:
            cover_to = self.complete_until(df) if df.height else self.cover_from
        start = self.cover_from
        id_col = spec(self.ref.kind).sequence_id

        def update(manifest: Manifest) -> None:
            stamp_market(manifest, self.info, self.endpoint)
            if start is not None and cover_to is not None and cover_to > start:
                manifest.add_coverage(start, cover_to)
                # informational: where this fetch stood (resuming reads coverage and the rows)
                manifest.cursor = {"endpoint": self.endpoint, "complete_until_us": cover_to}
                if id_col is not None and df.height:
                    manifest.cursor["last_id"] = int(df[id_col].max())  # type: ignore[arg-type]

        result = self.store.write(self.ref, df, update_manifest=update,
                                  new_manifest=self.new_manifest)
        self.rows_new += result.rows_new
        self.frames, self.buffered = [], 0
        if cover_to is not None and (start is None or cover_to > start):
            self.cover_from = cover_to


def set_gaps(store: Store, ref: DatasetRef, kind: str, found: list[Gap]) -> Manifest | None:
    """Replace the manifest's gaps of ``kind`` by ``found`` (other kinds of gap are kept)."""
    def update(manifest: Manifest) -> None:
        manifest.gaps = [g for g in manifest.gaps if g.kind != kind] + found
    if store.manifest(ref) is None:
        return None
    store.write(ref, empty_frame(ref.kind), update_manifest=update)
    return store.manifest(ref)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class Advance:
    """Progress in seconds of market time covered."""

    def __init__(self, progress: Progress, start_us: int) -> None:
        self.progress, self.mark = progress, start_us

    def to(self, us: int) -> None:
        if us > self.mark:
            self.progress.advance((us - self.mark) / 1e6)
            self.mark = us
