"""Bad rows: which input lines an importer refuses, and why.

Every importer turns its input into frames that carry the origin of each row in two private
columns, ``_file`` (file name) and ``_line`` (1-based line number in that file). The checks here
are Polars expressions that give a reason string for a bad row and null for a good one; the
first failing check names the row. Without ``skip_bad`` the first bad row stops the import with
a DataError naming file, line and reason (so nothing is written); with it, good rows go on and
the bad ones are collected for the report written beside the dataset.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from botclave_cli.errors import DataError

FILE = "_file"
LINE = "_line"

#: earliest plausible exchange timestamp (us): nothing we import predates 2010
MIN_TS_US = int(dt.datetime(2010, 1, 1, tzinfo=dt.UTC).timestamp() * 1_000_000)
#: how far ahead of the wall clock a timestamp may be (us)
MAX_AHEAD_US = 86_400 * 1_000_000
#: default tolerance for a trade behind the latest earlier trade (ms), ``--max-disorder``
DEFAULT_MAX_DISORDER_MS = 1000


@dataclass(frozen=True, order=True)
class BadLine:
    """One refused input line: file name, 1-based line number, reason."""

    file: str
    line: int
    reason: str


def max_ts_us(now_us: int | None = None) -> int:
    """Latest accepted timestamp (us): one day after ``now_us`` (default: the wall clock)."""
    return (now_us if now_us is not None else int(time.time() * 1_000_000)) + MAX_AHEAD_US


def numeric(raw: str, name: str | None = None) -> pl.Expr:
    """Reason when the string column ``raw`` is missing or not a number."""
    label = name or raw
    value = pl.col(raw).cast(pl.Float64, strict=False)
    return (
        pl.when(pl.col(raw).is_null())
        .then(pl.lit(f"missing {label}"))
        .when(value.is_null() | value.is_nan())
        .then(pl.format(f"non-numeric {label} {{}}", pl.col(raw).str.slice(0, 30)))
    )


def integer(raw: str, name: str | None = None) -> pl.Expr:
    """Reason when the string column ``raw`` is missing or not an integer."""
    label = name or raw
    return (
        pl.when(pl.col(raw).is_null())
        .then(pl.lit(f"missing {label}"))
        .when(pl.col(raw).cast(pl.Int64, strict=False).is_null())
        .then(pl.format(f"non-integer {label} {{}}", pl.col(raw).str.slice(0, 30)))
    )


def non_negative(raw: str, name: str | None = None) -> pl.Expr:
    """Reason when the numeric string column ``raw`` is negative."""
    label = name or raw
    return pl.when(pl.col(raw).cast(pl.Float64, strict=False) < 0).then(
        pl.format(f"negative {label} {{}}", pl.col(raw))
    )


def ts_in_range(us_col: str, name: str, now_us: int | None = None) -> pl.Expr:
    """Reason when the integer microsecond column ``us_col`` is before 2010 or > 1 day ahead."""
    high = max_ts_us(now_us)
    us = pl.col(us_col).cast(pl.Int64, strict=False)
    return (
        pl.when(us < MIN_TS_US)
        .then(pl.lit(f"{name} before 2010-01-01"))
        .when(us > high)
        .then(pl.lit(f"{name} more than a day ahead of now"))
    )


def disorder(ts_us_col: str, max_disorder_ms: float, over: str | None = None) -> pl.Expr:
    """Reason when a trade's time lies more than ``max_disorder_ms`` behind an earlier trade.

    "Earlier trade" is the latest time seen on the rows above (a running maximum), so one trade
    stamped far in the past is refused alone instead of dragging its successors with it.
    Rows must already be in input order; ``over`` restarts the check per group (e.g. per file).
    """
    prev_max = pl.col(ts_us_col).shift(1).cum_max()
    if over is not None:
        prev_max = prev_max.over(over)
    behind = prev_max - pl.col(ts_us_col)
    return pl.when(behind > max_disorder_ms * 1000).then(
        pl.format(
            f"trade time {{}} ms behind an earlier trade (--max-disorder {max_disorder_ms:g})",
            (behind / 1000).round(3),
        )
    )


def first_reason(checks: Sequence[pl.Expr]) -> pl.Expr:
    """The first non-null reason among ``checks`` (null: the row is good)."""
    if not checks:
        return pl.lit(None, dtype=pl.String)
    return (
        pl.coalesce([c.cast(pl.String) for c in checks])
        if len(checks) > 1
        else checks[0].cast(pl.String)
    )


def split_bad(df: pl.DataFrame, checks: Sequence[pl.Expr]) -> tuple[pl.DataFrame, list[BadLine]]:
    """Split ``df`` into good rows and BadLines (one per bad input line, first reason wins)."""
    if df.is_empty() or not checks:
        return df, []
    marked = df.with_columns(first_reason(checks).alias("_reason"))
    bad = marked.filter(pl.col("_reason").is_not_null())
    if bad.is_empty():
        return df, []
    good = marked.filter(pl.col("_reason").is_null()).drop("_reason")
    return good, bad_lines_of(bad)


def bad_lines_of(bad: pl.DataFrame) -> list[BadLine]:
    """BadLines of a frame with ``_file``, ``_line``, ``_reason`` (one per line, first reason)."""
    firsts = bad.select(FILE, LINE, "_reason").unique(
        subset=[FILE, LINE], keep="first", maintain_order=True
    )
    return [BadLine(f, int(n), r) for f, n, r in firsts.iter_rows()]


def settle(bad: Iterable[BadLine], skip_bad: bool, files: Sequence[str] = ()) -> list[BadLine]:
    """Raise on the first bad line unless ``skip_bad``; return them in (input file, line) order.

    ``files`` gives the input order of the file names (others sort after them, by name).
    """
    rank = {name: i for i, name in enumerate(files)}
    lines = sorted(bad, key=lambda b: (rank.get(b.file, len(rank)), b.file, b.line, b.reason))
    if lines and not skip_bad:
        first = lines[0]
        more = (
            f" (and {len(lines) - 1} more bad row(s); --skip-bad to import the rest)"
            if len(lines) > 1
            else " (--skip-bad to import the rest)"
        )
        raise DataError(f"{first.file}:{first.line}: {first.reason}{more}")
    return lines


def report_frame(bad: Sequence[BadLine]) -> pl.DataFrame:
    """The bad-rows report as a frame: file, line, reason."""
    return pl.DataFrame(
        {
            "file": [b.file for b in bad],
            "line": [b.line for b in bad],
            "reason": [b.reason for b in bad],
        },
        schema={"file": pl.String, "line": pl.Int64, "reason": pl.String},
    )
