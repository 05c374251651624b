"""Decoded capture messages -> store frames, one function per message kind.

Each function takes the decoded message fields (strings, as ``json_decode`` gave them) plus the
line's ``_file``, ``_line``, ``seq`` and ``_ts_local_us``, refuses bad rows with a reason
(badrows.py), and returns the kind's frame with the good rows. Exchange times (ms) become
microseconds; ``now`` is the wall clock (us) for the "more than a day ahead" check.
"""

from __future__ import annotations

import polars as pl

from botclave_cli.data.importers import badrows
from botclave_cli.data.importers.badrows import BadLine
from botclave_cli.data.schemas import TS


def _ms_to_us(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Int64, strict=False) * 1000


def _ts(us: pl.Expr) -> pl.Expr:
    return us.cast(TS)


def _stamps() -> list[pl.Expr]:
    """Exchange time ``ts`` and receive time ``ts_local`` from the parsed microsecond columns."""
    return [_ts(pl.col("_ts_us")).alias("ts"), _ts(pl.col("_ts_local_us")).alias("ts_local")]


def _check(df: pl.DataFrame, checks: list[pl.Expr]) -> tuple[pl.DataFrame, list[BadLine]]:
    return badrows.split_bad(df, checks)


def _trade_messages(
    df: pl.DataFrame, now: int, max_disorder_ms: float, id_check: pl.Expr, ids: list[pl.Expr]
) -> tuple[pl.DataFrame, list[BadLine]]:
    """Shared by ``trade`` and ``aggTrade`` messages: same price/qty/time/maker fields and checks;
    ``id_check`` comes first among the checks and ``ids`` are the kind's id columns."""
    df = df.with_columns(_ms_to_us("T").alias("_ts_us"))
    good, bad = _check(
        df,
        [
            id_check,
            badrows.numeric("p", "price p"),
            badrows.numeric("q", "qty q"),
            badrows.non_negative("q", "qty q"),
            badrows.integer("T", "trade time T"),
            pl.when(~pl.col("m").is_in(["true", "false"]) | pl.col("m").is_null()).then(
                pl.lit("missing or bad m")
            ),
            badrows.ts_in_range("_ts_us", "trade time T", now),
        ],
    )
    good, more = _check(good, [badrows.disorder("_ts_us", max_disorder_ms)])
    out = good.select(
        *_stamps(),
        pl.col("p").cast(pl.Float64).alias("price"),
        pl.col("q").cast(pl.Float64).alias("qty"),
        pl.when(pl.col("m") == "true").then(pl.lit("sell")).otherwise(pl.lit("buy")).alias("side"),
        *ids,
        "seq",
    )
    return out, bad + more


def trades(
    df: pl.DataFrame, now: int, max_disorder_ms: float
) -> tuple[pl.DataFrame, list[BadLine]]:
    ids = [pl.col("t").cast(pl.Int64).alias("trade_id")]
    return _trade_messages(df, now, max_disorder_ms, badrows.integer("t", "trade id t"), ids)


def agg_trades(
    df: pl.DataFrame, now: int, max_disorder_ms: float
) -> tuple[pl.DataFrame, list[BadLine]]:
    ids = [
        pl.col("a").cast(pl.Int64).alias("agg_id"),
        pl.col("f").cast(pl.Int64, strict=False).alias("first_trade_id"),
        pl.col("l").cast(pl.Int64, strict=False).alias("last_trade_id"),
    ]
    return _trade_messages(df, now, max_disorder_ms, badrows.integer("a", "aggregate id a"), ids)


def levels(df: pl.DataFrame, bids: str, asks: str) -> pl.DataFrame:
    """Long form of the bid/ask level lists: one row per level with side, level index, raw strings.

    A message with no level at all keeps one row with null side/price/qty.
    """
    keep = [c for c in df.columns if c not in (bids, asks)]
    sides = []
    for col, side in ((bids, "bid"), (asks, "ask")):
        sides.append(
            df.select(*keep, pl.col(col).fill_null([]).alias("_lv"))
            .with_columns(pl.int_ranges(0, pl.col("_lv").list.len()).alias("level"))
            .explode("_lv", "level")
            .filter(pl.col("_lv").is_not_null())
            .with_columns(pl.lit(side).alias("side"))
        )
    long = pl.concat(sides)
    empty = df.select(keep).join(long.select("seq").unique(), on="seq", how="anti")
    long = pl.concat([long, empty], how="diagonal")
    return long.with_columns(
        pl.col("_lv").list.len().alias("_n"),
        pl.col("_lv").list.get(0, null_on_oob=True).alias("_price"),
        pl.col("_lv").list.get(1, null_on_oob=True).alias("_qty"),
    ).drop("_lv")


