"""Market structure on a bar series, without look-ahead.

Built on ``engine/signals/swings.py`` (a swing is known ``k`` bars after its pivot). Per bar
``i``, every column below depends only on bars ``0..i`` (tests cut the series at every ``t``
and compare):

- ``swing_high`` / ``swing_low``: the swing's price on the bar where it becomes known;
  ``high_label`` (``HH``/``LH``) and ``low_label`` (``HL``/``LL``) against the previous known swing.
- ``level_high`` / ``level_low``: the last known swing high / low (the levels structure breaks).
- ``break_dir``: +1 on the first bar whose close (or high, ``break_on="wick"``) goes above
  ``level_high``, -1 below ``level_low``; each swing level breaks once. ``break_kind``: ``BOS``
  when the break continues the trend before it, ``CHoCH`` when it reverses it. The trend before a
  break is the last break's direction or, before any break, the swing labels (HH+HL up, LH+LL
  down). ``trend``: the direction of the last break (0 before any).
- ``ob_high`` / ``ob_low`` / ``ob_bar`` on break bars: the order block, the last opposite bar
  (last up-close bar for a bearish break, last down-close bar for a bullish one) at or before the
  break. ``order_blocks`` tracks each one until mitigated (price trades back into it) or
  invalidated (a close beyond its far edge).
- ``fvg_dir`` / ``fvg_low`` / ``fvg_high``: a fair value gap known at bar ``i``: ``low[i] >
  high[i-2]`` (bullish, gap ``high[i-2]..low[i]``) or ``high[i] < low[i-2]`` (bearish).
- ``atr``: simple mean of the true range over ``atr_period`` bars (fewer at the start; see
  ``atr``).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from botclave_cli.engine.signals import swings
from botclave_cli.strategy.params import StructureParams


def true_range() -> pl.Expr:
    prev_close = pl.col("close").shift(1)
    return pl.max_horizontal(
        pl.col("high") - pl.col("low"),
        (pl.col("high") - prev_close).abs(),
        (pl.col("low") - prev_close).abs(),
    )


def atr(period: int) -> pl.Expr:
    """Mean true range of the last ``period`` bars (fewer at the start), summed oldest first
    from 0.0: each bar's value depends on its window alone, bit for bit, so a bar-by-bar
    update (structure_stream.py) gives exactly this. (A rolling sum carries its rounding from
    one bar to the next: Polars' ``rolling_mean`` differs in the last bits.)"""
    tr = true_range()
    total = pl.lit(0.0)
    for lag in range(period - 1, -1, -1):
        total = total + tr.shift(lag).fill_null(0.0)
    count = pl.min_horizontal(pl.int_range(1, pl.len() + 1, dtype=pl.Int64), pl.lit(period))
    return (total / count).alias("atr")


def _label(price: str, up: str, down: str) -> pl.Expr:
    # previous known swing of the same kind, as known on the bar before
    prev = pl.col(price).forward_fill().shift(1)
    return (pl.when(pl.col(price).is_null()).then(None)
            .when(pl.col(price) > prev).then(pl.lit(up))
            .when(pl.col(price) < prev).then(pl.lit(down))
            .otherwise(None))


def market_structure(bars: pl.DataFrame, params: StructureParams, tick_size: float = 0.01
                     ) -> pl.DataFrame:
    """``bars`` (rows in time order, open/high/low/close) with the structure columns added."""
    k = params.swing_confirm_bars
    over_src = "close" if params.break_on == "close" else "high"
    under_src = "close" if params.break_on == "close" else "low"
    df = bars.with_row_index("_i").with_columns(
        pl.col("_i").cast(pl.Int64),
        swings.confirmed_swing_high_price(k).alias("swing_high"),
        swings.confirmed_swing_low_price(k).alias("swing_low"),
        atr(params.atr_period),
    )
    df = df.with_columns(
        _label("swing_high", "HH", "LH").alias("high_label"),
        _label("swing_low", "HL", "LL").alias("low_label"),
        pl.col("swing_high").forward_fill().alias("level_high"),
        pl.col("swing_low").forward_fill().alias("level_low"),
        pl.col("swing_high").is_not_null().cum_sum().alias("_hid"),
        pl.col("swing_low").is_not_null().cum_sum().alias("_lid"),
    )
    above = (pl.col(over_src) > pl.col("level_high")).fill_null(False)
    below = (pl.col(under_src) < pl.col("level_low")).fill_null(False)
    df = df.with_columns(
        (above & (above.cast(pl.Int64).cum_sum().over("_hid") == 1)).alias("_up"),
        (below & (below.cast(pl.Int64).cum_sum().over("_lid") == 1)).alias("_down"),
    )
    # both levels broken by one bar (an outside bar): the close decides
    mid = (pl.col("level_high") + pl.col("level_low")) / 2
    dir_expr = (pl.when(pl.col("_up") & pl.col("_down"))
                .then(pl.when(pl.col("close") >= mid).then(1).otherwise(-1))
                .when(pl.col("_up")).then(1).when(pl.col("_down")).then(-1).otherwise(0))
    df = df.with_columns(dir_expr.cast(pl.Int8).alias("break_dir"))
    label_trend = (pl.when((pl.col("high_label").forward_fill() == "HH")
                           & (pl.col("low_label").forward_fill() == "HL")).then(1)
                   .when((pl.col("high_label").forward_fill() == "LH")
                         & (pl.col("low_label").forward_fill() == "LL")).then(-1)
                   .otherwise(0))
    last_break = pl.when(pl.col("break_dir") != 0).then(pl.col("break_dir")).otherwise(None)
    df = df.with_columns(
        last_break.forward_fill().fill_null(0).cast(pl.Int8).alias("trend"),
        pl.coalesce(last_break.forward_fill().shift(1), label_trend.shift(1), pl.lit(0))
        .alias("_prior"),
        pl.when(pl.col("close") > pl.col("open")).then(pl.col("_i")).otherwise(None)
        .forward_fill().alias("_last_up"),
        pl.when(pl.col("close") < pl.col("open")).then(pl.col("_i")).otherwise(None)
        .forward_fill().alias("_last_down"),
    )
    df = df.with_columns(
        pl.when(pl.col("break_dir") == 0).then(None)
        .when(pl.col("break_dir") == pl.col("_prior")).then(pl.lit("BOS"))
        .when(pl.col("_prior") == 0).then(pl.lit("BOS"))
        .otherwise(pl.lit("CHoCH")).alias("break_kind"),
        pl.when(pl.col("break_dir") == -1).then(pl.col("_last_up"))
        .when(pl.col("break_dir") == 1).then(pl.col("_last_down")).otherwise(None)
        .alias("ob_bar"),
    )
    highs = df["high"].to_numpy()
    lows = df["low"].to_numpy()
    ob_bar = df["ob_bar"].to_numpy(allow_copy=True)
    ob_ok = ~np.isnan(ob_bar.astype(np.float64))
    idx = np.where(ob_ok, ob_bar, 0).astype(np.int64)
    df = df.with_columns(
        pl.Series("ob_high", np.where(ob_ok, highs[idx] if len(idx) else highs, np.nan))
        .fill_nan(None),
        pl.Series("ob_low", np.where(ob_ok, lows[idx] if len(idx) else lows, np.nan))
        .fill_nan(None),
    )
    min_gap = params.fvg_min_ticks * tick_size
    bull_gap = pl.col("low") - pl.col("high").shift(2)
    bear_gap = pl.col("low").shift(2) - pl.col("high")
    df = df.with_columns(
        pl.when(bull_gap > 0).then(1).when(bear_gap > 0).then(-1).otherwise(0)
        .cast(pl.Int8).alias("_fd"),
    ).with_columns(
        pl.when((pl.col("_fd") == 1) & (bull_gap >= min_gap)).then(1)
        .when((pl.col("_fd") == -1) & (bear_gap >= min_gap)).then(-1).otherwise(0)
        .cast(pl.Int8).alias("fvg_dir"),
    ).with_columns(
        pl.when(pl.col("fvg_dir") == 1).then(pl.col("high").shift(2))
        .when(pl.col("fvg_dir") == -1).then(pl.col("high")).otherwise(None).alias("fvg_low"),
        pl.when(pl.col("fvg_dir") == 1).then(pl.col("low"))
        .when(pl.col("fvg_dir") == -1).then(pl.col("low").shift(2)).otherwise(None)
        .alias("fvg_high"),
    )
    return df.drop("_hid", "_lid", "_up", "_down", "_prior", "_last_up", "_last_down", "_fd",
                   "_i")


def order_blocks(structure: pl.DataFrame, max_age_bars: int) -> pl.DataFrame:
    """One row per order block (from ``market_structure``'s break bars), with its fate.

    ``created_bar``: the break bar (the block is known at its close); ``dir``: +1 bullish (demand
    below price, from a bullish break), -1 bearish; ``mitigated_bar``: first later bar trading
    back into the block; ``invalidated_bar``: first later bar closing beyond its far edge; both
    null while neither happened within ``max_age_bars``. A consumer at bar ``t`` may use a fate
    only when its bar is ``<= t``.
    """
    s = structure.with_row_index("created_bar").filter(pl.col("ob_bar").is_not_null())
    high = structure["high"].to_numpy()
    low = structure["low"].to_numpy()
    close = structure["close"].to_numpy()
    n = len(high)
    mitigated: list[int | None] = []
    invalidated: list[int | None] = []
    for created, d, top, bottom in zip(s["created_bar"].to_list(), s["break_dir"].to_list(),
                                       s["ob_high"].to_list(), s["ob_low"].to_list(), strict=True):
        lo, hi = created + 1, min(n, created + 1 + max_age_bars)
        if d == 1:
            touch = low[lo:hi] <= top
            broken = close[lo:hi] < bottom
        else:
            touch = high[lo:hi] >= bottom
            broken = close[lo:hi] > top
        mitigated.append(lo + int(np.argmax(touch)) if touch.any() else None)
        invalidated.append(lo + int(np.argmax(broken)) if broken.any() else None)
    return s.select(
        pl.col("created_bar").cast(pl.Int64),
        (pl.col("bar_end") if "bar_end" in s.columns else pl.lit(None, pl.Datetime("us", "UTC")))
        .alias("created_ts"),
        pl.col("break_dir").alias("dir"), "break_kind", pl.col("ob_bar").cast(pl.Int64),
        pl.col("ob_low").alias("low"), pl.col("ob_high").alias("high"),
    ).with_columns(
        pl.Series("mitigated_bar", mitigated, dtype=pl.Int64),
        pl.Series("invalidated_bar", invalidated, dtype=pl.Int64),
    )
