"""Support and resistance from liquidity concentration in the sampled books.

Clusters of resting size (price buckets of a few ticks) that hold much more than the side's
typical bucket, averaged over every valid sample (so size must persist, not flash). Input: the
``book_snapshot`` long form (ts, side, level, price, qty); prices in quote units.
"""

from __future__ import annotations

import polars as pl


def support_resistance(samples: pl.DataFrame, tick_size: float, *, cluster_ticks: int,
                       top: int = 5) -> pl.DataFrame:
    """Price buckets (``cluster_ticks`` ticks) where resting size concentrates and persists.

    strength = mean bucket size over all valid samples / median bucket size of that side;
    bids give support, asks resistance. Columns: kind, side, price_low, price_high,
    mean_qty, presence (share of samples showing size there), strength.
    """
    width = cluster_ticks * tick_size
    n_samples = samples["ts"].n_unique()
    if not n_samples:
        return pl.DataFrame()
    buckets = (samples.with_columns((pl.col("price") / width).floor().alias("_b"))
               .group_by("side", "_b", "ts").agg(pl.col("qty").sum())
               .group_by("side", "_b")
               .agg((pl.col("qty").sum() / n_samples).alias("mean_qty"),
                    (pl.len() / n_samples).alias("presence"))
               .with_columns((pl.col("mean_qty") / pl.col("mean_qty").median().over("side"))
                             .alias("strength")))
    return (buckets.sort("strength", descending=True).group_by("side", maintain_order=True)
            .head(top)
            .select(pl.when(pl.col("side") == "bid").then(pl.lit("support"))
                    .otherwise(pl.lit("resistance")).alias("kind"), "side",
                    (pl.col("_b") * width).alias("price_low"),
                    ((pl.col("_b") + 1) * width).alias("price_high"),
                    "mean_qty", "presence", "strength")
            .sort("kind", "strength", descending=[False, True]))