def _level_checks() -> list[pl.Expr]:
    present = pl.col("side").is_not_null()
    return [
        pl.when(present & (pl.col("_n") != 2)).then(pl.lit("book level is not [price, qty]")),
        pl.when(present).then(badrows.numeric("_price", "level price")),
        pl.when(present).then(badrows.numeric("_qty", "level qty")),
        pl.when(present).then(badrows.non_negative("_qty", "level qty")),
    ]


def depth(df: pl.DataFrame, now: int) -> tuple[pl.DataFrame, list[BadLine]]:
    df = df.with_columns(_ms_to_us("E").alias("_ts_us"))
    long = levels(df, "b", "a")
    good, bad = _check(
        long,
        [
            badrows.integer("U", "first update id U"),
            badrows.integer("u", "last update id u"),
            pl.when(pl.col("pu").is_not_null()).then(
                badrows.integer("pu", "previous update id pu")
            ),
            badrows.integer("E", "event time E"),
            badrows.ts_in_range("_ts_us", "event time E", now),
            *_level_checks(),
        ],
    )
    out = good.select(
        *_stamps(),
        "seq",
        pl.col("U").cast(pl.Int64).alias("first_update_id"),
        pl.col("u").cast(pl.Int64).alias("last_update_id"),
        pl.col("pu").cast(pl.Int64).alias("prev_update_id"),
        "side",
        pl.col("_price").cast(pl.Float64).alias("price"),
        pl.col("_qty").cast(pl.Float64).alias("qty"),
    )
    return out, bad


def snapshot(df: pl.DataFrame, now: int) -> tuple[pl.DataFrame, list[BadLine]]:
    df = df.with_columns(_ms_to_us("E").alias("_ts_us"))
    long = levels(df, "bids", "asks")
    good, bad = _check(
        long,
        [
            badrows.integer("lastUpdateId", "lastUpdateId"),
            pl.when(pl.col("E").is_not_null()).then(badrows.integer("E", "event time E")),
            pl.when(pl.col("E").is_not_null()).then(
                badrows.ts_in_range("_ts_us", "event time E", now)
            ),
            *_level_checks(),
        ],
    )
    out = good.select(
        *_stamps(),
        "seq",
        pl.col("lastUpdateId").cast(pl.Int64).alias("last_update_id"),
        "side",
        pl.col("level").cast(pl.Int32),
        pl.col("_price").cast(pl.Float64).alias("price"),
        pl.col("_qty").cast(pl.Float64).alias("qty"),
    )
    return out, bad


def tickers(df: pl.DataFrame, now: int) -> tuple[pl.DataFrame, list[BadLine]]:
    df = df.with_columns(pl.coalesce(_ms_to_us("E"), _ms_to_us("T")).alias("_ts_us"))
    good, bad = _check(
        df,
        [
            badrows.integer("u", "update id u"),
            badrows.numeric("b", "bid price b"),
            badrows.numeric("B", "bid qty B"),
            badrows.numeric("a", "ask price a"),
            badrows.numeric("A", "ask qty A"),
            badrows.non_negative("B", "bid qty B"),
            badrows.non_negative("A", "ask qty A"),
            pl.when(pl.col("_ts_us").is_not_null()).then(
                badrows.ts_in_range("_ts_us", "event time E", now)
            ),
        ],
    )
    out = good.select(
        *_stamps(),
        "seq",
        pl.col("u").cast(pl.Int64).alias("update_id"),
        pl.col("b").cast(pl.Float64).alias("bid_price"),
        pl.col("B").cast(pl.Float64).alias("bid_qty"),
        pl.col("a").cast(pl.Float64).alias("ask_price"),
        pl.col("A").cast(pl.Float64).alias("ask_qty"),
    )
    return out, bad
