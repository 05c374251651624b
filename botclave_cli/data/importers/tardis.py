"""Tardis.dev CSV: trades, incremental_book_L2, book_snapshot_N, quotes.

The data type is recognised from the header (always present); exchange and symbol from the
``exchange``/``symbol`` columns. ``timestamp`` (exchange) and ``local_timestamp`` (receive time)
are microseconds since epoch; values of any other digit count are bad rows, never rescaled.

- trades: integer ids go to ``trade_id``, anything else (BitMEX UUIDs) to ``trade_uid``;
  ``side`` is the aggressor; ``unknown`` is a bad row (no aggressor side).
- incremental_book_L2: consecutive rows with the same timestamps and ``is_snapshot`` flag are
  one message, numbered by ``seq`` = line index (0-based across files) of its first row.
  Snapshot messages become ``book_snapshot`` (levels numbered from the best price); updates
  become ``book_diff``. Tardis gives no exchange update ids, so each update message gets
  ``first_update_id = last_update_id`` = its message number (manifest ``params``
  ``update_ids: "tardis message counter"``), which keeps the replay order and nothing more.
- book_snapshot_N: one snapshot per row (``asks[i].price``...), empty levels skipped.
- quotes: best bid/ask.

``amount`` is in the instrument's quantity unit: contracts for inverse swaps and futures
(BitMEX XBTUSD, Deribit, Huobi/OKX/Binance coin-margined), reported as ``qty_unit="contracts"``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from botclave_cli.data.importers import badrows
from botclave_cli.data.importers.badrows import LINE, BadLine
from botclave_cli.data.importers.csvlines import FIELDS, columns, csv_lines, short_line
from botclave_cli.data.importers.files import read_text
from botclave_cli.data.importers.writer import Parsed
from botclave_cli.data.schemas import TS, conform, spec
from botclave_cli.errors import DataError, UsageError
from botclave_cli.progress import Progress, or_null

COMMON = ["exchange", "symbol", "timestamp", "local_timestamp"]
#: tardis exchange id -> (ccxt exchange id, market of its instruments)
EXCHANGES = {
    "binance": ("binance", "spot"),
    "binance-futures": ("binance", "usdm"),
    "binance-delivery": ("binance", "coinm"),
    "bitmex": ("bitmex", "coinm"),
    "deribit": ("deribit", "coinm"),
    "huobi-dm-swap": ("huobi", "coinm"),
    "huobi-dm": ("huobi", "coinm"),
    "huobi": ("huobi", "spot"),
    "okex": ("okx", "spot"),
    "okex-swap": ("okx", "coinm"),
    "okex-futures": ("okx", "coinm"),
    "bybit": ("bybit", "coinm"),
    "bybit-spot": ("bybit", "spot"),
    "coinbase": ("coinbase", "spot"),
}
SNAPSHOT_RE = re.compile(r"^(asks|bids)\[(\d+)\]\.(price|amount)$")


def data_type(header: list[str]) -> str:
    """trades | incremental_book_L2 | book_snapshot | quotes, from the header."""
    cols = set(header)
    if "is_snapshot" in cols:
        return "incremental_book_L2"
    if any(SNAPSHOT_RE.match(c) for c in header):
        return "book_snapshot"
    if {"ask_price", "bid_price"} <= cols:
        return "quotes"
    if {"id", "side", "price", "amount"} <= cols:
        return "trades"
    raise UsageError(
        f"unknown Tardis CSV header ({', '.join(header[:8])}); expected trades, "
        "incremental_book_L2, book_snapshot_N or quotes"
    )


def instrument(exchange: str, symbol: str) -> tuple[str, str, str, str]:
    """(ccxt exchange, market, unified symbol, qty unit) of a Tardis exchange and symbol."""
    ccxt_id, market = EXCHANGES.get(exchange, (exchange.split("-")[0], "spot"))
    s = symbol.upper()
    if m := re.match(r"^([A-Z0-9]+)-PERPETUAL$", s):  # Deribit inverse perpetual
        return ccxt_id, "coinm", f"{m[1]}/USD:{m[1]}", "contracts"
    if s == "XBTUSD":
        return ccxt_id, "coinm", "BTC/USD:BTC", "contracts"
    if m := re.match(r"^([A-Z0-9]+)[-_/]?(USDT|USDC|USD|BTC|ETH|EUR)(?:[-_](SWAP|PERP))?$", s):
        base, quote = m[1], m[2]
        if market == "spot":
            return ccxt_id, "spot", f"{base}/{quote}", "base"
        if quote == "USD":
            return ccxt_id, "coinm", f"{base}/USD:{base}", "contracts"
        return ccxt_id, "usdm", f"{base}/{quote}:{quote}", "base"
    raise UsageError(
        f"cannot map Tardis symbol {symbol!r} on {exchange} to a ccxt symbol; "
        "pass --symbol and --market"
    )


def read_tardis(
    paths: Sequence[Path | str],
    *,
    skip_bad: bool = False,
    exchange: str | None = None,
    market: str | None = None,
    symbol: str | None = None,
    qty_unit: str | None = None,
    max_disorder_ms: float = badrows.DEFAULT_MAX_DISORDER_MS,
    now_us: int | None = None,
    progress: Progress | None = None,
) -> Parsed:
    """Parse Tardis CSV files of one data type, exchange and symbol (plain, gzip or zip)."""
    if not paths:
        raise UsageError("no Tardis file given")
    prog = or_null(progress)
    prog.start(len(paths), "reading Tardis CSV")
    frames, bad, types, offset = [], [], set(), 0
    for path in paths:
        tf = read_text(path)
        df, header = csv_lines(tf, header=True)
        if header is None:
            raise DataError(f"{tf.name}: empty file")
        types.add(data_type(header))
        df = df.with_columns(*columns(header), (pl.col(LINE) - 2 + offset).alias("seq"))
        missing = [c for c in COMMON if c not in header]
        if missing:
            raise DataError(f"{tf.name}:1: header lacks column {missing[0]}")
        offset += df.height
        good, more = badrows.split_bad(
            df,
            [
                short_line(len(header), header),
                *_ts_checks("timestamp", now_us),
                *_ts_checks("local_timestamp", now_us),
            ],
        )
        frames.append(good.drop(FIELDS))
        bad += more
        prog.advance(1)
    if len(types) > 1:
        raise UsageError(f"files mix Tardis data types ({', '.join(sorted(types))})")
    (dtype,) = types
    df = pl.concat(frames, how="diagonal")
    pairs = df.select("exchange", "symbol").unique(maintain_order=True).rows()
    if len(pairs) > 1:
        raise UsageError(
            f"files mix instruments ({', '.join(f'{e}:{s}' for e, s in pairs[:4])}); "
            "import each alone"
        )
    if not pairs:  # nothing good to tell the instrument: refuse, naming the first bad row
        names = [Path(p).name for p in paths]
        lines = badrows.settle(bad, skip_bad, names)
        first = (
            f"; first bad row {lines[0].file}:{lines[0].line}: {lines[0].reason}" if lines else ""
        )
        raise DataError(f"{', '.join(names)}: no good row{first or ' (empty file)'}")
    t_ex, t_sym = pairs[0] if pairs else ("", "")
    if symbol is not None and market is not None:  # both given: no mapping needed
        ex, mk, sym, unit = t_ex.split("-")[0], market, symbol, "base"
    else:
        ex, mk, sym, unit = instrument(t_ex, t_sym)
    df = df.with_columns(
        pl.col("timestamp").cast(pl.Int64).cast(TS).alias("ts"),
        pl.col("local_timestamp").cast(pl.Int64).cast(TS).alias("ts_local"),
    )
    out, more, params = _by_type(dtype, df, max_disorder_ms)
    names = [Path(p).name for p in paths]
    bad = badrows.settle(bad + more, skip_bad, names)
    return Parsed(
        exchange=exchange or ex,
        market=market or mk,
        symbol=symbol or sym,
        source="tardis",
        sources=names,
        frames=out,
        bad=bad,
        lines=offset,
        qty_unit=qty_unit or unit,
        params=params,
        notes=[f"Tardis {dtype} of {t_ex} {t_sym}"],
    )


def _ts_checks(col: str, now_us: int | None) -> list[pl.Expr]:
    digits = pl.col(col).str.len_chars()
    return [
        badrows.integer(col),
        pl.when(digits != 16).then(
            pl.format(f"{col} {{}} is not in microseconds (16 digits)", pl.col(col))
        ),
        pl.when(pl.col(col).cast(pl.Int64, strict=False).is_not_null()).then(
            badrows.ts_in_range(col, col, now_us)
        ),
    ]


def _by_type(
    dtype: str, df: pl.DataFrame, max_disorder_ms: float
) -> tuple[list[tuple[str, tuple, pl.DataFrame]], list[BadLine], dict]:
    if dtype == "trades":
        return *_trades(df, max_disorder_ms), {}
    if dtype == "quotes":
        return *_quotes(df), {}
    if dtype == "book_snapshot":
        return *_snapshots(df), {}
    return *_incremental(df), {"update_ids": "tardis message counter"}


def _trades(df: pl.DataFrame, max_disorder_ms: float):
    df = df.with_columns(pl.col("timestamp").cast(pl.Int64, strict=False).alias("_ts_us"))
    good, bad = badrows.split_bad(
        df,
        [
            pl.when(pl.col("id").is_null() | (pl.col("id") == "")).then(pl.lit("missing id")),
            pl.when(~pl.col("side").is_in(["buy", "sell"])).then(
                pl.format("side {} is not buy/sell (no aggressor side)", pl.col("side"))
            ),
            badrows.numeric("price"),
            badrows.numeric("amount"),
            badrows.non_negative("price"),
            badrows.non_negative("amount"),
        ],
    )
    good, more = badrows.split_bad(good, [badrows.disorder("_ts_us", max_disorder_ms)])
    integer_ids = good["id"].str.contains(r"^\d+$").all() if good.height else True
    out = good.select(
        "ts",
        "ts_local",
        pl.col("price").cast(pl.Float64),
        pl.col("amount").cast(pl.Float64).alias("qty"),
        "side",
        (pl.col("id").cast(pl.Int64) if integer_ids else pl.lit(None, pl.Int64)).alias("trade_id"),
        (pl.lit(None, pl.String) if integer_ids else pl.col("id")).alias("trade_uid"),
    )
    return [("trades", (), conform(out, "trades"))], bad + more


def _quotes(df: pl.DataFrame):
    good, bad = badrows.split_bad(
        df,
        [
            *(badrows.numeric(c) for c in ("bid_price", "bid_amount", "ask_price", "ask_amount")),
            *(badrows.non_negative(c) for c in ("bid_amount", "ask_amount")),
        ],
    )
    out = good.select(
        "ts",
        "ts_local",
        "seq",
        pl.col("bid_price").cast(pl.Float64),
        pl.col("bid_amount").cast(pl.Float64).alias("bid_qty"),
        pl.col("ask_price").cast(pl.Float64),
        pl.col("ask_amount").cast(pl.Float64).alias("ask_qty"),
    )
    return [("quotes", (), conform(out, "quotes"))], bad


def _snapshots(df: pl.DataFrame):
    levels = sorted({(m[1], int(m[2])) for c in df.columns if (m := SNAPSHOT_RE.match(c))})
    long = pl.concat(
        [
            df.select(
                LINE,
                badrows.FILE,
                "ts",
                "ts_local",
                "seq",
                pl.lit("bid" if side == "bids" else "ask").alias("side"),
                pl.lit(i, pl.Int32).alias("level"),
                pl.col(f"{side}[{i}].price").alias("_price"),
                pl.col(f"{side}[{i}].amount").alias("_qty"),
            )
            for side, i in levels
        ]
    )
    # a shallow book leaves trailing levels empty: not a bad row, just no level
    long = long.filter(
        (pl.col("_price").fill_null("") != "") | (pl.col("_qty").fill_null("") != "")
    )
    good, bad = badrows.split_bad(
        long,
        [
            badrows.numeric("_price", "price"),
            badrows.numeric("_qty", "amount"),
            badrows.non_negative("_qty", "amount"),
        ],
    )
    if bad:  # a row with one bad level is refused whole
        keys = badrows.report_frame(bad).select(
            pl.col("file").alias(badrows.FILE), pl.col("line").alias(LINE)
        )
        good = good.join(keys, on=[badrows.FILE, LINE], how="anti")
    out = good.select(
        "ts",
        "ts_local",
        "seq",
        "side",
        "level",
        pl.col("_price").cast(pl.Float64).alias("price"),
        pl.col("_qty").cast(pl.Float64).alias("qty"),
    )
    return [("book_snapshot", (), _book(out, "book_snapshot"))], bad


def _book(df: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Book rows in the store's order (by message, then side and level/price)."""
    return conform(df, kind).sort(list(spec(kind).sort), maintain_order=True)


