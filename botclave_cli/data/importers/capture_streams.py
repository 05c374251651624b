"""Capture files given together, grouped by stream and put in order.

A stream is one exchange market and symbol (``spot``/``usdm``/``coinm`` + ``BTCUSDT``), read from
the messages, never from the file name. A collector writes one file per stream and per day (and
may start again, overlapping the previous file): the files of a stream are read as one
continuing capture, ordered by their first exchange event time (us; the receive time, then the
name, break ties). Only each file's head is read to tell its stream and first time; the whole
file is read where the head does not tell.

Between two files of a stream, exchange time that no message covers for longer than
``max_file_gap_ms`` is a ``time`` gap: the collector was not recording.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from botclave_cli.data.importers import capture_decode as decode
from botclave_cli.data.importers import capture_lines
from botclave_cli.data.importers.badrows import FILE
from botclave_cli.data.importers.files import TextFile, read_head, read_text
from botclave_cli.data.manifest import Gap
from botclave_cli.errors import UsageError

#: exchange time without any message between two files of a stream that counts as a gap (ms)
DEFAULT_MAX_FILE_GAP_MS = 1000


@dataclass(frozen=True)
class StreamFile:
    """One input file: its label in reports, its stream (market, exchange symbol) and its first
    exchange event time and receive time (us; None where unknown)."""

    path: Path
    label: str
    market: str | None = None
    raw_symbol: str | None = None
    first_us: int | None = None
    first_local_us: int | None = None



def in_time_order(files: list[StreamFile]) -> list[StreamFile]:
    """Files of one stream by first exchange time, then receive time, then label.

    A file without any exchange time (a spot snapshot, spot bookTickers) is placed by its
    receive time moved by the stream's clock offset (the median of exchange minus receive time
    over the files that have both), so that it is not compared raw with the other clock.
    """
    offsets = sorted(
        f.first_us - f.first_local_us
        for f in files
        if f.first_us is not None and f.first_local_us is not None
    )
    offset = offsets[len(offsets) // 2] if offsets else 0

    def key(f: StreamFile) -> tuple[int, int, str]:
        local = f.first_local_us or 0
        return (f.first_us if f.first_us is not None else local + offset, local, f.label)

    return sorted(files, key=key)


def labels(paths: Sequence[Path]) -> list[str]:
    """File names, or the whole path where two files of the input share a name."""
    counts = Counter(p.name for p in paths)
    return [p.name if counts[p.name] == 1 else str(p) for p in paths]


def peek(path: Path, label: str) -> StreamFile:
    """Market, symbol and first times of a capture file, from its head where that tells them."""
    text, whole = read_head(path)
    found = _look(path, label, text)
    if not whole and (found.raw_symbol is None or found.market is None):
        found = _look(path, label, read_text(path))
    return found


def _look(path: Path, label: str, text: TextFile) -> StreamFile:
    lines, _ = capture_lines.receive_time(capture_lines.read_lines([text], [label]))
    lines = capture_lines.classify(lines)
    lines = lines.filter(pl.col("_reason").is_null())
    decoded, _ = decode.decode_all(lines)
    symbols = decode.symbols_of(lines, decoded)
    raw = decode.raw_symbol(symbols, label, "") or None
    return StreamFile(
        path,
        label,
        decode.detect_market(decoded, raw or ""),
        raw,
        decode.first_event_us(decoded),
        lines["_ts_local_us"].min() if lines.height else None,  # type: ignore[arg-type]
    )


def group(
    paths: Sequence[Path | str], market: str | None = None, symbol: str | None = None
) -> list[list[StreamFile]]:
    """The files by stream (sorted by market, symbol), each stream's files in time order.

    ``market`` overrides the detected market of every file; ``symbol`` (a unified symbol) says
    that all the files are one stream of that symbol (capture.py then requires one symbol and
    one market in their messages). A single file is one stream unread here.
    """
    given = [Path(p) for p in paths]
    if not given:
        raise UsageError("no capture file given")
    names = labels(given)
    if len(given) == 1:
        return [[StreamFile(given[0], names[0])]]
    files = [peek(p, n) for p, n in zip(given, names, strict=True)]
    if symbol is not None:
        return [in_time_order(files)]
    streams: dict[tuple[str, str], list[StreamFile]] = {}
    for f in files:
        streams.setdefault(_key(f, market), []).append(f)
    return [in_time_order(streams[k]) for k in sorted(streams)]


def _key(f: StreamFile, market: str | None) -> tuple[str, str]:
    if f.raw_symbol is None:
        raise UsageError(f"{f.label}: no stream name or message tells the symbol; pass --symbol")
    mkt = market or f.market
    if mkt is None:
        raise UsageError(f"{f.label}: cannot tell spot from futures; pass --market")
    return mkt, f.raw_symbol


def file_gaps(
    stamps: pl.DataFrame, starts: pl.DataFrame, max_file_gap_ms: float = DEFAULT_MAX_FILE_GAP_MS
) -> list[Gap]:
    """``time`` gaps between consecutive files of one stream.

    ``stamps``: ``seq`` and ``ts_us`` (exchange time, us) of every message; ``starts``: ``_file``
    and ``seq`` of each file's first line, in file order. A gap runs from the latest time of
    the files before to the first time of the next file, when that is more than
    ``max_file_gap_ms`` later (overlapping files have none).
    """
    if starts.height < 2 or stamps.is_empty():
        return []
    order = starts.with_row_index("_k").with_columns(pl.col("_k").cast(pl.Int64)).sort("seq")
    per_file = (
        stamps.sort("seq")
        .join_asof(order, on="seq", strategy="backward")
        .group_by("_k", FILE)
        .agg(pl.col("ts_us").min().alias("lo"), pl.col("ts_us").max().alias("hi"))
        .sort("_k")
        .with_columns(
            pl.col("hi").cum_max().shift(1).alias("before"),
            pl.col(FILE).shift(1).alias("prev_file"),
        )
    )
    holes = per_file.filter(pl.col("lo") - pl.col("before") > max_file_gap_ms * 1000)
    return [
        Gap(
            kind="time",
            start=int(before),
            end=int(lo),
            detail=f"no message between {prev} and {name} ({(lo - before) / 1e6:.3f} s)",
        )
        for before, lo, prev, name in holes.select("before", "lo", "prev_file", FILE).iter_rows()
    ]
