"""Binance public data archives (data.binance.vision): trades, aggTrades and klines CSV.

File names tell symbol, kind and period: ``BTCUSDT-trades-2024-08-08.zip``,
``BTCUSDT-aggTrades-2024-08.zip`` (monthly), ``BTCUSDT-1m-2024-08-08.zip`` (klines). Spot files
have no header; futures files have one (detected per file from the first line). Zipped or not.

Time unit: spot files from 2025-01-01 on carry microseconds, older ones and futures files
milliseconds. The unit is detected per file from the digit count of the time values (13 = ms,
16 = us) and then checked against the date in the file name: rows outside the named day or
month are bad rows, and a file whose times mostly fall outside it is refused outright, so a unit
is never guessed silently. ``ts`` is stored in microseconds.

Market: ``--market``, else the archive path (``spot/``, ``futures/um/``, ``futures/cm/``), else
``*_PERP``/``*_YYMMDD`` names are COIN-M and a header means futures (USD-M). COIN-M quantities
are contracts (manifest ``qty_unit="contracts"``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from botclave_cli.data.importers import badrows
from botclave_cli.data.importers.badrows import LINE, BadLine
from botclave_cli.data.importers.csvlines import columns, csv_lines, short_line
from botclave_cli.data.importers.files import read_text
from botclave_cli.data.importers.symbols import is_coinm, unified_symbol
from botclave_cli.data.importers.writer import Parsed
from botclave_cli.data.schemas import TS, conform
from botclave_cli.data.verify import TIMEFRAME_US
from botclave_cli.errors import DataError, UsageError
from botclave_cli.progress import Progress, or_null

NAME_RE = re.compile(
    r"^(?P<symbol>[A-Z0-9_]+)-(?P<kind>trades|aggTrades|\d+[smhdwM]|1mo)-"
    r"(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.(?:csv|zip|csv\.gz)$"
)

#: canonical column names in file order (no-header files) per archive kind
LAYOUT = {
    "trades": ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"],
    "aggTrades": [
        "agg_trade_id",
        "price",
        "quantity",
        "first_trade_id",
        "last_trade_id",
        "transact_time",
        "is_buyer_maker",
        "is_best_match",
    ],
    "klines": [
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "close_time",
        "quote_volume",
        "count",
        "taker_buy_volume",
        "taker_buy_quote_volume",
        "ignore",
    ],
}
#: columns an import needs, per archive kind (futures headers may omit the rest)
NEEDED = {
    "trades": ["id", "price", "qty", "time", "is_buyer_maker"],
    "aggTrades": [c for c in LAYOUT["aggTrades"] if c != "is_best_match"],
    "klines": ["open_time", "open", "high", "low", "close", "volume", "quote_volume", "count"],
}
#: trade archive kind -> (id column, quantity column, further integer id columns)
TRADE_FIELDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "trades": ("id", "qty", ()),
    "aggTrades": ("agg_trade_id", "quantity", ("first_trade_id", "last_trade_id")),
}
#: archive kind -> time column
TIME_COL = {"trades": "time", "aggTrades": "transact_time", "klines": "open_time"}
UNITS = {13: ("ms", 1000), 16: ("us", 1)}


@dataclass(frozen=True)
class ArchiveName:
    """What a standard archive file name says."""

    symbol: str | None
    kind: str | None  # trades | aggTrades | klines
    timeframe: str | None
    period: tuple[dt.date, dt.date] | None  # [first day, day after the last)


def parse_name(name: str) -> ArchiveName:
    m = NAME_RE.match(name)
    if not m:
        return ArchiveName(None, None, None, None)
    kind = m["kind"]
    timeframe = None
    if kind not in ("trades", "aggTrades"):
        kind, timeframe = "klines", m["kind"]
    parts = [int(x) for x in m["date"].split("-")]
    if len(parts) == 3:
        start = dt.date(*parts)
        end = start + dt.timedelta(days=1)
    else:
        start = dt.date(parts[0], parts[1], 1)
        end = dt.date(parts[0] + parts[1] // 12, parts[1] % 12 + 1, 1)
    return ArchiveName(m["symbol"], kind, timeframe, (start, end))


def _market_from_path(path: Path) -> str | None:
    parts = [p.lower() for p in path.parts]
    if "um" in parts:
        return "usdm"
    if "cm" in parts:
        return "coinm"
    if "spot" in parts:
        return "spot"
    return None


def read_binance_archive(
    paths: Sequence[Path | str],
    *,
    skip_bad: bool = False,
    market: str | None = None,
    symbol: str | None = None,
    kind: str | None = None,
    timeframe: str | None = None,
    max_disorder_ms: float = badrows.DEFAULT_MAX_DISORDER_MS,
    now_us: int | None = None,
    progress: Progress | None = None,
) -> Parsed:
    """Parse archive files of one symbol and kind into a ``Parsed`` for the writer.

    ``kind`` is ``trades``, ``aggTrades`` or ``klines`` (default: from the file names).
    """
    if not paths:
        raise UsageError("no archive file given")
    prog = or_null(progress)
    prog.start(len(paths), "reading Binance archives")
    names = [parse_name(Path(p).name) for p in paths]
    if kind is not None:  # store names are accepted too
        kind = {"agg_trades": "aggTrades", "ohlcv": "klines"}.get(kind, kind)
    kinds = {kind} if kind else {n.kind for n in names}
    if None in kinds:
        bad_name = next(Path(p).name for p, n in zip(paths, names, strict=True) if n.kind is None)
        raise UsageError(
            f"{bad_name}: not a standard archive name (SYMBOL-trades|aggTrades|1m-"
            "DATE.zip); pass --kind and --symbol"
        )
    if len(kinds) > 1:
        raise UsageError(
            f"files mix kinds ({', '.join(sorted(map(str, kinds)))}); import each alone"
        )
    (akind,) = kinds
    if akind not in LAYOUT:
        raise UsageError(f"--kind {akind!r}: expected trades, aggTrades or klines")
    raws = {n.symbol for n in names if n.symbol}
    if len(raws) > 1:
        raise UsageError(f"files mix symbols ({', '.join(sorted(raws))}); import each alone")
    raw_symbol = next(iter(raws), None)
    tf = timeframe or next((n.timeframe for n in names if n.timeframe), None)
    if akind == "klines" and tf is None:
        raise UsageError("klines need a timeframe: a standard file name or --timeframe")

    frames, bad, notes, headers = [], [], [], []
    total = 0
    for path, name in zip(paths, names, strict=True):
        df, more, unit, has_header, lines = _read_file(
            Path(path), name, akind, now_us, max_disorder_ms
        )
        frames.append(df)
        bad += more
        total += lines
        headers.append(has_header)
        notes.append(
            f"{Path(path).name}: times in {unit}" + (", with header" if has_header else "")
        )
        prog.advance(1)
    file_names = [Path(p).name for p in paths]
    bad = badrows.settle(bad, skip_bad, file_names)

    market = (
        market
        or _market_from_path(Path(paths[0]))
        or ("coinm" if raw_symbol and is_coinm(raw_symbol) else "usdm" if any(headers) else "spot")
    )
    if symbol is None:
        if raw_symbol is None:
            raise UsageError("cannot tell the symbol from the file names; pass --symbol")
        symbol = unified_symbol(raw_symbol, market)
    frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame()
    store_kind, levels, out = _to_store(frame, akind, tf)
    return Parsed(
        exchange="binance",
        market=market,
        symbol=symbol,
        source="binance-archive",
        sources=file_names,
        frames=[(store_kind, levels, out)],
        bad=bad,
        lines=total,
        qty_unit="contracts" if market == "coinm" and akind != "klines" else "base",
        notes=notes,
    )


def _read_file(
    path: Path, name: ArchiveName, akind: str, now_us: int | None, max_disorder_ms: float
) -> tuple[pl.DataFrame, list[BadLine], str, bool, int]:
    """One file's checked rows (string columns + ``_ts_us``), its bad lines, unit, header."""
    tf = read_text(path)
    df, header = csv_lines(tf)
    layout = LAYOUT[akind]
    if header is not None:
        aliases = {"quantity": "qty"} if akind == "trades" else {}
        header = [aliases.get(h, h) for h in header]
        missing = [c for c in NEEDED[akind] if c not in header]
        if missing:
            raise DataError(
                f"{path.name}:1: header lacks column {missing[0]} "
                f"(expected {', '.join(NEEDED[akind])})"
            )
        cols = header
    else:
        cols = layout
    needed_count = max(cols.index(c) for c in NEEDED[akind]) + 1
    df = df.with_columns(columns(cols))
    time_col = TIME_COL[akind]
    digits = pl.col(time_col).str.len_chars()
    unit_digits = (
        df.filter(pl.col(time_col).str.contains(r"^\d+$")).select(digits.mode().min()).item()
        if df.height
        else None
    )
    if unit_digits is None:
        unit_digits = 13  # no readable time at all: every row is refused below
    if unit_digits not in UNITS:
        raise DataError(
            f"{path.name}: {time_col} values have {unit_digits} digits; expected 13 (ms) or 16 (us)"
        )
    unit, factor = UNITS[unit_digits]
    df = df.with_columns((pl.col(time_col).cast(pl.Int64, strict=False) * factor).alias("_ts_us"))
    checks = [
        short_line(needed_count, cols),
        badrows.integer(time_col),
        pl.when(digits != unit_digits).then(
            pl.format(
                f"{time_col} {{}} has {{}} digits; this file's times are in {unit}",
                pl.col(time_col),
                digits,
            )
        ),
        badrows.ts_in_range("_ts_us", time_col, now_us),
    ]
    if name.period is not None:
        checks.append(_outside(name.period, time_col))
        _check_unit_against_name(df, path.name, name.period, unit, time_col)
    checks += _kind_checks(akind)
    good, bad = badrows.split_bad(df, checks)
    good = good.drop("_fields")
    if akind != "klines":
        good, more = badrows.split_bad(good, [badrows.disorder("_ts_us", max_disorder_ms)])
        bad += more
    if tf.truncated_tail and bad and bad[-1].line == df[LINE].max():
        last = bad[-1]
        bad[-1] = BadLine(last.file, last.line, f"truncated last line ({last.reason})")
    return good, bad, unit, header is not None, df.height


