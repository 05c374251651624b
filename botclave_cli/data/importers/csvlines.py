"""CSV files as one row per line, so that every row keeps its 1-based line number.

The archives we read (Binance public data, Tardis.dev) are plain comma-separated text without
quoting, so lines are split by Polars string expressions rather than a CSV reader that would
skip blank lines, renumber rows or fail a whole file on one ragged line.
"""

from __future__ import annotations

import polars as pl

from botclave_cli.data.importers.badrows import FILE, LINE
from botclave_cli.data.importers.files import TextFile, lines_of

FIELDS = "_fields"


def looks_like_header(first_line: str) -> bool:
    """A header's first field is a name, a data row's first field is a number."""
    head = first_line.split(",", 1)[0].strip().strip('"')
    try:
        float(head)
    except ValueError:
        return bool(head)
    return False


def csv_lines(tf: TextFile, header: bool | None = None) -> tuple[pl.DataFrame, list[str] | None]:
    """(frame of ``_file``, ``_line``, ``_fields`` (list of strings), ``_last_cut``; header names).

    ``header=None`` detects it from the first line.
    """
    lines = lines_of(tf.text)
    names: list[str] | None = None
    first = 1
    if lines and (header if header is not None else looks_like_header(lines[0])):
        names = [n.strip().strip('"') for n in lines[0].split(",")]
        lines, first = lines[1:], 2
    n = len(lines)
    df = pl.DataFrame(
        {
            FILE: pl.Series([tf.name] * n, dtype=pl.String),
            LINE: pl.int_range(first, first + n, eager=True).cast(pl.Int64),
            "_text": pl.Series(lines, dtype=pl.String),
            "_last_cut": pl.Series(
                [False] * (n - 1) + [tf.truncated_tail] if n else [], dtype=pl.Boolean
            ),
        }
    )
    df = df.with_columns(pl.col("_text").str.split(",").alias(FIELDS)).drop("_text")
    return df, names


def columns(names: list[str], rename: dict[str, str] | None = None) -> list[pl.Expr]:
    """Field i of each line as column ``names[i]`` (null where the line is too short)."""
    rename = rename or {}
    return [
        pl.col(FIELDS).list.get(i, null_on_oob=True).str.strip_chars().alias(rename.get(n, n))
        for i, n in enumerate(names)
    ]


def short_line(needed: int, names: list[str]) -> pl.Expr:
    """Reason for a line with fewer than ``needed`` fields: the first missing column."""
    count = pl.col(FIELDS).list.len()
    first_missing = count.replace_strict(
        {i: names[i] for i in range(needed)}, default=None, return_dtype=pl.String
    )
    return (
        pl.when(pl.col(FIELDS).list.join(",").str.strip_chars() == "")
        .then(pl.lit("empty line"))
        .when(count < needed)
        .then(
            pl.format(
                f"missing column {{}} (line has {{}} of {needed} fields)", first_missing, count
            )
        )
    )
