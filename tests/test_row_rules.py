"""The scalar one-row rules (strategy/row_rules.py) against the batch Polars rules.

``OrderFlowStrategy.decide_row`` (the stream's, for paper and live latency) must give exactly
``decide_features`` on the same one-row frame: every configuration of setups, filters, stops,
targets, sides and entry order types, on rows where any feature may be missing (Polars' null
semantics) or lie on either side of the entry. The streamed-equals-batch tests of
tests/test_strategy_stream.py check the same on whole days of real and synthetic trades.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from botclave_cli.strategy.base import signal_frame
from botclave_cli.strategy.params import StrategyParams
from botclave_cli.strategy.strategy import OrderFlowStrategy
from botclave_cli.strategy.structure_stream import STRUCTURE_SCHEMA

SCHEMA: dict[str, pl.DataType] = {
    "bar_end": pl.Datetime("us", "UTC"), "open": pl.Float64(), "close": pl.Float64(),
    "delta_pct": pl.Float64(), "poc_high": pl.Float64(), "poc_low": pl.Float64(),
    "stacked_buy_count": pl.Int64(), "stacked_sell_count": pl.Int64(),
    "absorption_side": pl.String(), "absorption_price": pl.Float64(),
    "absorption_strength": pl.Float64(), "recent_divergence": pl.Int8(),
    "book_imbalance": pl.Float64(), **STRUCTURE_SCHEMA}

price = st.one_of(st.none(), st.floats(99.0, 101.0))  # near the close: either side of it
count = st.one_of(st.none(), st.integers(0, 3))


@st.composite
def rows(draw: st.DrawFn) -> dict[str, object]:
    row: dict[str, object] = {c: None for c in SCHEMA}
    row |= {"bar_end": dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
        minutes=draw(st.integers(0, 10_000))),
        "open": draw(st.floats(99.0, 101.0)), "close": draw(st.floats(99.5, 100.5)),
        "delta_pct": draw(st.one_of(st.none(), st.floats(-1.0, 1.0))),
        "poc_high": draw(price), "poc_low": draw(price),
        "stacked_buy_count": draw(count), "stacked_sell_count": draw(count),
        "absorption_side": draw(st.sampled_from([None, "bid", "ask"])),
        "absorption_price": draw(price),
        "absorption_strength": draw(st.one_of(st.none(), st.floats(0.0, 3.0))),
        "recent_divergence": draw(st.sampled_from([None, -1, 0, 1])),
        "book_imbalance": draw(st.one_of(st.none(), st.floats(-1.0, 1.0))),
        "atr": draw(st.one_of(st.none(), st.floats(0.0, 2.0))),
        "break_dir": draw(st.sampled_from([-1, 0, 1])),
        "ob_bar": draw(st.one_of(st.none(), st.integers(0, 100))),
        "ob_high": draw(price), "ob_low": draw(price),
        "level_high": draw(price), "level_low": draw(price)}
    return row


@st.composite
def params(draw: st.DrawFn) -> StrategyParams:
    p = StrategyParams()
    e = p.entry
    e.setups = draw(st.lists(st.sampled_from(["bos", "bos_ob_retest", "absorption"]),
                             min_size=1, max_size=3, unique=True))
    e.sides = draw(st.sampled_from(["both", "long", "short"]))
    e.order_type = draw(st.sampled_from(["market", "limit"]))
    e.limit_offset_ticks = draw(st.integers(0, 3))
    e.min_delta_pct = draw(st.sampled_from([0.0, 0.2]))
    e.min_displacement_atr = draw(st.sampled_from([0.0, 0.5]))
    e.absorption_min_strength = draw(st.sampled_from([0.0, 1.0]))
    e.stacked_imbalance = draw(st.booleans())
    e.cvd_divergence_veto = draw(st.booleans())
    e.book_imbalance_min = draw(st.sampled_from([None, -0.2, 0.3]))
    p.stop.mode = draw(st.sampled_from(["order_block", "swing", "atr"]))
    p.stop.buffer_ticks = draw(st.integers(0, 3))
    p.target.mode = draw(st.sampled_from(["r_multiple", "poc", "none"]))
    p.trailing.enabled = draw(st.booleans())
    p.exit.time_stop_bars = draw(st.sampled_from([0, 5]))
    return p


@settings(max_examples=600, deadline=None)
@given(p=params(), row=rows())
def test_one_row_rules_equal_the_batch_rules(p: StrategyParams, row: dict[str, object]) -> None:
    strategy = OrderFlowStrategy(p, tick_size=0.1)
    want = strategy.decide_features(pl.DataFrame([row], schema=SCHEMA, orient="row"))
    assert_frame_equal(signal_frame(strategy.decide_row(row)), want)


def test_a_break_with_every_filter_passing_gives_the_worked_signal() -> None:
    """By hand: a bullish break closing at 100 with an order block 97..99, 2 ticks of 0.1
    buffer: stop 97 - 0.2 = 96.8, target 2R = 100 + 2 * 3.2 = 106.4."""
    p = StrategyParams()
    p.stop.mode, p.target.mode, p.target.r_multiple = "order_block", "r_multiple", 2.0
    row = {c: None for c in SCHEMA} | {
        "bar_end": dt.datetime(2024, 1, 1, 0, 1, tzinfo=dt.UTC), "open": 99.0, "close": 100.0,
        "delta_pct": 0.4, "atr": 1.0, "break_dir": 1, "ob_bar": 3, "ob_high": 99.0,
        "ob_low": 97.0}
    (signal,) = OrderFlowStrategy(p, tick_size=0.1).decide_row(row)
    assert signal["action"] == 1 and signal["order_type"] == "market"
    assert abs(signal["stop_price"] - 96.8) < 1e-9
    assert abs(signal["target_price"] - 106.4) < 1e-9
    assert signal["setup"] == "bos" and signal["expiry_bars"] == 10
