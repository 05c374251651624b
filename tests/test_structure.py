"""Market structure: hand-built legs, and no look-ahead (cutting the bars leaves the past alone)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from botclave_cli.strategy.params import StructureParams
from botclave_cli.strategy.structure import market_structure, order_blocks

# an up-leg of higher highs and higher lows, then a displacement down through the last higher low
CLOSES = [100, 102, 104, 103, 101, 103, 106, 108, 107, 105, 107, 110, 112, 111, 109, 111, 114,
          113, 106, 100, 98, 97, 99, 98]


def leg_bars(closes: list[float]) -> pl.DataFrame:
    opens = [closes[0], *closes[:-1]]
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return pl.DataFrame({
        "bar_start": [start + dt.timedelta(minutes=i) for i in range(len(closes))],
        "open": opens, "close": closes,
    }).with_columns(
        pl.col("open").cast(pl.Float64), pl.col("close").cast(pl.Float64),
        (pl.max_horizontal("open", "close") + 0.5).cast(pl.Float64).alias("high"),
        (pl.min_horizontal("open", "close") - 0.5).cast(pl.Float64).alias("low"),
    ).with_columns((pl.col("bar_start") + dt.timedelta(minutes=1)).alias("bar_end"))


def test_swings_labels_breaks_and_order_block_by_hand() -> None:
    s = market_structure(leg_bars(CLOSES), StructureParams(swing_confirm_bars=2))
    # swing high at bar 2 (104.5) is known at bar 4; the swing low at bar 4 (100.5) at bar 6
    assert s["swing_high"][4] == 104.5 and s["swing_low"][6] == 100.5
    assert s["high_label"].drop_nulls().to_list() == ["HH", "HH", "HH"]
    assert s["low_label"].drop_nulls().to_list() == ["HL", "HL", "LL"]
    breaks = s.with_row_index("i").filter(pl.col("break_dir") != 0)
    assert breaks["i"].to_list() == [6, 11, 16, 18]
    assert breaks["break_dir"].to_list() == [1, 1, 1, -1]
    assert breaks["break_kind"].to_list() == ["BOS", "BOS", "BOS", "CHoCH"]
    # bar 18 closes at 106 below the last higher low 108.5: bearish change of character; the
    # order block is bar 16, the last up bar before the displacement (111 -> 114)
    b = breaks.row(3, named=True)
    assert b["level_low"] == 108.5 and b["ob_bar"] == 16
    assert (b["ob_low"], b["ob_high"]) == (110.5, 114.5)
    assert s["trend"][17] == 1 and s["trend"][18] == -1
    # fair value gap: bar 19's high 106.5 is below bar 17's low 112.5
    assert s["fvg_dir"][19] == -1
    assert (s["fvg_low"][19], s["fvg_high"][19]) == (106.5, 112.5)


def test_order_block_fate() -> None:
    s = market_structure(leg_bars(CLOSES), StructureParams(swing_confirm_bars=2))
    obs = order_blocks(s, max_age_bars=100)
    bear = obs.filter(pl.col("dir") == -1).row(0, named=True)
    assert bear["created_bar"] == 18 and bear["mitigated_bar"] is None
    bull = obs.filter(pl.col("created_bar") == 16).row(0, named=True)
    # bullish block of bar 14 (108.5 .. 111.5): bar 18 trades down into it and closes below it
    assert bull["ob_bar"] == 14 and bull["mitigated_bar"] == 18 and bull["invalidated_bar"] == 18


def random_bars(seed: int, n: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    open_ = np.concatenate([[100.0], close[:-1]]) + rng.normal(0, 0.2, n)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return pl.DataFrame({
        "bar_start": [start + dt.timedelta(minutes=i) for i in range(n)],
        "open": open_, "close": close,
        "high": np.maximum(open_, close) + rng.exponential(0.5, n),
        "low": np.minimum(open_, close) - rng.exponential(0.5, n),
    }).with_columns((pl.col("bar_start") + dt.timedelta(minutes=1)).alias("bar_end"))


@pytest.mark.parametrize("break_on", ["close", "wick"])
def test_cutting_the_data_at_any_time_leaves_earlier_structure_unchanged(break_on: str) -> None:
    bars = random_bars(5, 300)
    params = StructureParams(swing_confirm_bars=3, break_on=break_on, atr_period=10)
    full = market_structure(bars, params)
    assert full["break_dir"].abs().sum() > 5  # the series does break structure
    full_obs = order_blocks(full, 500)
    for t in range(1, bars.height + 1, 7):
        cut = market_structure(bars.head(t), params)
        assert_frame_equal(cut, full.head(t))
        # order blocks known by bar t-1, and their fates as far as bar t-1 shows them
        obs = order_blocks(cut, 500)
        known = full_obs.filter(pl.col("created_bar") < t).with_columns(
            pl.when(pl.col(c) < t).then(pl.col(c)).otherwise(None).alias(c)
            for c in ("mitigated_bar", "invalidated_bar"))
        assert_frame_equal(obs, known)
