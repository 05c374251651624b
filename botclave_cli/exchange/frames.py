"""ccxt's unified responses -> store frames (one pure function per kind).

Units at this edge: ccxt times are milliseconds, the store's ``ts`` is microseconds
(``pl.Datetime("us", "UTC")``). Trade ``side`` is the aggressor, which ccxt already derives from
Binance's ``m`` flag (``m`` true: the buyer was the maker, the aggressor sold).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from botclave_cli.data.schemas import TS, KindSpec, register_kind

#: the account's own fills (``fetch my-trades``); ``side`` is the account's side, not an aggressor
MY_TRADES = register_kind(KindSpec(
    "my_trades",
    {"ts": TS, "trade_id": pl.Int64(), "order_id": pl.Int64(), "side": pl.String(),
     "price": pl.Float64(), "qty": pl.Float64(), "cost": pl.Float64(), "fee": pl.Float64(),
     "fee_currency": pl.String(), "taker_or_maker": pl.String()},
    key=("trade_id",),
    sort=("ts", "trade_id"),
    nullable=frozenset({"order_id", "cost", "fee", "fee_currency", "taker_or_maker"}),
))


def _ts(ms: pl.Expr) -> pl.Expr:
    return (ms.cast(pl.Int64) * 1000).cast(TS)


def _trades_frame(trades: list[dict[str, Any]], id_col: str, extra: dict[str, list[Any]],
                  tail: list[pl.Expr]) -> pl.DataFrame:
    """Shared by both trade kinds: time, ``int(id)`` as ``id_col``, price, qty, side; then the
    ``extra`` columns, selected after ``id_col`` through the ``tail`` expressions."""
    return pl.DataFrame({
        "ms": [t["timestamp"] for t in trades],
        id_col: [int(t["id"]) for t in trades],
        "price": [t["price"] for t in trades],
        "qty": [t["amount"] for t in trades],
        "side": [t["side"] for t in trades],
        **extra,
    }, schema_overrides={"price": pl.Float64, "qty": pl.Float64}).select(
        _ts(pl.col("ms")).alias("ts"), pl.lit(None, TS).alias("ts_local"), "price", "qty",
        "side", id_col, *tail)


def agg_trades_frame(trades: list[dict[str, Any]]) -> pl.DataFrame:
    """ccxt ``fetch_trades`` on Binance (aggTrades) -> kind ``agg_trades``."""
    extra = {
        "first_trade_id": [_opt_int(t["info"].get("f")) for t in trades],
        "last_trade_id": [_opt_int(t["info"].get("l")) for t in trades],
    }
    return _trades_frame(trades, "agg_id", extra,
                         [pl.col("first_trade_id", "last_trade_id").cast(pl.Int64)])


def raw_trades_frame(trades: list[dict[str, Any]]) -> pl.DataFrame:
    """ccxt ``fetch_trades`` via historicalTrades -> kind ``trades``."""
    return _trades_frame(trades, "trade_id", {},
                         [pl.lit(None, pl.String).alias("trade_uid")])


def ohlcv_frame(rows: list[list[Any]]) -> pl.DataFrame:
    """ccxt ``fetch_ohlcv`` rows ``[open ms, o, h, l, c, volume]`` -> kind ``ohlcv``."""
    names = ["ms", "open", "high", "low", "close", "volume"]
    frame = pl.DataFrame([r[:6] for r in rows], schema=names, orient="row",
                         schema_overrides={n: pl.Float64 for n in names[1:]})
    return frame.select(_ts(pl.col("ms")).alias("ts"), *names[1:])


def funding_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """ccxt ``fetch_funding_rate_history`` -> kind ``funding`` (rate as a fraction)."""
    return pl.DataFrame({
        "ms": [r["timestamp"] for r in rows],
        "funding_rate": [r["fundingRate"] for r in rows],
        "mark_price": [_opt_float(r.get("info", {}).get("markPrice")) for r in rows],
    }, schema_overrides={"funding_rate": pl.Float64, "mark_price": pl.Float64}).select(
        _ts(pl.col("ms")).alias("ts"), "funding_rate", "mark_price")


def book_frame(book: dict[str, Any], ts_local_us: int, seq: int) -> pl.DataFrame:
    """ccxt ``fetch_order_book`` -> kind ``book_snapshot``, long form (level 0 = best)."""
    sides = []
    for side, levels in (("bid", book.get("bids") or []), ("ask", book.get("asks") or [])):
        sides.append(pl.DataFrame({
            "side": [side] * len(levels), "level": list(range(len(levels))),
            "price": [float(lv[0]) for lv in levels], "qty": [float(lv[1]) for lv in levels],
        }, schema={"side": pl.String, "level": pl.Int32, "price": pl.Float64,
                   "qty": pl.Float64}))
    ts_ms = book.get("timestamp")
    return pl.concat(sides).select(
        (pl.lit(ts_ms * 1000 if ts_ms is not None else None, pl.Int64)).cast(TS).alias("ts"),
        pl.lit(ts_local_us, pl.Int64).cast(TS).alias("ts_local"),
        pl.lit(seq, pl.Int64).alias("seq"),
        pl.lit(_opt_int(book.get("nonce")), pl.Int64).alias("last_update_id"),
        "side", "level", "price", "qty")


def my_trades_frame(trades: list[dict[str, Any]]) -> pl.DataFrame:
    """ccxt ``fetch_my_trades`` -> kind ``my_trades``."""
    return pl.DataFrame({
        "ms": [t["timestamp"] for t in trades],
        "trade_id": [int(t["id"]) for t in trades],
        "order_id": [_opt_int(t.get("order")) for t in trades],
        "side": [t["side"] for t in trades],
        "price": [t["price"] for t in trades],
        "qty": [t["amount"] for t in trades],
        "cost": [t.get("cost") for t in trades],
        "fee": [_opt_float((t.get("fee") or {}).get("cost")) for t in trades],
        "fee_currency": [(t.get("fee") or {}).get("currency") for t in trades],
        "taker_or_maker": [t.get("takerOrMaker") for t in trades],
    }, schema_overrides={"price": pl.Float64, "qty": pl.Float64, "cost": pl.Float64,
                         "fee": pl.Float64, "order_id": pl.Int64, "fee_currency": pl.String,
                         "taker_or_maker": pl.String}).select(
        _ts(pl.col("ms")).alias("ts"), pl.exclude("ms"))


def _opt_int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _opt_float(value: Any) -> float | None:
    return float(value) if value is not None else None
