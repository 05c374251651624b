"""Raw Binance WebSocket captures: ``<receive time> <JSON message>`` per line.

A capture is one stream even when the collector split it into several files: the files are read
in the order given and ``seq`` is the line index across all of them (0-based), so the REST
snapshot, depth diffs, trades and bookTickers keep their place in the stream. Books are replayed
in ``seq`` order, never re-sorted by a clock (see ../shared/README.md for the sequencing rules).

Units: the receive time's unit (ns, us or ms since epoch) is detected per line from its digit
count (19, 16, 13) and must be the same within a file; ``ts_local`` is stored in microseconds.
``ts`` is the exchange time: trade ``T``, depth ``E``, bookTicker ``E`` (else ``T``, else null),
snapshot ``E`` (futures only; spot snapshots have none). Messages are parsed with Polars'
``json_decode`` per message kind; a line that does not parse is found by bisection, so a clean
capture costs one vectorised decode per kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from botclave_cli.data.importers import badrows
from botclave_cli.data.importers import capture_messages as messages
from botclave_cli.data.importers.badrows import FILE, LINE, BadLine
from botclave_cli.data.importers.files import lines_of, read_text
from botclave_cli.data.importers.symbols import is_coinm, unified_symbol
from botclave_cli.data.schemas import conform, spec
from botclave_cli.errors import DataError, UsageError
from botclave_cli.progress import Progress, or_null

S = pl.String()
LEVELS = pl.List(pl.List(pl.String()))

#: digit count of an epoch timestamp -> (unit, divisor to us, multiplier to us)
UNIT_BY_DIGITS = {19: ("ns", 1000, 1), 16: ("us", 1, 1), 13: ("ms", 1, 1000)}

#: JSON shapes per message kind (scalars decoded as strings, checked and cast afterwards)
DTYPES: dict[str, pl.Struct] = {
    "trade": pl.Struct({"e": S, "s": S, "t": S, "p": S, "q": S, "T": S, "m": S, "M": S, "X": S}),
    "aggTrade": pl.Struct({"e": S, "s": S, "a": S, "p": S, "q": S, "f": S, "l": S, "T": S, "m": S}),
    "depth": pl.Struct({"e": S, "E": S, "s": S, "U": S, "u": S, "pu": S, "b": LEVELS, "a": LEVELS}),
    "bookTicker": pl.Struct(
        {"e": S, "u": S, "s": S, "b": S, "B": S, "a": S, "A": S, "E": S, "T": S}
    ),
}
SNAPSHOT_DTYPE = pl.Struct({"lastUpdateId": S, "E": S, "T": S, "bids": LEVELS, "asks": LEVELS})
#: raw (not combined) stream events, recognised by their ``e`` field
RAW_EVENTS = {
    "trade": "trade",
    "aggTrade": "aggTrade",
    "depthUpdate": "depth",
    "bookTicker": "bookTicker",
}


@dataclass
class Capture:
    """A parsed capture. Frames follow the store schemas of their kinds (see schemas.py).

    ``trades`` and ``agg_trades`` also keep ``seq`` (their place in the stream) so that trades
    can be interleaved with the book.
    """

    market: str
    symbol: str
    local_unit: str
    trades: pl.DataFrame
    book_snapshot: pl.DataFrame
    book_diff: pl.DataFrame
    quotes: pl.DataFrame
    agg_trades: pl.DataFrame
    bad_lines: list[BadLine] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    raw_symbol: str = ""
    lines: int = 0

    def frames(self) -> dict[str, pl.DataFrame]:
        """Non-empty frames by store kind."""
        all_ = {
            "trades": self.trades,
            "agg_trades": self.agg_trades,
            "book_snapshot": self.book_snapshot,
            "book_diff": self.book_diff,
            "quotes": self.quotes,
        }
        return {k: v for k, v in all_.items() if not v.is_empty()}


def read_capture(
    paths: Sequence[Path | str],
    *,
    skip_bad: bool = False,
    market: str | None = None,
    symbol: str | None = None,
    max_disorder_ms: float = badrows.DEFAULT_MAX_DISORDER_MS,
    now_us: int | None = None,
    progress: Progress | None = None,
) -> Capture:
    """Parse capture files (plain or gzip) as one stream.

    ``market``/``symbol`` override detection. Bad lines (garbage, truncated, missing or
    non-numeric fields, negative quantities, timestamps out of range, trades out of order by more
    than ``max_disorder_ms``) raise DataError naming file and line, unless ``skip_bad``: then
    they are dropped and listed in ``bad_lines``.
    """
    prog = or_null(progress)
    prog.start(len(paths) + 5, "parsing capture")
    lines = _read_lines(paths)
    prog.advance(len(paths))
    lines, bad = _receive_time(lines)
    units = lines.select(pl.col("_unit").unique(maintain_order=True))["_unit"].to_list()
    lines = _classify(lines)
    bad += badrows.bad_lines_of(lines.filter(pl.col("_reason").is_not_null()))
    lines = lines.filter(pl.col("_reason").is_null()).drop("_reason")

    decoded: dict[str, pl.DataFrame] = {}
    for kind, dtype in [*DTYPES.items(), ("snapshot", SNAPSHOT_DTYPE)]:
        part, more = _decode(lines.filter(pl.col("_kind") == kind), dtype, kind != "snapshot")
        decoded[kind] = part
        bad += more
    prog.advance(1)

    now = badrows.max_ts_us(now_us) - badrows.MAX_AHEAD_US
    trades, more = messages.trades(decoded["trade"], now, max_disorder_ms)
    bad += more
    aggs, more = messages.agg_trades(decoded["aggTrade"], now, max_disorder_ms)
    bad += more
    prog.advance(1)
    diffs, more = messages.depth(decoded["depth"], now)
    bad += more
    prog.advance(1)
    snaps, more = messages.snapshot(decoded["snapshot"], now)
    bad += more
    quotes, more = messages.tickers(decoded["bookTicker"], now)
    bad += more
    prog.advance(1)

    names = [Path(p).name for p in paths]
    bad = badrows.settle(bad, skip_bad, names)
    bad_seqs = _seqs_of(lines, bad)
    raw_symbol = _raw_symbol(lines, decoded, names, symbol)
    market = market or _detect_market(decoded, raw_symbol, names)
    result = Capture(
        market=market,
        symbol=symbol or unified_symbol(raw_symbol, market),
        local_unit=units[0] if units else "ns",
        trades=_finish(trades, bad_seqs, "trades", keep_seq=True),
        agg_trades=_finish(aggs, bad_seqs, "agg_trades", keep_seq=True),
        book_snapshot=_finish(snaps, bad_seqs, "book_snapshot"),
        book_diff=_finish(diffs, bad_seqs, "book_diff"),
        quotes=_finish(quotes, bad_seqs, "quotes"),
        bad_lines=bad,
        files=names,
        raw_symbol=raw_symbol,
        lines=lines.height + len(bad),
    )
    prog.advance(1)
    return result


def _read_lines(paths: Sequence[Path | str]) -> pl.DataFrame:
    """One row per line: _file, _line (1-based), seq (0-based across files), text."""
    frames: list[pl.DataFrame] = []
    offset = 0
    for path in paths:
        tf = read_text(path)
        lines = lines_of(tf.text)
        frames.append(
            pl.DataFrame(
                {
                    FILE: pl.Series([tf.name] * len(lines), dtype=pl.String),
                    LINE: pl.int_range(1, len(lines) + 1, eager=True),
                    "seq": pl.int_range(offset, offset + len(lines), eager=True),
                    "text": pl.Series(lines, dtype=pl.String),
                    "_last_cut": pl.Series(
                        [False] * (len(lines) - 1) + [tf.truncated_tail] if lines else [],
                        dtype=pl.Boolean,
                    ),
                }
            )
        )
        offset += len(lines)
    if not frames:
        raise UsageError("no capture file given")
    df = pl.concat(frames).with_columns(pl.col(LINE).cast(pl.Int64), pl.col("seq").cast(pl.Int64))
    return df


def _receive_time(lines: pl.DataFrame) -> tuple[pl.DataFrame, list[BadLine]]:
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


def _classify(lines: pl.DataFrame) -> pl.DataFrame:
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
        late = late.select("seq", pl.col("body").str.extract(stream_re, 1).alias("_stream"))
        df = df.update(late, on="seq")
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
    known = [*DTYPES, "snapshot"]
    reason = (
        pl.when(pl.col("_kind").is_null() & pl.col("_last_cut"))
        .then(pl.lit("truncated last line"))
        .when(pl.col("_kind").is_null())
        .then(pl.lit("not a Binance stream message or depth snapshot"))
        .when(~pl.col("_kind").is_in(known))
        .then(pl.format("unsupported stream {}", stream))
    )
    return df.with_columns(kind.alias("_kind")).with_columns(reason.alias("_reason"))


def _json_decode(bodies: pl.Series, dtype: pl.DataType) -> tuple[pl.Series, list[int]]:
    """Decode JSON strings; the indexes of strings that do not decode are found by bisection."""
    try:
        return bodies.str.json_decode(dtype), []
    except pl.exceptions.PolarsError:
        if len(bodies) == 1:
            return pl.Series(bodies.name, [None], dtype=dtype), [0]
    mid = len(bodies) // 2
    left, lbad = _json_decode(bodies[:mid], dtype)
    right, rbad = _json_decode(bodies[mid:], dtype)
    return left.append(right), lbad + [mid + i for i in rbad]


def _decode(
    part: pl.DataFrame, dtype: pl.Struct, enveloped: bool
) -> tuple[pl.DataFrame, list[BadLine]]:
    """Decode one kind's bodies into columns; the message fields become top-level columns."""
    if part.is_empty():
        return part.with_columns(pl.lit(None, dtype=dtype).alias("msg")).unnest("msg"), []
    envelope = pl.Struct({"data": dtype}) if enveloped else dtype
    bodies = part["body"]
    if enveloped and part["_stream"].null_count():
        # raw events are wrapped so that both shapes decode with one dtype
        bodies = part.select(
            pl.when(pl.col("_stream").is_null())
            .then(pl.format('{{"data":{}}}', pl.col("body")))
            .otherwise(pl.col("body"))
        ).to_series()
    msgs, failed = _json_decode(bodies, envelope)
    if enveloped:
        msgs = msgs.struct.field("data")
    out = part.with_columns(msgs.alias("msg"))
    bad: list[BadLine] = []
    if failed:
        rows = out[failed]
        bad = [
            BadLine(f, n, "truncated last line" if cut else "malformed JSON message")
            for f, n, cut in rows.select(FILE, LINE, "_last_cut").iter_rows()
        ]
        out = out.with_row_index("_i").filter(~pl.col("_i").is_in(failed)).drop("_i")
    return out.drop("body").unnest("msg"), bad