def _outside(period: tuple[dt.date, dt.date], time_col: str) -> pl.Expr:
    lo = int(dt.datetime.combine(period[0], dt.time(), dt.UTC).timestamp()) * 1_000_000
    hi = int(dt.datetime.combine(period[1], dt.time(), dt.UTC).timestamp()) * 1_000_000
    label = f"{period[0]}" + ("" if (period[1] - period[0]).days == 1 else f" .. {period[1]}")
    return pl.when((pl.col("_ts_us") < lo) | (pl.col("_ts_us") >= hi)).then(
        pl.format(
            f"{time_col} {{}} is outside the file name's period {label}",
            pl.col("_ts_us").cast(TS).dt.to_string("%Y-%m-%dT%H:%M:%S"),
        )
    )


def _check_unit_against_name(
    df: pl.DataFrame, name: str, period: tuple[dt.date, dt.date], unit: str, time_col: str
) -> None:
    """Refuse a file whose times, read in the detected unit, mostly miss its named period."""
    dates = df.select(pl.col("_ts_us").cast(TS).dt.date().alias("d")).drop_nulls()["d"]
    if dates.is_empty():
        return
    inside = ((dates >= period[0]) & (dates < period[1])).sum()
    if inside * 2 < dates.len():
        raise DataError(
            f"{name}: {time_col} read as {unit} falls on {dates.sort()[dates.len() // 2]}, "
            "not in the "
            f"period {period[0]} named by the file; wrong file name or unit"
        )


