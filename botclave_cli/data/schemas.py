"""One schema per dataset kind (versioned). Units are fixed for the whole store.

- ``ts``: exchange event time, microseconds since epoch, ``pl.Datetime("us", "UTC")``.
- ``ts_local``: the collector's receive time (us), nullable, kept where a capture has it.
- ``seq``: a capture's line order; books are replayed in ``seq`` order, never re-sorted by clock.
- prices and quantities: Float64 (tick/lot live in the manifest; kernels convert to integer ticks).
- ``side`` for trades: the aggressor, ``"buy"`` (Binance ``m = false``) or ``"sell"``.
- ``side`` for book rows: ``"bid"`` or ``"ask"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from botclave_cli.errors import DataError

SCHEMA_VERSION = 1
TS = pl.Datetime("us", "UTC")

TRADE_SIDES = ("buy", "sell")
BOOK_SIDES = ("bid", "ask")


@dataclass(frozen=True)
class KindSpec:
    """Schema of a dataset kind, its row key (for dedupe) and sort order."""

    name: str
    schema: dict[str, pl.DataType]
    key: tuple[str, ...]
    sort: tuple[str, ...]
    nullable: frozenset[str] = field(default_factory=frozenset)
    #: integer id column whose consecutive values reveal gaps (None: no id-gap check)
    sequence_id: str | None = None


_TRADE_COMMON: dict[str, pl.DataType] = {
    "ts": TS,
    "ts_local": TS,
    "price": pl.Float64(),
    "qty": pl.Float64(),
    "side": pl.String(),
}

KINDS: dict[str, KindSpec] = {
    "trades": KindSpec(
        "trades",
        {**_TRADE_COMMON, "trade_id": pl.Int64(), "trade_uid": pl.String()},
        key=("trade_id", "trade_uid"),
        sort=("ts", "trade_id", "trade_uid"),
        nullable=frozenset({"ts_local", "trade_id", "trade_uid"}),
        sequence_id="trade_id",
    ),
    "agg_trades": KindSpec(
        "agg_trades",
        {**_TRADE_COMMON, "agg_id": pl.Int64(), "first_trade_id": pl.Int64(),
         "last_trade_id": pl.Int64()},
        key=("agg_id",),
        sort=("ts", "agg_id"),
        nullable=frozenset({"ts_local", "first_trade_id", "last_trade_id"}),
        sequence_id="agg_id",
    ),
    "ohlcv": KindSpec(
        "ohlcv",
        {"ts": TS, "open": pl.Float64(), "high": pl.Float64(), "low": pl.Float64(),
         "close": pl.Float64(), "volume": pl.Float64(), "quote_volume": pl.Float64(),
         "trade_count": pl.Int64()},
        key=("ts",),
        sort=("ts",),
        nullable=frozenset({"quote_volume", "trade_count"}),
    ),
    "book_snapshot": KindSpec(
        "book_snapshot",
        {"ts": TS, "ts_local": TS, "seq": pl.Int64(), "last_update_id": pl.Int64(),
         "side": pl.String(), "level": pl.Int32(), "price": pl.Float64(), "qty": pl.Float64()},
        key=("seq", "side", "level"),
        sort=("seq", "side", "level"),
        nullable=frozenset({"ts", "ts_local", "last_update_id"}),
    ),
    "book_diff": KindSpec(
        "book_diff",
        {"ts": TS, "ts_local": TS, "seq": pl.Int64(), "first_update_id": pl.Int64(),
         "last_update_id": pl.Int64(), "prev_update_id": pl.Int64(), "side": pl.String(),
         "price": pl.Float64(), "qty": pl.Float64()},
        key=("seq", "side", "price"),
        sort=("seq", "side", "price"),
        # a diff that changes no level keeps one row with null side/price/qty: it still
        # advances the update id, and sequencing must see it
        nullable=frozenset({"ts", "ts_local", "prev_update_id", "side", "price", "qty"}),
    ),
    "quotes": KindSpec(
        "quotes",
        {"ts": TS, "ts_local": TS, "seq": pl.Int64(), "update_id": pl.Int64(),
         "bid_price": pl.Float64(), "bid_qty": pl.Float64(), "ask_price": pl.Float64(),
         "ask_qty": pl.Float64()},
        key=("seq",),
        sort=("seq",),
        nullable=frozenset({"ts", "ts_local", "update_id"}),
    ),
    "funding": KindSpec(
        "funding",
        {"ts": TS, "funding_rate": pl.Float64(), "mark_price": pl.Float64()},
        key=("ts",),
        sort=("ts",),
        nullable=frozenset({"mark_price"}),
    ),
}

#: kinds built by botclave from other kinds; stored under a ``params=<hash>/`` level
DERIVED_KINDS = ("footprint", "footprint_levels", "depth_series")


def spec(kind: str) -> KindSpec:
    try:
        return KINDS[kind]
    except KeyError:
        expected = ", ".join(KINDS)
        raise DataError(f"unknown dataset kind {kind!r}; expected one of {expected}") from None


def empty_frame(kind: str) -> pl.DataFrame:
    return pl.DataFrame(schema=spec(kind).schema)


def conform(df: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Cast ``df`` to the kind's schema: add missing nullable columns, order columns, check nulls.

    Raises DataError naming the column when a required column is missing or holds nulls.
    """
    s = spec(kind)
    missing = [c for c in s.schema if c not in df.columns and c not in s.nullable]
    if missing:
        raise DataError(f"{kind}: missing column {missing[0]!r}")
    exprs = [
        (pl.col(c) if c in df.columns else pl.lit(None)).cast(dtype).alias(c)
        for c, dtype in s.schema.items()
    ]
    out = df.select(exprs)
    for column in s.schema:
        if column not in s.nullable and out[column].null_count():
            nulls = out[column].null_count()
            raise DataError(f"{kind}: column {column!r} has {nulls} null value(s)")
    return out


def normalise(df: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Conform, drop duplicate keys (keeping the first), and sort by the kind's order."""
    s = spec(kind)
    out = conform(df, kind)
    out = out.unique(subset=list(s.key), keep="first", maintain_order=True)
    return out.sort(list(s.sort), nulls_last=True, maintain_order=True)


def partition_dates(df: pl.DataFrame) -> pl.Series:
    """UTC date of each row for the ``date=`` partition: ``ts``, else ``ts_local``."""
    if "ts_local" in df.columns:
        when = pl.coalesce(pl.col("ts"), pl.col("ts_local"))
    else:
        when = pl.col("ts")
    return df.select(when.dt.date().alias("date"))["date"]


def register_kind(kind_spec: KindSpec) -> KindSpec:
    """Register a derived kind's schema (engine modules call this at import)."""
    KINDS[kind_spec.name] = kind_spec
    return kind_spec
