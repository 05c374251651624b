"""Order-flow features per bar for OrderFlowStrategy, from the engine's detectors.

Each column is known at its bar's END (``bar_end``), so a decision at that time may use it:
- ``poc``, ``poc_high`` / ``poc_low`` (highest / lowest bar POC over ``target.poc_lookback_bars``
  bars), ``stacked_buy_count`` / ``stacked_sell_count``: engine/footprint/builder.py on the trades.
- ``absorption_side`` ("bid" absorbed selling, "ask" absorbed buying), ``absorption_price``
  (the absorbing level), ``absorption_strength``: engine/flow_events.absorption; an event is put
  on the first bar ending at or after the event's ``time`` (when the detector knows it).
- ``recent_divergence``: +1 bullish / -1 bearish CVD divergence (engine/indicators; CVD = running
  sum of bar delta, reset per ``entry.cvd_reset``) confirmed within the last
  ``entry.divergence_lookback_bars`` bars, else 0.
Only what the configured rules use is computed (the footprint is the costly part).
"""

from __future__ import annotations

import polars as pl

from botclave_cli.engine.footprint.builder import FootprintSpec, build_footprint
from botclave_cli.engine.signals.flow_events import absorption
from botclave_cli.engine.signals.indicators import delta_divergence, session_key
from botclave_cli.strategy.params import StrategyParams

FOOTPRINT_COLUMNS = ("poc", "stacked_buy_count", "stacked_sell_count")


def enrich_orderflow(bars: pl.DataFrame, trades: pl.DataFrame | None, params: StrategyParams,
                     tick_size: float) -> pl.DataFrame:
    if trades is None or bars.height == 0:
        return bars
    e = params.entry
    of = params.orderflow
    out = bars
    if e.stacked_imbalance or params.target.mode == "poc":
        spec = FootprintSpec(bar=params.bars.timeframe, tick_size=tick_size,
                             row_size=of.row_size_ticks, imbalance_ratio=of.imbalance_ratio,
                             stacked_min_levels=of.stacked_min_levels)
        fp = build_footprint(trades, spec).bars.select("bar_start", *FOOTPRINT_COLUMNS)
        n = params.target.poc_lookback_bars
        out = out.join(fp, on="bar_start", how="left", maintain_order="left").with_columns(
            pl.col("poc").rolling_max(n, min_samples=1).alias("poc_high"),
            pl.col("poc").rolling_min(n, min_samples=1).alias("poc_low"),
        )
    if "absorption" in e.setups:
        out = out.join(absorption_by_bar(out, trades, params, tick_size), on="bar_end",
                       how="left", maintain_order="left")
    if e.cvd_divergence_veto:
        out = with_recent_divergence(out, params)
    return out


def absorption_by_bar(bars: pl.DataFrame, trades: pl.DataFrame, params: StrategyParams,
                      tick_size: float) -> pl.DataFrame:
    """bar_end -> the strongest absorption event known at that bar's end (first bar after it)."""
    of = params.orderflow
    events = absorption(trades, tick_size, window=params.bars.timeframe,
                        level_ticks=of.absorption_level_ticks,
                        volume_mult=of.absorption_volume_mult,
                        max_through_ticks=of.absorption_max_through_ticks)
    schema: dict[str, pl.DataType] = {
        "bar_end": pl.Datetime("us", "UTC"), "absorption_side": pl.String(),
        "absorption_price": pl.Float64(), "absorption_strength": pl.Float64()}
    if events.height == 0:
        return pl.DataFrame(schema=schema)
    ends = bars.select("bar_end").sort("bar_end")
    placed = events.sort("time").join_asof(ends, left_on="time", right_on="bar_end",
                                           strategy="forward")
    return (placed.filter(pl.col("bar_end").is_not_null())
            .sort("bar_end", "strength", descending=[False, True])
            .unique("bar_end", keep="first", maintain_order=True)
            .select("bar_end", pl.col("side").alias("absorption_side"),
                    pl.when(pl.col("side") == "bid").then(pl.col("price_low"))
                    .otherwise(pl.col("price_high")).alias("absorption_price"),
                    pl.col("strength").alias("absorption_strength"))
            .cast(pl.Schema(schema)))


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
