"""Time bars the strategy decides on, from trades or from stored OHLCV.

Only what decisions need (OHLC, volume, aggressor split, delta); the price-level footprint is
``engine/footprint.py``'s job. A bar ``[bar_start, bar_end)`` is complete at ``bar_end``, which is
the earliest time a decision based on it can be made.
"""

from __future__ import annotations

import polars as pl

from botclave_cli.strategy.params import bar_us

BAR_COLUMNS = ("bar_start", "bar_end", "open", "high", "low", "close", "volume", "buy_volume",
               "sell_volume", "delta", "delta_pct", "trade_count")


def every(timeframe: str) -> str:
    """Polars duration string of a timeframe (``1m`` -> ``60000000us``)."""
    return f"{bar_us(timeframe)}us"


def bars_from_trades(trades: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """Time bars of ``trades`` (ts, price, qty, side); only bars that hold trades."""
    dur = every(timeframe)
    is_buy = pl.col("side") == "buy"
    out = (
        trades.lazy().sort("ts", maintain_order=True)
        .group_by_dynamic("ts", every=dur, closed="left", label="left")
        .agg(
            pl.col("price").first().alias("open"), pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"), pl.col("price").last().alias("close"),
            pl.col("qty").sum().alias("volume"),
            pl.col("qty").filter(is_buy).sum().alias("buy_volume"),
            pl.col("qty").filter(~is_buy).sum().alias("sell_volume"),
            pl.len().cast(pl.Int64).alias("trade_count"),
        )
        .rename({"ts": "bar_start"})
    )
    return _finish(out, dur).collect()


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
