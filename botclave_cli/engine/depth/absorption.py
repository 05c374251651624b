"""Absorption zones from book + trades: aggressive volume traded into a price while the resting
size there holds or refills (iceberg-like) and price does not break through.

Inputs: sampled books (``book_snapshot`` long form: ts, side, level, price, qty; valid samples
only) and trades (ts, price, qty, side = aggressor). Prices in quote units, sizes in base units,
times in microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from botclave_cli.data.scalars import as_float


@dataclass(frozen=True)
class AbsorptionZone:
    """Aggressive volume absorbed by resting size that held or refilled, price not breaking.

    ``side`` is the passive side that absorbed (``bid`` absorbs selling); prices in quote units,
    ``absorbed_qty`` in base units traded into the zone, ``shown_qty`` the mean resting size seen.
    """

    side: str
    price: float
    price_low: float
    price_high: float
    start_us: int
    end_us: int
    absorbed_qty: float
    shown_qty: float
    trades: int


def find_absorption(samples: pl.DataFrame, trades: pl.DataFrame, tick_size: float, *,
                    window_us: int, volume_k: float, refill: float, break_ticks: int
                    ) -> list[AbsorptionZone]:
    """Windows where aggressive volume into one price is large (>= volume_k x the median per
    level and window of ``window_us``), exceeds what the book showed there (>= refill x the
    mean resting size: it refilled), the level still shows size at the window's last sample
    (it held), and no trade went more than break_ticks through it.
    Consecutive windows at prices within the break distance merge into one zone."""
    w = window_us
    brk = break_ticks * tick_size + tick_size / 2
    if trades.is_empty() or samples.is_empty():
        return []
    win = (pl.col("ts").dt.epoch("us") // w).alias("_w")
    tick = (pl.col("price") / tick_size).round().cast(pl.Int64).alias("_tick")
    tr = trades.with_columns(win, tick, pl.when(pl.col("side") == "sell").then(pl.lit("bid"))
                             .otherwise(pl.lit("ask")).alias("_passive"))
    extremes = tr.group_by("_w").agg(pl.col("price").min().alias("_lo"),
                                     pl.col("price").max().alias("_hi"))
    hits = (tr.group_by("_w", "_passive", "_tick")
            .agg(pl.col("price").first(), pl.col("qty").sum().alias("vol"),
                 pl.len().alias("n")))
    floor = as_float(hits["vol"].median(), "absorption: median volume") * volume_k
    book = (samples.with_columns(win, tick)
            .with_columns((pl.col("ts") == pl.col("ts").max()).over("_w").alias("_end"))
            .group_by("_w", "side", "_tick")
            .agg((pl.col("qty").sum() / pl.col("ts").n_unique()).alias("shown_seen"),
                 pl.len().alias("_k"), pl.col("qty").filter(pl.col("_end")).sum()
                 .alias("end_qty")))
    per_window = samples.with_columns(win).group_by("_w").agg(
        pl.col("ts").n_unique().alias("_nw"))
    cand = (hits.filter(pl.col("vol") >= floor)
            .join(book, left_on=["_w", "_passive", "_tick"], right_on=["_w", "side", "_tick"])
            .join(per_window, on="_w").join(extremes, on="_w")
            .with_columns((pl.col("shown_seen") * pl.col("_k") / pl.col("_nw"))
                          .alias("shown"))
            .filter((pl.col("vol") >= refill * pl.col("shown"))
                    & (pl.col("end_qty") > 0)
                    & pl.when(pl.col("_passive") == "bid")
                    .then(pl.col("_lo") >= pl.col("price") - brk)
                    .otherwise(pl.col("_hi") <= pl.col("price") + brk))
            .sort("_passive", "_w", "price"))
    return _merge_zones(cand, w, brk)


def _merge_zones(cand: pl.DataFrame, window_us: int, brk: float) -> list[AbsorptionZone]:
    zones: list[AbsorptionZone] = []
    current: dict | None = None
    for r in cand.iter_rows(named=True):
        if (current is not None and r["_passive"] == current["side"]
                and r["_w"] <= current["last_w"] + 1
                and current["lo"] - brk <= r["price"] <= current["hi"] + brk):
            current["last_w"] = r["_w"]
            current["lo"] = min(current["lo"], r["price"])
            current["hi"] = max(current["hi"], r["price"])
            current["vol"] += r["vol"]
            current["n"] += r["n"]
            current["shown"].append(r["shown"])
            current["pv"] += r["price"] * r["vol"]
            continue
        if current is not None:
            zones.append(_zone(current, window_us))
        current = {"side": r["_passive"], "first_w": r["_w"], "last_w": r["_w"], "lo": r["price"],
                   "hi": r["price"], "vol": r["vol"], "n": r["n"], "shown": [r["shown"]],
                   "pv": r["price"] * r["vol"]}
    if current is not None:
        zones.append(_zone(current, window_us))
    return zones


def _zone(c: dict, window_us: int) -> AbsorptionZone:
    return AbsorptionZone(
        side=c["side"], price=c["pv"] / c["vol"], price_low=c["lo"], price_high=c["hi"],
        start_us=c["first_w"] * window_us, end_us=(c["last_w"] + 1) * window_us,
        absorbed_qty=c["vol"], shown_qty=float(np.mean(c["shown"])), trades=c["n"])
