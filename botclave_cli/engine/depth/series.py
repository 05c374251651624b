"""Depth series: spread, mid, microprice, imbalance, OFI and depth by band, per sampled book.

Inputs are Polars frames, never the kernel: sampled books in the ``book_snapshot`` long form
(ts, side, level, price, qty; level 0 = best; only valid samples exist, so nothing is computed
from a stretch where the book was invalid) and the top-of-book ``events`` of a replay (for OFI).
Units: prices and quantities as in the store, times in microseconds
(``pl.Datetime("us", "UTC")``), bands in basis points of the mid.

Definitions (units in the names):
- ``spread`` = best ask - best bid; ``mid`` = their mean; ``microprice`` = (bid_px * ask_qty +
  ask_px * bid_qty) / (bid_qty + ask_qty) (leans toward the thinner side's price).
- ``imbalance`` = (bid size - ask size) / (bid size + ask size) within ``levels`` levels per side;
  ``imbalance_band`` the same within ``band_bps`` of the mid; both in [-1, 1].
- ``ofi``: Cont, Kukanov and Stoikov's order-flow imbalance, the sum over best-quote events n in
  (t - interval, t] of e_n = qb_n 1{Pb_n >= Pb_n-1} - qb_n-1 1{Pb_n <= Pb_n-1}
  - qa_n 1{Pa_n <= Pa_n-1} + qa_n-1 1{Pa_n >= Pa_n-1} (base units; events within one synced
  stretch only).
- ``depth_bid_<b>bps`` / ``depth_ask_<b>bps``: resting size within b bps of the mid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from botclave_cli.data.schemas import TS, KindSpec, register_kind
from botclave_cli.engine.book.dom_builder import DOMState

DEPTH_BANDS_BPS = (5, 10, 25, 50, 100)

DEPTH_SERIES = register_kind(KindSpec(
    "depth_series",
    {"ts": TS, "best_bid": pl.Float64(), "best_ask": pl.Float64(), "bid_qty": pl.Float64(),
     "ask_qty": pl.Float64(), "spread": pl.Float64(), "mid": pl.Float64(),
     "microprice": pl.Float64(), "imbalance": pl.Float64(), "imbalance_band": pl.Float64(),
     "ofi": pl.Float64(),
     **{f"depth_{s}_{b}bps": pl.Float64() for b in DEPTH_BANDS_BPS for s in ("bid", "ask")}},
    key=("ts",), sort=("ts",),
    nullable=frozenset({"best_bid", "best_ask", "bid_qty", "ask_qty", "spread", "mid",
                        "microprice", "imbalance", "imbalance_band", "ofi"}),
))


@dataclass(frozen=True)
class DepthSnapshot:
    """The depth metrics of one book (see the module docstring for the definitions)."""

    ts_us: int | None
    best_bid: float
    best_ask: float
    bid_qty: float
    ask_qty: float
    spread: float
    mid: float
    microprice: float
    imbalance: float
    imbalance_band: float
    depth_bps: dict[int, tuple[float, float]]

    @classmethod
    def from_state(cls, state: DOMState, levels: int = 10, band_bps: float = 10.0) -> DepthSnapshot:
        if not state.valid or not state.bid_price.size or not state.ask_price.size:
            raise ValueError("depth metrics need a valid book with both sides")
        bp, bq, ap, aq = state.bid_price, state.bid_qty, state.ask_price, state.ask_qty
        mid = (bp[0] + ap[0]) / 2
        in_b = np.abs(bp - mid) / mid * 1e4 <= band_bps
        in_a = np.abs(ap - mid) / mid * 1e4 <= band_bps

        def imb(b: float, a: float) -> float:
            return (b - a) / (b + a) if b + a > 0 else float("nan")

        depth = {b: (float(bq[np.abs(bp - mid) / mid * 1e4 <= b].sum()),
                     float(aq[np.abs(ap - mid) / mid * 1e4 <= b].sum())) for b in DEPTH_BANDS_BPS}
        return cls(
            ts_us=state.ts_us, best_bid=float(bp[0]), best_ask=float(ap[0]), bid_qty=float(bq[0]),
            ask_qty=float(aq[0]), spread=float(ap[0] - bp[0]), mid=float(mid),
            microprice=float((bp[0] * aq[0] + ap[0] * bq[0]) / (aq[0] + bq[0])),
            imbalance=imb(bq[:levels].sum(), aq[:levels].sum()),
            imbalance_band=imb(bq[in_b].sum(), aq[in_a].sum()), depth_bps=depth,
        )


def ofi_events(events: pl.DataFrame) -> pl.DataFrame:
    """e_n per best-quote event (the first event of each synced stretch has none)."""
    prev = {c: pl.col(c).shift(1).over("segment") for c in
            ("bid_price", "bid_qty", "ask_price", "ask_qty")}
    pb, qb, pa, qa = (pl.col(c) for c in ("bid_price", "bid_qty", "ask_price", "ask_qty"))
    e = (pl.when(pb >= prev["bid_price"]).then(qb).otherwise(0.0)
         - pl.when(pb <= prev["bid_price"]).then(prev["bid_qty"]).otherwise(0.0)
         - pl.when(pa <= prev["ask_price"]).then(qa).otherwise(0.0)
         + pl.when(pa >= prev["ask_price"]).then(prev["ask_qty"]).otherwise(0.0))
    return (events.sort("seq")
            .with_columns(e.alias("e"), prev["bid_price"].is_not_null().alias("_has_prev"))
            .filter(pl.col("_has_prev")).select("seq", "ts", "segment", "e"))


def _ceil_ts(col: str, interval_us: int) -> pl.Expr:
    us = pl.col(col).dt.epoch("us")
    return ((us + interval_us - 1) // interval_us * interval_us).cast(TS)



def depth_series(samples: pl.DataFrame, events: pl.DataFrame | None, *, levels: int,
                 band_bps: float, interval_us: int) -> pl.DataFrame:
    """One row per valid sample: the ``depth_series`` kind. ``levels`` per side for the
    imbalance, ``band_bps`` around the mid for ``imbalance_band``, OFI summed per
    ``interval_us`` (the sampling interval)."""
    bid, ask = pl.col("side") == "bid", pl.col("side") == "ask"
    top = pl.col("level") == 0

    def best(side: pl.Expr, col: str) -> pl.Expr:
        return pl.col(col).filter(side & top).first()

    df = samples.with_columns(
        ((best(bid, "price") + best(ask, "price")) / 2).over("ts").alias("_mid"))
    dist = (pl.col("price") - pl.col("_mid")).abs() / pl.col("_mid") * 1e4
    qty = pl.col("qty")
    aggs = [
        best(bid, "price").alias("best_bid"), best(ask, "price").alias("best_ask"),
        best(bid, "qty").alias("bid_qty"), best(ask, "qty").alias("ask_qty"),
        qty.filter(bid & (pl.col("level") < levels)).sum().alias("_bn"),
        qty.filter(ask & (pl.col("level") < levels)).sum().alias("_an"),
        qty.filter(bid & (dist <= band_bps)).sum().alias("_bb"),
        qty.filter(ask & (dist <= band_bps)).sum().alias("_ab"),
        *[qty.filter(s & (dist <= b)).sum().alias(f"depth_{name}_{b}bps")
          for b in DEPTH_BANDS_BPS for name, s in (("bid", bid), ("ask", ask))],
    ]
    out = df.group_by("ts").agg(aggs).sort("ts")
    imb = lambda b, a: pl.when(b + a > 0).then((b - a) / (b + a))  # noqa: E731
    out = out.with_columns(
        (pl.col("best_ask") - pl.col("best_bid")).alias("spread"),
        ((pl.col("best_ask") + pl.col("best_bid")) / 2).alias("mid"),
        ((pl.col("best_bid") * pl.col("ask_qty") + pl.col("best_ask") * pl.col("bid_qty"))
         / (pl.col("bid_qty") + pl.col("ask_qty"))).alias("microprice"),
        imb(pl.col("_bn"), pl.col("_an")).alias("imbalance"),
        imb(pl.col("_bb"), pl.col("_ab")).alias("imbalance_band"),
    )
    if events is not None and events.height:
        ofi = (ofi_events(events).filter(pl.col("ts").is_not_null())
               .group_by(_ceil_ts("ts", interval_us).alias("ts"))
               .agg(pl.col("e").sum().alias("ofi")))
        out = out.join(ofi, on="ts", how="left").with_columns(pl.col("ofi").fill_null(0.0))
    else:
        out = out.with_columns(pl.lit(None, pl.Float64).alias("ofi"))
    return out.select(list(DEPTH_SERIES.schema)).with_columns(pl.col("ts").cast(TS))
