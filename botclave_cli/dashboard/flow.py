"""Order flow of a selection: footprint bars and levels, CVD, volume profile and signals.

Built from the store's trades by the engine (``build_from_store(write=False)``: read in place,
nothing is written), then cut to what the browser needs (``window``, ``overview_bars``): the
server downsamples, so a day of 1m bars stays fluid in the page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from botclave_cli.data.store import DatasetRef, Store
from botclave_cli.engine.footprint.builder import FootprintResult, FootprintSpec
from botclave_cli.engine.signals.indicators import VolumeProfile
from botclave_cli.errors import DataError

#: at most this many bars are drawn level by level (bid x ask text); more show candles + delta
DETAIL_MAX_BARS = 90
#: at most this many candles go to the browser; more are merged k by k on the server (each
#: candle is an SVG path the browser draws: a day of 1m bars goes as 360 4m candles, ~3 px
#: each on a wide page)
OVERVIEW_MAX_BARS = 360
#: at most this many volume-profile rows go to the browser; more are merged k by k
PROFILE_MAX_ROWS = 200


@dataclass
class FlowView:
    """Everything the Order Flow tab draws for one selection."""

    ref: DatasetRef
    result: FootprintResult
    cvd: pl.DataFrame
    profile: VolumeProfile
    signals: pl.DataFrame
    trades: int

    @property
    def row_price(self) -> float:
        return self.result.spec.row_size * self.result.spec.tick_size


def footprint_spec(store: Store, ref: DatasetRef, bar: str, row_size: int) -> FootprintSpec:
    """The spec for the sidebar's bar and row choice; the tick from the dataset's manifest."""
    from botclave_cli.engine.footprint.store import resolve_tick

    manifest = store.manifest(ref)
    tick = resolve_tick(manifest, None)
    lot = manifest.lot_size if manifest and manifest.lot_size else None
    return FootprintSpec(bar=bar, tick_size=tick, row_size=row_size, qty_step=lot)


def build_view(store: Store, ref: DatasetRef, spec: FootprintSpec, start: dt.datetime,
               end: dt.datetime, session: str = "daily") -> FlowView:
    """Footprint, CVD (reset per ``session``), volume profile and signals over [start, end)."""
    from botclave_cli.engine.footprint.store import build_from_store, partition_chunks
    from botclave_cli.engine.signals.flow_events import absorption
    from botclave_cli.engine.signals.indicators import cvd_bars, delta_divergence, volume_profile
    from botclave_cli.engine.signals.order_flow_signal import signals_frame

    try:
        run = build_from_store(store, ref, spec, start, end, write=False, keep=True)
    except DataError as exc:
        from botclave_cli.dashboard.data import fetch_hint

        raise DataError(f"{exc.message}: run {fetch_hint(ref.exchange, ref.market, ref.symbol)}"
                        f" --from {start:%Y-%m-%d} --to {end:%Y-%m-%d}") from None
    assert run.result is not None  # keep=True
    result = run.result
    bars = result.bars
    cvd = cvd_bars(bars, "none" if session == "none" else "daily")
    row_price = spec.row_size * spec.tick_size
    profile = volume_profile(result.levels, row_price, value_area_share=spec.value_area,
                             close=float(bars["close"][-1]), lot=spec.step)
    parts = [signals_frame([])]
    if bars.height > 10:
        parts.append(delta_divergence(bars, k=3))
    trades = pl.concat([c.collect() for c in partition_chunks(store, ref, start, end)])
    parts.append(absorption(trades, spec.tick_size))
    return FlowView(ref, result, cvd, profile, signals_frame(pl.concat(parts)), run.trades)


def window_bars(bars: pl.DataFrame, lo: dt.datetime | None, hi: dt.datetime | None
                ) -> pl.DataFrame:
    """Bars whose start lies in [lo, hi] (either bound open)."""
    out = bars
    if lo is not None:
        out = out.filter(pl.col("bar_start") >= lo)
    if hi is not None:
        out = out.filter(pl.col("bar_start") <= hi)
    return out


def overview_bars(bars: pl.DataFrame, max_bars: int = OVERVIEW_MAX_BARS) -> pl.DataFrame:
    """At most ``max_bars`` candles: consecutive groups of k bars merged (open of the first,
    high/low extremes, close of the last, volumes and delta summed), k the smallest that fits.
    Returns columns bar_start, bar_end, open, high, low, close, volume, delta, bars."""
    k = max(1, -(-bars.height // max_bars))
    return (bars.with_row_index("_i").with_columns((pl.col("_i") // k).alias("_g"))
            .group_by("_g", maintain_order=True)
            .agg(pl.col("bar_start").first(), pl.col("bar_end").last(),
                 pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
                 pl.col("close").last(), pl.col("volume").sum(), pl.col("delta").sum(),
                 pl.len().alias("bars"))
            .drop("_g"))


def profile_rows(levels: pl.DataFrame, max_rows: int = PROFILE_MAX_ROWS) -> pl.DataFrame:
    """A volume profile's rows (price low to high, on a regular grid) merged k by k, k the
    smallest that leaves at most ``max_rows``: price = the group's lowest row, volumes summed."""
    k = max(1, -(-levels.height // max_rows))
    if k == 1:
        return levels
    return (levels.with_row_index("_i").group_by(pl.col("_i") // k, maintain_order=True)
            .agg(pl.col("price").first(), pl.col("volume").sum(), pl.col("buy_volume").sum(),
                 pl.col("sell_volume").sum())
            .drop("_i"))


def detail_grid(levels: pl.DataFrame, bars: pl.DataFrame
                ) -> tuple[list[dt.datetime], list[float], list[list[float | None]],
                           list[list[str]]]:
    """The footprint cells of ``bars``: x (bar starts), y (level prices, low to high), the
    delta per cell (None where the level did not trade in the bar) and the "bid x ask" text."""
    ids = bars["bar_id"]
    lv = levels.filter(pl.col("bar_id").is_in(ids.implode()))
    xs = bars["bar_start"].to_list()
    ys = sorted(set(lv["price"].to_list()))
    col = {b: i for i, b in enumerate(ids.to_list())}
    row = {p: j for j, p in enumerate(ys)}
    z: list[list[float | None]] = [[None] * len(xs) for _ in ys]
    text = [[""] * len(xs) for _ in ys]
    for b, p, bid, ask, d in lv.select("bar_id", "price", "bid_volume", "ask_volume",
                                       "delta").iter_rows():
        z[row[p]][col[b]] = d
        text[row[p]][col[b]] = f"{bid:g} x {ask:g}"
    return xs, ys, z, text
