"""The manifest of a dataset: where its rows came from, what they cover, and what is missing.

Stored as ``manifest.json`` at the dataset's root (beside the ``date=`` partitions), written
atomically after the data. Times are integers in microseconds since epoch (UTC), like the store.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from botclave_cli.data import atomic
from botclave_cli.data.schemas import SCHEMA_VERSION
from botclave_cli.errors import DataError

MANIFEST_NAME = "manifest.json"


class Interval(BaseModel):
    """Half-open time interval [start_us, end_us) in microseconds since epoch (UTC)."""

    model_config = ConfigDict(frozen=True)

    start_us: int
    end_us: int


class Gap(BaseModel):
    """Something missing from a dataset: ids, candles, a book sequence break, or time."""

    kind: Literal["trade_id", "candle", "book_sequence", "time"]
    start: int = Field(..., description="first missing id, or time (us) where it starts")
    end: int = Field(..., description="last missing id, or time (us) where it ends")
    detail: str = ""


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    kind: str
    exchange: str
    market: str
    symbol: str
    source: str = Field(..., description="ccxt:<exchange>, binance-archive, tardis, capture, synth")
    sources: list[str] = Field(default_factory=list, description="files or endpoints read")
    tick_size: float | None = None
    lot_size: float | None = None
    tick_source: Literal["exchange", "config", "option", "inferred", "synth"] | None = None
    qty_unit: Literal["base", "contracts"] = "base"
    contract_size: float | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="derived kinds' parameters")
    coverage: list[Interval] = Field(default_factory=list)
    row_count: int = 0
    partitions: dict[str, int] = Field(default_factory=dict, description="date -> rows")
    gaps: list[Gap] = Field(default_factory=list)
    cursor: dict[str, Any] = Field(default_factory=dict, description="resume state of a fetch")
    created_us: int = Field(default_factory=lambda: int(time.time() * 1e6))
    updated_us: int = Field(default_factory=lambda: int(time.time() * 1e6))

    def add_coverage(self, start_us: int, end_us: int) -> None:
        added = Interval(start_us=start_us, end_us=end_us)
        self.coverage = merge_intervals([*self.coverage, added])

    def covers(self, start_us: int, end_us: int) -> bool:
        return any(i.start_us <= start_us and end_us <= i.end_us for i in self.coverage)

    def uncovered(self, start_us: int, end_us: int) -> list[Interval]:
        """Parts of [start_us, end_us) that the coverage does not include."""
        holes, cursor = [], start_us
        for i in self.coverage:
            if i.end_us <= cursor or i.start_us >= end_us:
                continue
            if i.start_us > cursor:
                holes.append(Interval(start_us=cursor, end_us=i.start_us))
            cursor = max(cursor, i.end_us)
        if cursor < end_us:
            holes.append(Interval(start_us=cursor, end_us=end_us))
        return holes


def merge_intervals(intervals: list[Interval]) -> list[Interval]:
    """Sorted union of half-open intervals; touching intervals merge."""
    merged: list[Interval] = []
    for i in sorted(intervals, key=lambda x: (x.start_us, x.end_us)):
        if i.end_us <= i.start_us:
            continue
        if merged and i.start_us <= merged[-1].end_us:
            last = merged[-1]
            merged[-1] = Interval(start_us=last.start_us, end_us=max(last.end_us, i.end_us))
        else:
            merged.append(i)
    return merged


def read_manifest(dataset_dir: Path) -> Manifest | None:
    path = dataset_dir / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        return Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise DataError(f"{path}: corrupt manifest ({type(exc).__name__})") from None


def write_manifest(dataset_dir: Path, manifest: Manifest) -> None:
    manifest.updated_us = int(time.time() * 1e6)
    atomic.write_text(dataset_dir / MANIFEST_NAME, manifest.model_dump_json(indent=2) + "\n")