def _seqs_of(lines: pl.DataFrame, bad: list[BadLine]) -> pl.Series:
    """``seq`` of every bad line (a diff with one bad level loses all its rows)."""
    if not bad:
        return pl.Series("seq", [], dtype=pl.Int64)
    keys = pl.DataFrame(
        {FILE: [b.file for b in bad], LINE: [b.line for b in bad]},
        schema={FILE: pl.String, LINE: pl.Int64},
    )
    return lines.join(keys, on=[FILE, LINE], how="semi")["seq"]


def _finish(
    df: pl.DataFrame, bad_seqs: pl.Series, kind: str, keep_seq: bool = False
) -> pl.DataFrame:
    if bad_seqs.len():
        df = df.filter(~pl.col("seq").is_in(bad_seqs.implode()))
    out = conform(df, kind)
    if keep_seq and "seq" not in out.columns:
        out = out.with_columns(df["seq"])
    # stream order; within a message the store's own order, so memory and disk agree
    return out.sort(
        list(spec(kind).sort) if "seq" in spec(kind).sort else ["seq"], maintain_order=True
    )


def _raw_symbol(
    lines: pl.DataFrame, decoded: dict[str, pl.DataFrame], names: list[str], override: str | None
) -> str:
    """The one exchange symbol of the capture: stream names (``btcusdt@trade``) and ``s`` fields."""
    parts = [lines.select(pl.col("_stream").str.extract(r"^([^@]+)@", 1).alias("s"))]
    parts += [
        df.select(pl.col("s").cast(pl.String)) for df in decoded.values() if "s" in df.columns
    ]
    found = (
        pl.concat(parts)
        .select(pl.col("s").str.to_uppercase().drop_nulls().unique())
        .to_series()
        .sort()
        .to_list()
    )
    if len(found) > 1:
        raise DataError(
            f"{names[0]}: capture holds several symbols ({', '.join(found)}); import one each"
        )
    if not found and override is None:
        raise UsageError(f"{names[0]}: no stream name or message tells the symbol; pass --symbol")
    return found[0] if found else ""


def _detect_market(decoded: dict[str, pl.DataFrame], raw_symbol: str, names: list[str]) -> str:
    """spot, usdm or coinm: futures depth diffs carry ``pu``; futures trades carry ``X``."""
    futures = None
    depth = decoded["depth"]
    if depth.height:
        futures = bool(depth["pu"].is_not_null().any())
    elif decoded["trade"].height:
        trades = decoded["trade"]
        if trades["X"].is_not_null().any():
            futures = True
        elif trades["M"].is_not_null().any():
            futures = False
    elif decoded["bookTicker"].height:
        futures = bool(decoded["bookTicker"]["e"].is_not_null().any())
    if futures is None:
        raise UsageError(f"{names[0]}: cannot tell spot from futures; pass --market")
    if not futures:
        return "spot"
    return "coinm" if is_coinm(raw_symbol) else "usdm"
