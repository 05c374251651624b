"""Time bars the strategy decides on, from trades or from stored OHLCV.

Only what decisions need (OHLC, volume, aggressor split, delta); the price-level footprint is
``engine/footprint/``'s job. A bar ``[bar_start, bar_end)`` is complete at ``bar_end``, which is
the earliest time a decision based on it can be made.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from botclave_cli.strategy.params import bar_us

BAR_COLUMNS = ("bar_start", "bar_end", "open", "high", "low", "close", "volume", "buy_volume",
               "sell_volume", "delta", "delta_pct", "trade_count")


_SCHEMA: dict[str, pl.DataType] = {
    "bar_start": pl.Datetime("us", "UTC"), "bar_end": pl.Datetime("us", "UTC"),
    "open": pl.Float64(), "high": pl.Float64(), "low": pl.Float64(), "close": pl.Float64(),
    "volume": pl.Float64(), "buy_volume": pl.Float64(), "sell_volume": pl.Float64(),
    "delta": pl.Float64(), "delta_pct": pl.Float64(), "trade_count": pl.Int64()}


def every(timeframe: str) -> str:
    """Polars duration string of a timeframe (``1m`` -> ``60000000us``)."""
    return f"{bar_us(timeframe)}us"


def bars_from_trades(trades: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """Time bars of ``trades`` (ts, price, qty, side; sorted by ts); only bars that hold trades.

    One pass of numpy ``reduceat`` over bar boundaries (trades are already in time order):
    sums run left to right, so results are reproducible.
    """
    dur = bar_us(timeframe)
    ts = trades["ts"].dt.epoch("us").to_numpy()
    if len(ts) == 0:
        return pl.DataFrame(schema=_SCHEMA)
    bar = ts // dur
    starts = np.concatenate([[0], np.flatnonzero(bar[1:] != bar[:-1]) + 1])
    ends = np.concatenate([starts[1:], [len(ts)]])
    price = trades["price"].to_numpy()
    qty = trades["qty"].to_numpy()
    buy_qty = np.where((trades["side"] == "buy").to_numpy(), qty, 0.0)
    volume = np.add.reduceat(qty, starts)
    buy = np.add.reduceat(buy_qty, starts)
    out = pl.DataFrame({
        "bar_start": bar[starts] * dur,
        "open": price[starts], "high": np.maximum.reduceat(price, starts),
        "low": np.minimum.reduceat(price, starts), "close": price[ends - 1],
        "volume": volume, "buy_volume": buy, "sell_volume": np.add.reduceat(qty - buy_qty, starts),
        "trade_count": (ends - starts).astype(np.int64),
    }).with_columns(pl.col("bar_start").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))
    return _finish(out.lazy(), f"{dur}us").collect()


class BarTrades(NamedTuple):
    """One closed bar's trades as arrays, in time order: what the live path hands the strategy
    (no frame per bar). ``ts_us`` exchange time (us), ``price`` quote, ``qty`` base, ``buy``
    the aggressor is the buyer."""

    ts_us: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    buy: np.ndarray

    @classmethod
    def of(cls, trades: pl.DataFrame) -> BarTrades:
        """The arrays of store-schema trades (ts, price, qty, side)."""
        return cls(trades["ts"].dt.epoch("us").to_numpy(), trades["price"].to_numpy(),
                   trades["qty"].to_numpy(), (trades["side"] == "buy").to_numpy())

    def slice(self, lo: int, hi: int) -> BarTrades:
        return BarTrades(self.ts_us[lo:hi], self.price[lo:hi], self.qty[lo:hi],
                         self.buy[lo:hi])


def bar_row(ts_us: np.ndarray, price: np.ndarray, qty: np.ndarray, buy: np.ndarray,
            timeframe: str) -> dict[str, Any]:
    """The one bar of a bar's trades as a row (``bars_from_trades``'s columns and values, same
    arithmetic, without building frames: the live path closes a bar per call)."""
    dur = bar_us(timeframe)
    start = int(ts_us[0]) // dur * dur
    first = np.zeros(1, np.int64)
    buy_qty = np.where(buy, qty, 0.0)
    volume = float(np.add.reduceat(qty, first)[0])
    buy_v = float(np.add.reduceat(buy_qty, first)[0])
    sell_v = float(np.add.reduceat(qty - buy_qty, first)[0])
    delta = buy_v - sell_v
    begin = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=start)
    return {"bar_start": begin, "bar_end": begin + dt.timedelta(microseconds=dur),
            "open": float(price[0]), "high": float(np.maximum.reduceat(price, first)[0]),
            "low": float(np.minimum.reduceat(price, first)[0]), "close": float(price[-1]),
            "volume": volume, "buy_volume": buy_v, "sell_volume": sell_v, "delta": delta,
            "delta_pct": delta / volume if volume > 0 else 0.0, "trade_count": len(ts_us)}


BAR_SCHEMA = _SCHEMA


def bars_from_ohlcv(ohlcv: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """Bars from stored OHLCV rows (no aggressor split: buy/sell volume and delta are null)."""
    dur = every(timeframe)
    out = ohlcv.lazy().sort("ts").rename({"ts": "bar_start"}).select(
        "bar_start", "open", "high", "low", "close", "volume",
        pl.lit(None, pl.Float64).alias("buy_volume"), pl.lit(None, pl.Float64).alias("sell_volume"),
        (pl.col("trade_count") if "trade_count" in ohlcv.columns else pl.lit(None))
        .cast(pl.Int64).alias("trade_count"),
    )
    return _finish(out, dur).collect()


def _finish(lf: pl.LazyFrame, dur: str) -> pl.LazyFrame:
    delta = pl.col("buy_volume") - pl.col("sell_volume")
    return lf.with_columns(
        (pl.col("bar_start") + pl.duration(microseconds=int(dur[:-2]))).alias("bar_end"),
        delta.alias("delta"),
        pl.when(pl.col("volume") > 0).then(delta / pl.col("volume")).otherwise(0.0)
        .alias("delta_pct"),
    ).select(BAR_COLUMNS)
