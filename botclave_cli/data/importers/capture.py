"""Raw Binance WebSocket captures: ``<receive time> <JSON message>`` per line.

Files given together are grouped by stream (market + symbol, from the messages) and each
stream's files are read in time order as one continuing capture (capture_streams.py): ``seq`` is
the line index across the stream's files (0-based), so the REST snapshot, depth diffs, trades
and bookTickers keep their place in the stream, and a file that continues the previous one
without a snapshot keeps the book in sync. A message that repeats an earlier one of its stream
(overlapping files) is read once. Streams never see one another: each has its own ``seq``, its
own disorder check and its own book sequence. Books are replayed in ``seq`` order, never
re-sorted by a clock (see ../shared/README.md for the sequencing rules).

``ts_local`` is the receive time in microseconds (its unit in the file, ns/us/ms, is detected:
capture_lines.py). ``ts`` is the exchange time: trade ``T``, depth ``E``, bookTicker ``E`` (else
``T``, else null), snapshot ``E`` (futures only; spot snapshots have none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from botclave_cli.data.importers import badrows, capture_lines, capture_streams
from botclave_cli.data.importers import capture_decode as decode
from botclave_cli.data.importers import capture_messages as messages
from botclave_cli.data.importers.badrows import FILE, LINE, BadLine
from botclave_cli.data.importers.capture_streams import DEFAULT_MAX_FILE_GAP_MS, StreamFile
from botclave_cli.data.importers.files import read_text
from botclave_cli.data.importers.symbols import unified_symbol
from botclave_cli.data.manifest import Gap
from botclave_cli.data.schemas import conform, spec
from botclave_cli.errors import DataError, UsageError
from botclave_cli.progress import Progress, or_null


@dataclass
class Capture:
    """A parsed capture of one stream. Frames follow the store schemas of their kinds.

    ``trades`` and ``agg_trades`` also keep ``seq`` (their place in the stream) so that trades
    can be interleaved with the book. ``files`` are in stream order; ``repeated_lines`` counts
    the lines dropped as repeats of earlier ones; ``time_gaps`` are the gaps between files.
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
    repeated_lines: int = 0
    time_gaps: list[Gap] = field(default_factory=list)

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


def read_captures(
    paths: Sequence[Path | str],
    *,
    skip_bad: bool = False,
    market: str | None = None,
    symbol: str | None = None,
    max_disorder_ms: float = badrows.DEFAULT_MAX_DISORDER_MS,
    max_file_gap_ms: float = DEFAULT_MAX_FILE_GAP_MS,
    now_us: int | None = None,
    progress: Progress | None = None,
) -> list[Capture]:
    """Parse capture files (plain or gzip) of any streams: one Capture per stream.

    ``market``/``symbol`` override detection (``symbol``: the files are one stream). Bad lines
    (garbage, truncated, missing or non-numeric fields, negative quantities, timestamps out of
    range, trades more than ``max_disorder_ms`` behind an earlier trade of their stream) raise
    DataError naming file and line before any stream is returned, unless ``skip_bad``: then
    they are dropped and listed in ``bad_lines``.
    """
    prog = or_null(progress)
    streams = capture_streams.group(paths, market, symbol)
    prog.start(sum(len(s) for s in streams) + 5 * len(streams), "parsing captures")
    return [
        _read_stream(
            files, skip_bad, market, symbol, max_disorder_ms, max_file_gap_ms, now_us, prog
        )
        for files in streams
    ]


def read_capture(paths: Sequence[Path | str], **options: object) -> Capture:
    """Parse the capture files of one stream (options as for ``read_captures``)."""
    caps = read_captures(paths, **options)  # type: ignore[arg-type]
    if len(caps) > 1:
        names = ", ".join(f"{c.market} {c.raw_symbol}" for c in caps)
        raise DataError(f"the files hold {len(caps)} streams ({names}); read them one each")
    return caps[0]


def _read_stream(
    files: list[StreamFile],
    skip_bad: bool,
    market: str | None,
    symbol: str | None,
    max_disorder_ms: float,
    max_file_gap_ms: float,
    now_us: int | None,
    prog: Progress,
) -> Capture:
    names = [f.label for f in files]
    raw_lines = capture_lines.read_lines([read_text(f.path) for f in files], names)
    prog.advance(len(files))
    lines, bad = capture_lines.receive_time(raw_lines)
    units = lines.select(pl.col("_unit").unique(maintain_order=True))["_unit"].to_list()
    lines, repeated = capture_lines.number(lines)
    starts = lines.group_by(FILE).agg(pl.col("seq").min()).sort("seq")
    lines = capture_lines.classify(lines)
    bad += badrows.bad_lines_of(lines.filter(pl.col("_reason").is_not_null()))
    lines = lines.filter(pl.col("_reason").is_null()).drop("_reason")
    decoded, more = decode.decode_all(lines)
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

    bad = badrows.settle(bad, skip_bad, names)
    bad_seqs = _seqs_of(lines, bad)
    where = names[0] if len(names) == 1 else f"{names[0]} (and {len(names) - 1} more)"
    raw = decode.raw_symbol(decode.symbols_of(lines, decoded), where, symbol)
    mkt = market or decode.detect_market(decoded, raw)
    if mkt is None:
        raise UsageError(f"{where}: cannot tell spot from futures; pass --market")
    if market is None and files[0].market not in (None, mkt):
        raise DataError(f"{where}: {files[0].market} and {mkt} messages in one stream of {raw}")
    frames = {
        "trades": _finish(trades, bad_seqs, "trades", keep_seq=True),
        "agg_trades": _finish(aggs, bad_seqs, "agg_trades", keep_seq=True),
        "book_snapshot": _finish(snaps, bad_seqs, "book_snapshot"),
        "book_diff": _finish(diffs, bad_seqs, "book_diff"),
        "quotes": _finish(quotes, bad_seqs, "quotes"),
    }
    prog.advance(1)
    return Capture(
        market=mkt,
        symbol=symbol or unified_symbol(raw, mkt),
        local_unit=units[0] if units else "ns",
        **frames,
        bad_lines=bad,
        files=names,
        raw_symbol=raw,
        lines=raw_lines.height - repeated,
        repeated_lines=repeated,
        time_gaps=capture_streams.file_gaps(_stamps(frames), starts, max_file_gap_ms),
    )


def _stamps(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """``seq`` and exchange time ``ts_us`` of every message that has one."""
    parts = [
        df.select("seq", pl.col("ts").dt.epoch("us").alias("ts_us"))
        for df in frames.values()
        if df.height
    ]
    if not parts:
        return pl.DataFrame(schema={"seq": pl.Int64, "ts_us": pl.Int64})
    return pl.concat(parts).drop_nulls("ts_us")


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