def _incremental(df: pl.DataFrame):
    good, bad = badrows.split_bad(
        df,
        [
            pl.when(~pl.col("is_snapshot").is_in(["true", "false"])).then(
                pl.format("is_snapshot {} is not true/false", pl.col("is_snapshot"))
            ),
            pl.when(~pl.col("side").is_in(["bid", "ask"])).then(
                pl.format("side {} is not bid/ask", pl.col("side"))
            ),
            badrows.numeric("price"),
            badrows.numeric("amount"),
            badrows.non_negative("amount"),
        ],
    )
    new_msg = (
        (pl.col("timestamp") != pl.col("timestamp").shift(1))
        | (pl.col("local_timestamp") != pl.col("local_timestamp").shift(1))
        | (pl.col("is_snapshot") != pl.col("is_snapshot").shift(1))
    ).fill_null(True)
    good = good.with_columns(new_msg.cum_sum().alias("_msg")).with_columns(
        pl.col("seq").first().over("_msg").alias("seq"),
        pl.col("price").cast(pl.Float64),
        pl.col("amount").cast(pl.Float64).alias("qty"),
    )
    snap = (
        good.filter(pl.col("is_snapshot") == "true")
        .with_columns(  # levels from the best price, whatever order the rows came in
            pl.col("price").rank("ordinal", descending=True).over("_msg", "side").alias("_rb"),
            pl.col("price").rank("ordinal").over("_msg", "side").alias("_ra"),
        )
        .with_columns(
            (pl.when(pl.col("side") == "bid").then(pl.col("_rb")).otherwise(pl.col("_ra")) - 1)
            .cast(pl.Int32)
            .alias("level")
        )
    )
    diff = good.filter(pl.col("is_snapshot") == "false").with_columns(
        pl.col("_msg").rank("dense").cast(pl.Int64).alias("_n")
    )
    out = []
    if snap.height:
        out.append(
            (
                "book_snapshot",
                (),
                _book(
                    snap.select("ts", "ts_local", "seq", "side", "level", "price", "qty"),
                    "book_snapshot",
                ),
            )
        )
    if diff.height:
        out.append(
            (
                "book_diff",
                (),
                _book(
                    diff.select(
                        "ts",
                        "ts_local",
                        "seq",
                        pl.col("_n").alias("first_update_id"),
                        pl.col("_n").alias("last_update_id"),
                        (pl.col("_n") - 1).alias("prev_update_id"),
                        "side",
                        "price",
                        "qty",
                    ),
                    "book_diff",
                ),
            )
        )
    return out, bad