def _kind_checks(akind: str) -> list[pl.Expr]:
    maker = pl.when(~pl.col("is_buyer_maker").str.to_lowercase().is_in(["true", "false"])).then(
        pl.format("is_buyer_maker {} is not true/false", pl.col("is_buyer_maker"))
    )
    if akind in TRADE_FIELDS:
        id_col, qty_col, other_ids = TRADE_FIELDS[akind]
        return [
            badrows.integer(id_col),
            badrows.numeric("price"),
            badrows.numeric(qty_col),
            badrows.non_negative("price"),
            badrows.non_negative(qty_col),
            *(badrows.integer(c) for c in other_ids),
            maker,
        ]
    return [
        *(badrows.numeric(c) for c in ("open", "high", "low", "close", "volume")),
        *(badrows.non_negative(c) for c in ("open", "high", "low", "close", "volume")),
        pl.when(pl.col("quote_volume").is_not_null()).then(badrows.numeric("quote_volume")),
        pl.when(pl.col("count").is_not_null()).then(badrows.integer("count")),
    ]


def _to_store(
    df: pl.DataFrame, akind: str, timeframe: str | None
) -> tuple[str, tuple[tuple[str, str], ...], pl.DataFrame]:
    ts = pl.col("_ts_us").cast(TS).alias("ts")
    side = (
        pl.when(pl.col("is_buyer_maker").str.to_lowercase() == "true")
        .then(pl.lit("sell"))
        .otherwise(pl.lit("buy"))
        .alias("side")
    )
    f64 = pl.Float64
    if akind == "trades":
        out = df.select(
            ts,
            pl.col("price").cast(f64),
            pl.col("qty").cast(f64),
            side,
            pl.col("id").cast(pl.Int64).alias("trade_id"),
        )
        return "trades", (), conform(out, "trades")
    if akind == "aggTrades":
        out = df.select(
            ts,
            pl.col("price").cast(f64),
            pl.col("quantity").cast(f64).alias("qty"),
            side,
            pl.col("agg_trade_id").cast(pl.Int64).alias("agg_id"),
            pl.col("first_trade_id").cast(pl.Int64),
            pl.col("last_trade_id").cast(pl.Int64),
        )
        return "agg_trades", (), conform(out, "agg_trades")
    if timeframe not in TIMEFRAME_US:
        raise UsageError(f"timeframe {timeframe!r}: expected one of {', '.join(TIMEFRAME_US)}")
    out = df.select(
        ts,
        *(pl.col(c).cast(f64) for c in ("open", "high", "low", "close", "volume")),
        pl.col("quote_volume").cast(f64, strict=False),
        pl.col("count").cast(pl.Int64, strict=False).alias("trade_count"),
    )
    return "ohlcv", (("timeframe", str(timeframe)),), conform(out, "ohlcv")
