"""Swings: brute-force reference, hand example, and the no-look-ahead property."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botclave_cli.engine.signals.swings import (
    confirmed_swing_high,
    confirmed_swing_low,
    last_confirmed_swing_high,
    swing_points,
)
from botclave_cli.errors import UsageError


def _reference(highs: list[float], lows: list[float], k: int) -> set[tuple[int, int, float, str]]:
    out = set()
    n = len(highs)
    for i in range(k, n - k):
        win_h = highs[i - k:i + k + 1]
        if highs[i] == max(win_h) and all(highs[i] > h for h in highs[i - k:i]):
            out.add((i, i + k, highs[i], "high"))
        win_l = lows[i - k:i + k + 1]
        if lows[i] == min(win_l) and all(lows[i] < lo for lo in lows[i - k:i]):
            out.add((i, i + k, lows[i], "low"))
    return out


def test_hand_example() -> None:
    # bar:     0  1  2  3  4  5  6  7  8
    highs = [1, 2, 5, 3, 2, 4, 6, 4, 3]
    lows = [0, 1, 3, 1, 0, 2, 4, 2, 1]
    sw = swing_points(pl.DataFrame({"high": highs, "low": lows}), 2)
    rows = set(zip(sw["bar_index"], sw["confirmed_at"], sw["price"], sw["kind"], strict=True))
    # high 5 at bar 2 (bars 0..4), high 6 at bar 6 (bars 4..8), low 0 at bar 4 (bars 2..6)
    assert rows == {(2, 4, 5.0, "high"), (6, 8, 6.0, "high"), (4, 6, 0.0, "low")}


def test_flat_top_gives_one_swing_at_first_bar() -> None:
    highs = [1, 3, 3, 1, 0]
    sw = swing_points(pl.DataFrame({"high": highs, "low": [0.0, 0.5, 0.5, 0.0, -1.0]}), 1)
    assert sw.filter(pl.col("kind") == "high")["bar_index"].to_list() == [1]


def test_time_columns() -> None:
    df = pl.DataFrame({"t": [10, 20, 30, 40, 50], "high": [1, 2, 9, 2, 1], "low": [0, 1, 2, 1, 0]})
    sw = swing_points(df, 2, time_col="t")
    assert sw.select("kind", "time", "confirmed_time").rows() == [("high", 30, 50)]


def test_bad_k() -> None:
    with pytest.raises(UsageError):
        swing_points(pl.DataFrame({"high": [1.0], "low": [0.0]}), 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=40), st.integers(1, 4))
def test_matches_brute_force(values: list[int], k: int) -> None:
    highs = [float(v) for v in values]
    lows = [v - 0.5 - (i % 3) for i, v in enumerate(highs)]
    sw = swing_points(pl.DataFrame({"high": highs, "low": lows}), k)
    got = set(zip(sw["bar_index"], sw["confirmed_at"], sw["price"], sw["kind"], strict=True))
    assert got == _reference(highs, lows, k)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=2, max_size=40), st.integers(1, 3), st.data())
def test_no_look_ahead(values: list[int], k: int, data: st.DataObject) -> None:
    """Confirmed flags at bar j never change when bars after j are altered or dropped."""
    highs = [float(v) for v in values]
    lows = [h - 1 for h in highs]
    cut = data.draw(st.integers(1, len(highs)))
    full = pl.DataFrame({"high": highs, "low": lows})
    prefix = full.head(cut)
    exprs = [confirmed_swing_high(k).alias("h"), confirmed_swing_low(k).alias("l"),
             last_confirmed_swing_high(k).alias("p")]
    a = full.select(exprs).head(cut)
    b = prefix.select(exprs)
    assert a.equals(b)
