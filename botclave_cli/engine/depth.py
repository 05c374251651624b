"""Depth analytics over the rebuilt book: series, walls, support/resistance, absorption.

Inputs are Polars frames, never the kernel: sampled books in the ``book_snapshot`` long form
(ts, side, level, price, qty; level 0 = best; only valid samples exist, so nothing is computed
from a stretch where the book was invalid), the top-of-book ``events`` of a replay (for OFI) and
trades (ts, price, qty, side = aggressor). Units: prices and quantities as in the store, times in
microseconds (``pl.Datetime("us", "UTC")``), bands in basis points of the mid.

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
from pydantic import BaseModel, ConfigDict, Field

from botclave_cli.data.manifest import Manifest
from botclave_cli.data.scalars import as_datetime, as_float
from botclave_cli.data.schemas import TS, KindSpec, register_kind
from botclave_cli.data.store import DatasetRef, Store, from_us, params_hash, to_us
from botclave_cli.engine.dom_builder import DOMState, LiquidityLevel
from botclave_cli.errors import DataError

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


class DepthParams(BaseModel):
    """Parameters of the depth analytics (hashed into the ``params=`` level of the dataset)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_us: int = Field(1_000_000, gt=0, description="sampling interval")
    sample_depth: int = Field(20, ge=1, description="levels per side kept in samples")
    levels: int = Field(10, ge=1, description="levels per side for the imbalance")
    band_bps: float = Field(10.0, gt=0, description="band around the mid for imbalance_band")
    wall_k: float = Field(10.0, gt=1, description="wall: size >= k x typical level size")
    wall_min_us: int = Field(60_000_000, ge=0, description="wall: persists at least this long")
    cluster_ticks: int = Field(10, ge=1, description="support/resistance price bucket, ticks")
    absorption_window_us: int = Field(60_000_000, gt=0, description="absorption: window")
    absorption_volume_k: float = Field(
        20.0, gt=0, description="absorption: traded qty >= k x median traded qty per level-window")
    absorption_refill: float = Field(
        2.0, gt=0, description="absorption: traded qty >= refill x mean resting qty shown")
    absorption_break_ticks: int = Field(2, ge=0, description="absorption: max trade-through")


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


