"""The files of one ``date=`` partition: a compacted ``data.parquet`` plus appended part files.

Why parts: a writer that adds rows all day (the live recorder) must not rewrite the whole day's
file on every flush - that costs time and memory growing with the day. ``append`` writes the new
rows as ``part-<n>.parquet`` (n increasing) and ``compact`` later folds the parts into
``data.parquet``. Both writes are atomic (temporary file, then rename).

A crash between writing the compacted file and deleting the parts it folded in must not show
rows twice: ``data.parquet`` records in its Parquet key-value metadata the highest part number
it contains (``botclave.parts_upto``), and readers ignore parts up to that number (the next
compaction deletes them).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import polars as pl

from botclave_cli.data import atomic
from botclave_cli.data.schemas import normalise, spec

PARTITION_FILE = "data.parquet"
PART_PREFIX = "part-"
PARTS_UPTO = "botclave.parts_upto"


def part_number(path: Path) -> int:
    return int(path.stem.removeprefix(PART_PREFIX))


def parts_upto(compacted: Path) -> int:
    """Highest part number folded into ``data.parquet`` (-1: none, or no such file)."""
    if not compacted.exists():
        return -1
    try:
        return int(pl.read_parquet_metadata(compacted).get(PARTS_UPTO, -1))
    except (OSError, pl.exceptions.PolarsError):
        return -1  # a corrupt file: its reader reports it; no part is taken as folded in


def all_parts(day_dir: Path) -> list[Path]:
    """Every part file in the folder, in part-number order (folded-in leftovers included)."""
    return sorted(day_dir.glob(f"{PART_PREFIX}*.parquet"), key=part_number)


def live_files(day_dir: Path) -> list[Path]:
    """The files that hold the partition's rows: ``data.parquet`` first, then the parts in
    order. Empty when the partition does not exist."""
    parts = all_parts(day_dir)
    return _live(day_dir, parts, parts_upto(day_dir / PARTITION_FILE) if parts else -1)


def _live(day_dir: Path, parts: list[Path], folded: int) -> list[Path]:
    """``data.parquet`` (if any) and the parts numbered past ``folded``."""
    compacted = day_dir / PARTITION_FILE
    unfolded = [p for p in parts if part_number(p) > folded]
    return [compacted, *unfolded] if compacted.exists() else unfolded


def _highest(day_dir: Path, parts: list[Path]) -> int:
    """The highest part number the partition has used (folded in or still a file); -1: none."""
    return max([parts_upto(day_dir / PARTITION_FILE), *(part_number(p) for p in parts)])


def row_count(files: list[Path]) -> int:
    """Rows in the files, from their Parquet footers (no data read)."""
    if not files:
        return 0
    return int(pl.scan_parquet([str(p) for p in files]).select(pl.len()).collect().item())


def read(day_dir: Path, kind: str) -> pl.DataFrame:
    files = live_files(day_dir)
    if not files:
        return pl.DataFrame(schema=spec(kind).schema)
    return pl.read_parquet([str(p) for p in files])


def replace(day_dir: Path, df: pl.DataFrame) -> None:
    """Write ``df`` as the partition's whole content (``data.parquet``) and drop its parts."""
    parts = all_parts(day_dir)
    upto = _highest(day_dir, parts)
    with atomic.atomic_path(day_dir / PARTITION_FILE) as tmp:
        df.write_parquet(tmp, compression="zstd", statistics=True,
                         metadata={PARTS_UPTO: str(upto)} if upto >= 0 else None)
    _unlink(parts)


def append(day_dir: Path, df: pl.DataFrame) -> Path:
    """Write ``df`` (already normalised) as the partition's next part file; returns its path."""
    number = _highest(day_dir, all_parts(day_dir)) + 1
    target = day_dir / f"{PART_PREFIX}{number:06d}.parquet"
    atomic.write_parquet(target, df)
    return target


def compact(day_dir: Path, kind: str) -> bool:
    """Fold the parts into ``data.parquet``; False when there was nothing to fold.

    When the files follow one another in the kind's sort order (the recorder's case: each
    flush holds later rows), the files are streamed into the new file (memory stays at one row
    group, whatever the day's size); otherwise they are merged in memory (dedupe and sort).
    """
    parts = all_parts(day_dir)
    if not parts:
        return False
    folded = parts_upto(day_dir / PARTITION_FILE)
    files = _live(day_dir, parts, folded)
    metadata = {PARTS_UPTO: str(max(folded, part_number(parts[-1])))}
    if files:
        with atomic.atomic_path(day_dir / PARTITION_FILE) as tmp:
            if in_sort_order(files, kind):
                pl.scan_parquet([str(p) for p in files]).sink_parquet(
                    tmp, compression="zstd", metadata=metadata, maintain_order=True)
            else:
                merged = normalise(pl.read_parquet([str(p) for p in files]), kind)
                merged.write_parquet(tmp, compression="zstd", metadata=metadata)
    _unlink(parts)
    return True


def in_sort_order(files: list[Path], kind: str) -> bool:
    """Whether each file's first sort key is strictly after the previous file's last one.

    Files written through the store are each deduped and sorted, so strictly increasing
    boundaries mean the concatenation is deduped and sorted too.
    """
    cols = list(spec(kind).sort)
    previous_last: tuple | None = None
    for path in files:
        first, last = _end_keys(path, cols)
        if first is None or last is None:
            continue
        if previous_last is not None and not _sort_key(previous_last) < _sort_key(first):
            return False
        previous_last = last
    return True


def _end_keys(path: Path, cols: list[str]) -> tuple[tuple | None, tuple | None]:
    """The first and the last row's sort key. Polars pushes ``head``/``tail`` down to the first
    and the last row group (3.5 ms and no memory on a 20M-row file, measured), so a big day's
    file is not read."""
    keys = pl.scan_parquet(path).select(cols)
    first, last = keys.head(1).collect().rows(), keys.tail(1).collect().rows()
    return (first[0] if first else None), (last[0] if last else None)


def _sort_key(row: tuple) -> tuple:
    """A row's sort key with nulls last (as the store sorts: ``nulls_last=True``)."""
    return tuple((value is None, value if value is not None else 0) for value in row)


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
