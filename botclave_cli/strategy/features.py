"""Order-flow features per bar for OrderFlowStrategy, from the engine's detectors.

Each column is known at its bar's END (``bar_end``), so a decision at that time may use it:
- ``poc``, ``poc_high`` / ``poc_low`` (highest / lowest bar POC over ``target.poc_lookback_bars``
  bars), ``stacked_buy_count`` / ``stacked_sell_count``: engine/footprint/builder.py on the trades.
- ``absorption_side`` ("bid" absorbed selling, "ask" absorbed buying), ``absorption_price``
  (the absorbing level), ``absorption_strength``: engine/signals/absorption_onset.py, on the bar
  where the absorption starts, judged against the bars before it only.
- ``recent_divergence``: +1 bullish / -1 bearish CVD divergence (engine/indicators; CVD = running
  sum of bar delta, reset per ``entry.cvd_reset``) confirmed within the last
  ``entry.divergence_lookback_bars`` bars, else 0.
Only what the configured rules use is computed (the footprint is the costly part).
"""

from __future__ import annotations

from typing import NamedTuple

import polars as pl

from botclave_cli.engine.footprint.builder import FootprintSpec, build_footprint
from botclave_cli.engine.signals.absorption_onset import OnsetParams, absorption_onsets
from botclave_cli.engine.signals.indicators import delta_divergence, session_key
from botclave_cli.strategy.params import StrategyParams, bar_us

FOOTPRINT_COLUMNS = ("poc", "stacked_buy_count", "stacked_sell_count")

ABSORPTION_SCHEMA: dict[str, pl.DataType] = {
    "bar_end": pl.Datetime("us", "UTC"), "absorption_side": pl.String(),
    "absorption_price": pl.Float64(), "absorption_strength": pl.Float64()}


class Wanted(NamedTuple):
    """Which feature groups the configured rules use (only those are computed)."""

    footprint: bool
    absorption: bool
    divergence: bool


def wants(params: StrategyParams) -> Wanted:
    e = params.entry
    return Wanted(e.stacked_imbalance or params.target.mode == "poc", "absorption" in e.setups,
                  e.cvd_divergence_veto)


def footprint_spec(params: StrategyParams, tick_size: float) -> FootprintSpec:
    of = params.orderflow
    return FootprintSpec(bar=params.bars.timeframe, tick_size=tick_size,
                         row_size=of.row_size_ticks, imbalance_ratio=of.imbalance_ratio,
                         stacked_min_levels=of.stacked_min_levels)


def onset_params(params: StrategyParams, tick_size: float) -> OnsetParams:
    of = params.orderflow
    return OnsetParams(tick_size=tick_size, window_us=bar_us(params.bars.timeframe),
                       level_ticks=of.absorption_level_ticks,
                       volume_mult=of.absorption_volume_mult,
                       max_through_ticks=of.absorption_max_through_ticks,
                       baseline_windows=of.absorption_baseline_bars,
                       min_baseline_windows=of.absorption_min_baseline_bars)


def enrich_orderflow(bars: pl.DataFrame, trades: pl.DataFrame | None, params: StrategyParams,
                     tick_size: float) -> pl.DataFrame:
    if trades is None or bars.height == 0:
        return bars
    want = wants(params)
    out = bars
    if want.footprint:
        fp = build_footprint(trades, footprint_spec(params, tick_size)).bars.select(
            "bar_start", *FOOTPRINT_COLUMNS)
        n = params.target.poc_lookback_bars
        out = out.join(fp, on="bar_start", how="left", maintain_order="left").with_columns(
            pl.col("poc").rolling_max(n, min_samples=1).alias("poc_high"),
            pl.col("poc").rolling_min(n, min_samples=1).alias("poc_low"),
        )
    if want.absorption:
        out = out.join(absorption_by_bar(trades, params, tick_size), on="bar_end",
                       how="left", maintain_order="left")
    if want.divergence:
        out = with_recent_divergence(out, params)
    return out


def absorption_by_bar(trades: pl.DataFrame, params: StrategyParams, tick_size: float
                      ) -> pl.DataFrame:
    """bar_end -> the absorption that starts in that bar (engine/signals/absorption_onset.py:
    judged at the bar's close against the bars before it)."""
    onsets, _ = absorption_onsets(trades, onset_params(params, tick_size))
    return onsets.select(
        pl.col("time").alias("bar_end"), pl.col("side").alias("absorption_side"),
        pl.when(pl.col("side") == "bid").then(pl.col("price_low"))
        .otherwise(pl.col("price_high")).alias("absorption_price"),
        pl.col("strength").alias("absorption_strength")).cast(pl.Schema(ABSORPTION_SCHEMA))


def with_recent_divergence(bars: pl.DataFrame, params: StrategyParams) -> pl.DataFrame:
    """``recent_divergence`` column (module docstring). The divergence's ``time`` is the bar
    that confirms the second swing (its start), so it is known at that bar's end."""
    reset = params.entry.cvd_reset
    cvd = bars.with_columns(pl.col("delta").cum_sum().over(session_key("bar_start", reset))
                            .alias("cvd"))
    div = delta_divergence(cvd, k=params.structure.swing_confirm_bars, flow="cvd")
    marks = div.select(pl.col("time").alias("bar_start"),
                       pl.when(pl.col("side") == "bullish").then(1).otherwise(-1)
                       .cast(pl.Int8).alias("_div")).unique("bar_start", keep="last")
    n = params.entry.divergence_lookback_bars
    return (bars.join(marks, on="bar_start", how="left", maintain_order="left")
            .with_columns(pl.col("_div").forward_fill(limit=n - 1).fill_null(0)
                          .alias("recent_divergence"))
            .drop("_div"))
