"""The lines of capture files before any JSON is read: origin, receive time, kind, ``seq``.

Each line of ``<receive time> <JSON message>`` becomes a row with its file (``_file``), its
1-based line number (``_line``), its index over all the files of the stream in order (``_n``),
the receive time in microseconds (``_ts_local_us``), the message text (``body``) and its kind
(``_kind``: trade, aggTrade, depth, bookTicker, snapshot). ``number`` then drops lines whose
message repeats an earlier one (overlapping files of one stream) and gives the rest ``seq``.

Units: the receive time's unit (ns, us or ms since epoch) is detected per line from its digit
count (19, 16, 13) and must be the same within a file; ``_ts_local_us`` is microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from botclave_cli.data.importers import badrows
from botclave_cli.data.importers.badrows import FILE, LINE, BadLine
from botclave_cli.data.importers.files import TextFile, lines_of
from botclave_cli.errors import UsageError

S = pl.String()
#: digit count of an epoch timestamp -> (unit, divisor to us, multiplier to us)
UNIT_BY_DIGITS = {19: ("ns", 1000, 1), 16: ("us", 1, 1), 13: ("ms", 1, 1000)}
#: kinds of message the capture parser reads (the stream suffix or the raw event's ``e``)
KINDS = ("trade", "aggTrade", "depth", "bookTicker", "snapshot")
#: raw (not combined) stream events, recognised by their ``e`` field
RAW_EVENTS = {
    "trade": "trade",
    "aggTrade": "aggTrade",
    "depthUpdate": "depth",
    "bookTicker": "bookTicker",
}


def read_lines(texts: Sequence[TextFile], labels: Sequence[str] | None = None) -> pl.DataFrame:
    """One row per line: _file (``labels`` or the file names), _line, _n, text, _last_cut."""
    if not texts:
        raise UsageError("no capture file given")
    frames: list[pl.DataFrame] = []
    offset = 0
    for i, tf in enumerate(texts):
        lines = lines_of(tf.text)
        cut = [False] * (len(lines) - 1) + [tf.truncated_tail] if lines else []
        frames.append(
            pl.DataFrame(
                {
                    FILE: pl.Series([labels[i] if labels else tf.name] * len(lines), dtype=S),
                    LINE: pl.int_range(1, len(lines) + 1, eager=True, dtype=pl.Int64),
                    "_n": pl.int_range(offset, offset + len(lines), eager=True, dtype=pl.Int64),
                    "text": pl.Series(lines, dtype=S),
                    "_last_cut": pl.Series(cut, dtype=pl.Boolean),
                }
            )
        )
        offset += len(lines)
    return pl.concat(frames)


def receive_time(lines: pl.DataFrame) -> tuple[pl.DataFrame, list[BadLine]]:
    """Split off the receive time, detect its unit per line, require one unit per file."""
    head = pl.col("text").str.extract(r"^(\d+) ", 1)
    df = (
        lines.with_columns(
            head.alias("_head"),
            pl.col("text").str.replace(r"^\d+ ", "").alias("body"),
        )
        .with_columns(
            pl.col("_head")
            .str.len_chars()
            .replace_strict(
                {d: u for d, (u, _, _) in UNIT_BY_DIGITS.items()},
                default=None,
                return_dtype=pl.String,
            )
            .alias("_unit"),
        )
        .with_columns(pl.col("_unit").drop_nulls().mode().first().over(FILE).alias("_file_unit"))
    )
    ns, us_, ms = (pl.col("_head").cast(pl.Int64, strict=False),) * 3
    to_us = (
        pl.when(pl.col("_unit") == "ns")
        .then(ns // 1000)
        .when(pl.col("_unit") == "us")
        .then(us_)
        .otherwise(ms * 1000)
    )
    reason = (
        pl.when(pl.col("text").str.strip_chars() == "")
        .then(pl.lit("empty line"))
        .when(pl.col("_head").is_null())
        .then(pl.lit("no receive time before the message"))
        .when(pl.col("_unit").is_null())
        .then(
            pl.format(
                "receive time {} is not ns/us/ms since epoch (19/16/13 digits)", pl.col("_head")
            )
        )
        .when(pl.col("_unit") != pl.col("_file_unit"))
        .then(
            pl.format(
                "receive time in {} but the file uses {}", pl.col("_unit"), pl.col("_file_unit")
            )
        )
    )
    df = df.with_columns(to_us.alias("_ts_local_us"), reason.alias("_reason"))
    df = df.with_columns(
        pl.coalesce(pl.col("_reason"), badrows.ts_in_range("_ts_local_us", "receive time")).alias(
            "_reason"
        )
    )
    bad = badrows.bad_lines_of(df.filter(pl.col("_reason").is_not_null()))
    good = df.filter(pl.col("_reason").is_null()).drop("_reason", "_head", "_file_unit", "text")
    return good, bad


def number(lines: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Drop lines whose message repeats an earlier line's, number the rest: (lines, dropped).

    ``seq`` is ``_n`` less the repeats before the line, so a stream read from overlapping files
    gets the numbers it gets from one file holding each message once. Bad lines dropped earlier
    keep their place (``_n`` counts them). Every Binance message carries its own id (trade id,
    update id, snapshot ``lastUpdateId``), so two equal messages are one message received twice.
    """
    repeat = ~pl.col("body").is_first_distinct()
    marked = lines.with_columns(repeat.alias("_repeat"))
    dropped = int(marked["_repeat"].sum())
    if not dropped:
        return lines.with_columns(pl.col("_n").alias("seq")), 0
    out = marked.with_columns(
        (pl.col("_n") - pl.col("_repeat").cast(pl.Int64).cum_sum()).alias("seq")
    ).filter(~pl.col("_repeat"))
    return out.drop("_repeat"), dropped


def classify(lines: pl.DataFrame) -> pl.DataFrame:
    """``_kind``: trade/aggTrade/depth/bookTicker/snapshot; ``_reason`` for anything else."""
    # the stream name opens a Binance envelope; look further only where the prefix lacks it
    stream_re = r'"stream"\s*:\s*"([^"]*)"'
    df = lines.with_columns(
        pl.col("body").str.slice(0, 96).str.extract(stream_re, 1).alias("_stream")
    )
    late = df.filter(
        pl.col("_stream").is_null() & pl.col("body").str.contains('"stream"', literal=True)
    )
    if late.height:
        late = late.select("_n", pl.col("body").str.extract(stream_re, 1).alias("_stream"))
        df = df.update(late, on="_n")
    stream = pl.col("_stream")
    head = pl.col("body").str.slice(0, 64)
    event = head.str.extract(r'^\{\s*"e"\s*:\s*"(\w+)"', 1)
    kind = (
        pl.when(stream.is_not_null())
        .then(stream.str.extract(r"@([A-Za-z]+)", 1))
        .when(head.str.contains(r'^\{\s*"lastUpdateId"\s*:'))
        .then(pl.lit("snapshot"))
        .otherwise(event.replace_strict(RAW_EVENTS, default=None, return_dtype=pl.String))
    )
    reason = (
        pl.when(pl.col("_kind").is_null() & pl.col("_last_cut"))
        .then(pl.lit("truncated last line"))
        .when(pl.col("_kind").is_null())
        .then(pl.lit("not a Binance stream message or depth snapshot"))
        .when(~pl.col("_kind").is_in(KINDS))
        .then(pl.format("unsupported stream {}", stream))
    )
    return df.with_columns(kind.alias("_kind")).with_columns(reason.alias("_reason"))
