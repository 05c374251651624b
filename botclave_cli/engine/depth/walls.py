"""Walls: resting size far above the typical level size that persists (``LiquidityLevel``).

Found in the sampled books (``book_snapshot`` long form: ts, side, level, price, qty; valid
samples only) and labelled by how they ended, using trades (ts, price, side = aggressor).
Prices and sizes as in the store, times in microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from botclave_cli.data.scalars import as_datetime
from botclave_cli.data.store import to_us


@dataclass(frozen=True)
class LiquidityLevel:
    """A wall: resting size >= k x the typical level size that persisted (see ``find_walls``).

    Times in us; ``ended`` is ``traded_through``, ``pulled``, ``open`` (still there at the end)
    or ``out_of_view`` (the sampled depth no longer reached its price).
    """

    side: str
    price: float
    first_seen_us: int
    last_seen_us: int
    peak_qty: float
    typical_qty: float
    ended: str

    @property
    def duration_us(self) -> int:
        return self.last_seen_us - self.first_seen_us


def find_walls(samples: pl.DataFrame, trades: pl.DataFrame | None, *, interval_us: int,
               wall_k: float, wall_min_us: int) -> list[LiquidityLevel]:
    """Resting size >= wall_k x the side's median level size, persisting >= wall_min_us.

    ``samples`` are taken every ``interval_us``: a level missing from one sample ends its
    episode.

    A wall ends ``traded_through`` when trades reach its price (aggressive sells at or below a
    bid wall, buys at or above an ask wall) between its last sample and the next one,
    ``pulled`` otherwise, ``open`` when it is still there in the last sample, and
    ``out_of_view`` when the next sample no longer reaches its price (the book moved more
    than ``sample_depth`` levels away: sample deeper to follow it).
    """
    step = interval_us
    if samples.is_empty():
        return []
    last_ts = samples["ts"].max()
    cand = (samples.with_columns(pl.col("qty").median().over("ts", "side").alias("_typ"))
            .filter(pl.col("qty") >= wall_k * pl.col("_typ"))
            .with_columns(pl.col("ts").dt.epoch("us").alias("_us"))
            .sort("side", "price", "_us"))
    if cand.is_empty():
        return []
    new = (pl.col("_us").diff().over("side", "price").fill_null(step * 10) > step * 3 // 2)
    episodes = (cand.with_columns(new.cum_sum().over("side", "price").alias("_ep"))
                .group_by("side", "price", "_ep")
                .agg(pl.col("_us").min().alias("first"), pl.col("_us").max().alias("last"),
                     pl.col("qty").max().alias("peak"), pl.col("_typ").median().alias("typ"))
                .filter(pl.col("last") - pl.col("first") + step >= wall_min_us)
                .sort("first", "side", "price"))
    last_us = to_us(as_datetime(last_ts, "depth walls: last sample time")) \
        if last_ts is not None else 0
    deepest = dict(
        ((us, side), px) for us, side, px in samples.group_by("ts", "side").agg(
            pl.when(pl.col("side").first() == "bid").then(pl.col("price").min())
            .otherwise(pl.col("price").max()).alias("deep"))
        .select(pl.col("ts").dt.epoch("us"), "side", "deep").iter_rows())
    out = []
    for row in episodes.iter_rows(named=True):
        ended = "open" if row["last"] >= last_us else "pulled"
        deep = deepest.get((row["last"] + step, row["side"]))
        if ended == "pulled" and deep is not None and (
                row["price"] < deep if row["side"] == "bid" else row["price"] > deep):
            ended = "out_of_view"
        if ended == "pulled" and trades is not None and trades.height:
            lo, hi = row["last"], row["last"] + 2 * step
            # a float tolerance: store prices (floats), not ticks, are compared here
            through = (pl.col("price") <= row["price"] + 5e-9) & (pl.col("side") == "sell") \
                if row["side"] == "bid" else \
                (pl.col("price") >= row["price"] - 5e-9) & (pl.col("side") == "buy")
            window = trades.filter((pl.col("ts").dt.epoch("us") > lo)
                                   & (pl.col("ts").dt.epoch("us") <= hi) & through)
            if window.height:
                ended = "traded_through"
        out.append(LiquidityLevel(side=row["side"], price=row["price"],
                                  first_seen_us=row["first"], last_seen_us=row["last"],
                                  peak_qty=row["peak"], typical_qty=row["typ"], ended=ended))
    return out
