"""Dataset checks: missing trade ids, missing candles, book sequence breaks, corrupt files.

Each finder is a pure function over a frame; ``verify_dataset`` runs the ones that fit a kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from botclave_cli.data.manifest import Gap
from botclave_cli.data.schemas import spec
from botclave_cli.data.store import DatasetRef, Store

TIMEFRAME_US = {
    "1s": 1_000_000, "1m": 60_000_000, "3m": 180_000_000, "5m": 300_000_000,
    "15m": 900_000_000, "30m": 1_800_000_000, "1h": 3_600_000_000, "2h": 7_200_000_000,
    "4h": 14_400_000_000, "6h": 21_600_000_000, "8h": 28_800_000_000, "12h": 43_200_000_000,
    "1d": 86_400_000_000,
}


def find_id_gaps(ids: pl.Series) -> list[Gap]:
    """Runs of missing integers in an id sequence (duplicates and order do not matter)."""
    s = ids.drop_nulls().unique().sort()
    frame = pl.DataFrame({"id": s}).with_columns(prev=pl.col("id").shift(1))
    holes = frame.filter(pl.col("id") - pl.col("prev") > 1)
    return [
        Gap(kind="trade_id", start=int(prev) + 1, end=int(cur) - 1,
            detail=f"{int(cur) - int(prev) - 1} id(s) missing")
        for cur, prev in holes.select("id", "prev").iter_rows()
    ]


def find_candle_gaps(ts: pl.Series, step_us: int) -> list[Gap]:
    """Missing candles between consecutive open times (us) on a ``step_us`` grid."""
    us = ts.dt.epoch("us").drop_nulls().unique().sort()
    frame = pl.DataFrame({"t": us}).with_columns(prev=pl.col("t").shift(1))
    holes = frame.filter(pl.col("t") - pl.col("prev") > step_us)
    return [
        Gap(kind="candle", start=int(prev) + step_us, end=int(cur) - step_us,
            detail=f"{(int(cur) - int(prev)) // step_us - 1} candle(s) missing")
        for cur, prev in holes.select("t", "prev").iter_rows()
    ]


def find_book_breaks(diffs: pl.DataFrame, market: str) -> list[Gap]:
    """Sequence breaks between consecutive depth diffs (one row per level, grouped by ``seq``).

    Spot: each diff's first id must be the previous diff's last id + 1. USD-M/COIN-M futures:
    each diff's ``prev_update_id`` (``pu``) must equal the previous diff's last id.
    """
    events = (
        diffs.group_by("seq")
        .agg(pl.first("first_update_id"), pl.first("last_update_id"), pl.first("prev_update_id"))
        .sort("seq")
        .with_columns(prev_last=pl.col("last_update_id").shift(1))
    )
    if market == "spot":
        broken = events.filter(pl.col("first_update_id") != pl.col("prev_last") + 1)
        last_missing = pl.col("first_update_id") - 1
    else:
        broken = events.filter(pl.col("prev_update_id") != pl.col("prev_last"))
        last_missing = pl.col("prev_update_id")
    rows = broken.select("seq", "prev_last", last_missing.alias("last_missing")).iter_rows()
    return [
        Gap(kind="book_sequence", start=int(prev_last) + 1, end=int(last_missing),
            detail=f"diff at seq {seq} does not continue update id {prev_last}")
        for seq, prev_last, last_missing in rows
    ]


@dataclass
class VerifyReport:
    ref: DatasetRef
    rows: int = 0
    partitions: int = 0
    gaps: list[Gap] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.gaps or self.corrupt or self.problems)

    def as_dict(self) -> dict[str, object]:
        return {
            "dataset": str(self.ref), "rows": self.rows, "partitions": self.partitions,
            "gaps": [g.model_dump() for g in self.gaps], "corrupt": self.corrupt,
            "problems": self.problems, "ok": self.ok,
        }


def verify_dataset(store: Store, ref: DatasetRef) -> VerifyReport:
    """Read every partition, check schema and manifest counts, and look for gaps."""
    report = VerifyReport(ref)
    manifest = store.manifest(ref)
    if manifest is None:
        report.problems.append(f"{store.path(ref)}: no manifest")
    frames = []
    expected = spec(ref.kind).schema
    for date, paths in store.partition_files(ref).items():
        day_rows = 0
        for path in paths:
            try:
                frame = pl.read_parquet(path)
            except Exception as exc:  # noqa: BLE001 - any reader failure means a corrupt file
                report.corrupt.append(f"{path}: {type(exc).__name__}")
                continue
            if dict(frame.schema) != expected:
                report.problems.append(f"{path}: schema differs from kind {ref.kind!r}")
                continue
            day_rows += frame.height
            frames.append(frame)
        if manifest is not None and manifest.partitions.get(date) != day_rows:
            report.problems.append(
                f"{paths[0].parent}: {day_rows} rows, manifest says {manifest.partitions.get(date)}"
            )
        report.partitions += 1
        report.rows += day_rows
    if not frames:
        return report
    data = pl.concat(frames)
    kind = spec(ref.kind)
    if kind.sequence_id is not None:
        report.gaps.extend(find_id_gaps(data[kind.sequence_id]))
    if ref.kind == "ohlcv":
        timeframe = dict(ref.levels).get("timeframe", "1m")
        if timeframe in TIMEFRAME_US:
            report.gaps.extend(find_candle_gaps(data["ts"], TIMEFRAME_US[timeframe]))
    if ref.kind == "book_diff":
        report.gaps.extend(find_book_breaks(data, ref.market))
    return report