class DepthAnalyzer:
    """Depth series, walls, support/resistance and absorption from sampled books and trades."""

    def __init__(self, params: DepthParams | None = None) -> None:
        self.params = params or DepthParams()

    # series ---------------------------------------------------------------------------------
    def series(self, samples: pl.DataFrame, events: pl.DataFrame | None = None) -> pl.DataFrame:
        """One row per valid sample: the ``depth_series`` kind."""
        p = self.params
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
            qty.filter(bid & (pl.col("level") < p.levels)).sum().alias("_bn"),
            qty.filter(ask & (pl.col("level") < p.levels)).sum().alias("_an"),
            qty.filter(bid & (dist <= p.band_bps)).sum().alias("_bb"),
            qty.filter(ask & (dist <= p.band_bps)).sum().alias("_ab"),
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
                   .group_by(_ceil_ts("ts", p.interval_us).alias("ts"))
                   .agg(pl.col("e").sum().alias("ofi")))
            out = out.join(ofi, on="ts", how="left").with_columns(pl.col("ofi").fill_null(0.0))
        else:
            out = out.with_columns(pl.lit(None, pl.Float64).alias("ofi"))
        return out.select(list(DEPTH_SERIES.schema)).with_columns(pl.col("ts").cast(TS))

    # walls ----------------------------------------------------------------------------------
    def walls(self, samples: pl.DataFrame, trades: pl.DataFrame | None = None
              ) -> list[LiquidityLevel]:
        """Resting size >= wall_k x the side's median level size, persisting >= wall_min_us.

        A wall ends ``traded_through`` when trades reach its price (aggressive sells at or below a
        bid wall, buys at or above an ask wall) between its last sample and the next one,
        ``pulled`` otherwise, ``open`` when it is still there in the last sample, and
        ``out_of_view`` when the next sample no longer reaches its price (the book moved more
        than ``sample_depth`` levels away: sample deeper to follow it).
        """
        p = self.params
        step = p.interval_us
        if samples.is_empty():
            return []
        last_ts = samples["ts"].max()
        cand = (samples.with_columns(pl.col("qty").median().over("ts", "side").alias("_typ"))
                .filter(pl.col("qty") >= p.wall_k * pl.col("_typ"))
                .with_columns(pl.col("ts").dt.epoch("us").alias("_us"))
                .sort("side", "price", "_us"))
        if cand.is_empty():
            return []
        new = (pl.col("_us").diff().over("side", "price").fill_null(step * 10) > step * 3 // 2)
        episodes = (cand.with_columns(new.cum_sum().over("side", "price").alias("_ep"))
                    .group_by("side", "price", "_ep")
                    .agg(pl.col("_us").min().alias("first"), pl.col("_us").max().alias("last"),
                         pl.col("qty").max().alias("peak"), pl.col("_typ").median().alias("typ"))
                    .filter(pl.col("last") - pl.col("first") + step >= p.wall_min_us)
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

    # support / resistance ---------------------------------------------------------------------
    def support_resistance(self, samples: pl.DataFrame, tick_size: float, top: int = 5
                           ) -> pl.DataFrame:
        """Price buckets (``cluster_ticks`` ticks) where resting size concentrates and persists.

        strength = mean bucket size over all valid samples / median bucket size of that side;
        bids give support, asks resistance. Columns: kind, side, price_low, price_high,
        mean_qty, presence (share of samples showing size there), strength.
        """
        width = self.params.cluster_ticks * tick_size
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

    # absorption -----------------------------------------------------------------------------
    def absorption(self, samples: pl.DataFrame, trades: pl.DataFrame, tick_size: float
                   ) -> list[AbsorptionZone]:
        """Windows where aggressive volume into one price is large (>= absorption_volume_k x the
        median per level and window), exceeds what the book showed there (>= absorption_refill x
        the mean resting size: it refilled), the level still shows size at the window's last
        sample (it held), and no trade went more than absorption_break_ticks through it.
        Consecutive windows at prices within the break distance merge into one zone."""
        p = self.params
        w = p.absorption_window_us
        brk = p.absorption_break_ticks * tick_size + tick_size / 2
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
        floor = as_float(hits["vol"].median(), "absorption: median volume") * p.absorption_volume_k
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
                .filter((pl.col("vol") >= p.absorption_refill * pl.col("shown"))
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


# running it over the store ---------------------------------------------------------------------
@dataclass
class DepthResult:
    """Everything one depth run produced (frames in store schemas, objects for the report)."""

    counts: dict
    samples: pl.DataFrame
    series: pl.DataFrame
    walls: list[LiquidityLevel]
    zones: list[AbsorptionZone]
    levels: pl.DataFrame
    trades: pl.DataFrame
    tick_size: float


def analyze_book(
    book_snapshot: pl.DataFrame, book_diff: pl.DataFrame, trades: pl.DataFrame | None,
    market: str, params: DepthParams | None = None, tick_size: float | None = None,
    start_us: int | None = None, end_us: int | None = None,
) -> DepthResult:
    """Replay the book, sample it, and run every analysis on the valid samples in the range.

    ``tick_size`` (quote units) is for the analytics (price buckets, absorption break); the
    replay itself runs on the data's own decimal grid. Times in us, [start_us, end_us).
    """
    from botclave_cli.engine.dom_builder import BookStream, DOMBuilder

    p = params or DepthParams()
    # the kernel works on the data's own decimal grid (exact); the tick is for the analytics
    stream = BookStream.from_frames(book_snapshot, book_diff)
    replay = DOMBuilder(market).replay(stream, sample_interval_us=p.interval_us,
                                       sample_depth=p.sample_depth)
    samples = replay.samples_frame()
    events = replay.events()
    trades = trades if trades is not None else pl.DataFrame(
        schema={"ts": TS, "price": pl.Float64, "qty": pl.Float64, "side": pl.String})
    us = pl.col("ts").dt.epoch("us")
    if start_us is not None:
        samples, events, trades = (f.filter(us >= start_us) for f in (samples, events, trades))
    if end_us is not None:
        samples, events, trades = (f.filter(us < end_us) for f in (samples, events, trades))
    analyzer = DepthAnalyzer(p)
    tick = tick_size or stream.tick_size
    counts = replay.counts
    counts["samples_valid"] = samples["ts"].n_unique()
    counts["samples_taken"] = int(len(replay.samples.get("ts", [])))
    return DepthResult(
        counts=counts, samples=samples, series=analyzer.series(samples, events),
        walls=analyzer.walls(samples, trades), zones=analyzer.absorption(samples, trades, tick),
        levels=analyzer.support_resistance(samples, tick), trades=trades, tick_size=tick,
    )


#: diffs this long before the chosen snapshot are read too: Binance asks to buffer them
BUFFER_BEFORE_SNAPSHOT_US = 60_000_000


def load_book(store: Store, exchange: str, market: str, symbol: str, start_us: int | None = None,
              end_us: int | None = None, trades_kind: str | None = None) -> dict:
    """Snapshots, diffs and trades for a depth run from the store, starting at the last REST
    snapshot at or before ``start_us`` (the book needs one to sync). Returns frames plus the
    manifest's tick and lot (None when the manifest has none)."""
    ref = DatasetRef(exchange, market, symbol, "book_diff")
    snap_ref = DatasetRef(exchange, market, symbol, "book_snapshot")
    for r in (ref, snap_ref):
        if not store.exists(r):
            raise DataError(f"no {r.kind} dataset at {store.path(r)}; record or import a capture")
    when = pl.coalesce("ts", "ts_local").dt.epoch("us")
    heads = (store.scan(snap_ref).group_by("seq").agg(when.min().alias("t")).sort("seq")
             .collect())
    if heads.is_empty():
        raise DataError(f"{store.path(snap_ref)}: no snapshot to start the book from")
    before = heads.filter(pl.col("t") <= start_us) if start_us is not None else heads.head(1)
    first = (before.tail(1) if before.height else heads.head(1)).row(0, named=True)
    lo = first["t"] - BUFFER_BEFORE_SNAPSHOT_US
    lo_dt, hi_dt = from_us(lo), (from_us(end_us) if end_us is not None else None)
    # raw trades where present, else aggregate trades, unless the caller chose (DECISIONS.md)
    trades_ref = DatasetRef(exchange, market, symbol, trades_kind or "trades")
    if trades_kind is None and not store.exists(trades_ref):
        trades_ref = DatasetRef(exchange, market, symbol, "agg_trades")
    if trades_kind is not None and not store.exists(trades_ref):
        raise DataError(f"no {trades_kind} dataset at {store.path(trades_ref)}")
    trades = (store.scan(trades_ref, lo_dt, hi_dt).select("ts", "price", "qty", "side")
              .sort("ts").collect() if store.exists(trades_ref) else None)
    manifest = store.manifest(ref)
    return {
        "book_snapshot": store.scan(snap_ref, lo_dt, hi_dt).filter(
            pl.col("seq") >= first["seq"]).collect(),
        "book_diff": store.scan(ref, lo_dt, hi_dt).collect(),
        "trades": trades,
        "tick_size": manifest.tick_size if manifest else None,
        "lot_size": manifest.lot_size if manifest else None,
    }


def write_depth(store: Store, exchange: str, market: str, symbol: str, result: DepthResult,
                params: DepthParams, source: str) -> dict[str, str]:
    """Store the samples (``book_snapshot`` under ``params=``, manifest: sampled by botclave
    with interval and depth) and the series (``depth_series`` under ``params=``)."""
    written = {}
    sample_params = {"sampled_by": "botclave", "interval_us": params.interval_us,
                     "depth": params.sample_depth}
    series_params = params.model_dump()
    for kind, df, prm in (("book_snapshot", result.samples, sample_params),
                          ("depth_series", result.series, series_params)):
        ref = DatasetRef(exchange, market, symbol, kind).with_level("params", params_hash(prm))
        span = (to_us(as_datetime(df["ts"].min(), f"{kind}: first time")),
                to_us(as_datetime(df["ts"].max(), f"{kind}: last time")) + params.interval_us) \
            if df.height else None

        def new(kind: str = kind, prm: dict = prm) -> Manifest:
            return Manifest(kind=kind, exchange=exchange, market=market, symbol=symbol,
                            source=f"botclave-sampled:{source}", params=prm,
                            tick_size=result.tick_size)

        def update(m: Manifest, span=span) -> None:
            if span is not None:
                m.add_coverage(*span)

        store.write(ref, df, update_manifest=update, new_manifest=new)
        written[kind] = str(ref.relpath())
    return written
