"""Market structure bar by bar: ``structure.market_structure``'s columns for the bar that just
closed, from a small carried state instead of the whole history.

The rules are those of structure.py (read its docstring); this is a second implementation of
them, written as a trader updates a chart, and tests/test_strategy_stream.py checks that it
gives exactly the batch columns on the synthetic days and the real captures. What is carried:
the last ``max(2k + 1, 3)`` bars (swings need ``k`` bars each side of a pivot, a fair value
gap three bars), the last ``atr_period`` true ranges, the last known swing high and low with
whether their level has been broken, the last break, the label trend of the bar before, and the
last up-close and down-close bars (the order block candidates).
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import polars as pl

from botclave_cli.strategy.params import StructureParams

#: the columns market_structure adds, in its order, with their types
STRUCTURE_SCHEMA: dict[str, pl.DataType] = {
    "swing_high": pl.Float64(), "swing_low": pl.Float64(), "atr": pl.Float64(),
    "high_label": pl.String(), "low_label": pl.String(), "level_high": pl.Float64(),
    "level_low": pl.Float64(), "break_dir": pl.Int8(), "trend": pl.Int8(),
    "break_kind": pl.String(), "ob_bar": pl.Int64(), "ob_high": pl.Float64(),
    "ob_low": pl.Float64(), "fvg_dir": pl.Int8(), "fvg_low": pl.Float64(),
    "fvg_high": pl.Float64(),
}


class _Bar(NamedTuple):
    open: float
    high: float
    low: float
    close: float


class _Mark(NamedTuple):
    """A bar remembered by index (an order block candidate)."""

    bar: int
    high: float
    low: float


def _label(new: float | None, before: float | None, up: str, down: str) -> str | None:
    if new is None or before is None:
        return None
    return up if new > before else down if new < before else None


def _label_trend(high_label: str | None, low_label: str | None) -> int:
    if high_label == "HH" and low_label == "HL":
        return 1
    if high_label == "LH" and low_label == "LL":
        return -1
    return 0


class StructureStream:
    """``update(open, high, low, close)`` per closed bar -> that bar's structure columns."""

    def __init__(self, params: StructureParams, tick_size: float) -> None:
        self.k = params.swing_confirm_bars
        self.wick = params.break_on == "wick"
        self.atr_period = params.atr_period
        self.min_gap = params.fvg_min_ticks * tick_size
        self.bars: deque[_Bar] = deque(maxlen=max(2 * self.k + 1, 3))
        self.ranges: deque[float] = deque(maxlen=self.atr_period)
        self.index = -1
        self.swing: dict[str, float | None] = {"high": None, "low": None}
        self.labels: dict[str, str | None] = {"high": None, "low": None}
        self.broken = {"high": False, "low": False}
        self.last_break: int | None = None
        self.prev_label_trend = 0
        self.last_up: _Mark | None = None
        self.last_down: _Mark | None = None
        #: the swing high / low this bar confirmed (pivot ``k`` bars back), else None
        self.confirmed_now: tuple[float | None, float | None] = (None, None)


    def update(self, open_: float, high: float, low: float, close: float) -> dict[str, object]:
        prev_close = self.bars[-1].close if self.bars else None
        self.bars.append(_Bar(open_, high, low, close))
        self.index += 1
        out: dict[str, object] = {}
        self.confirmed_now = self._confirmed()
        out["swing_high"], out["swing_low"] = self.confirmed_now
        out["atr"] = self._atr(high, low, prev_close)
        self._levels(out)
        self._break(out, close, high, low)
        self._order_block(out, open_, high, low, close)
        self._fvg(out, high, low)
        return out

    def _confirmed(self) -> tuple[float | None, float | None]:
        """The swing high / low whose pivot is ``k`` bars back, if this bar confirms it."""
        k = self.k
        if self.index < 2 * k:
            return None, None
        window = list(self.bars)[-(2 * k + 1):]
        pivot, left = window[k], window[:k]
        high = pivot.high if (pivot.high >= max(b.high for b in window)
                              and pivot.high > max(b.high for b in left)) else None
        low = pivot.low if (pivot.low <= min(b.low for b in window)
                            and pivot.low < min(b.low for b in left)) else None
        return high, low

    def _atr(self, high: float, low: float, prev_close: float | None) -> float:
        tr = high - low if prev_close is None else max(high - low, abs(high - prev_close),
                                                       abs(low - prev_close))
        self.ranges.append(tr)
        total = 0.0
        for _ in range(self.atr_period - len(self.ranges)):
            total = total + 0.0
        for value in self.ranges:
            total = total + value
        return total / len(self.ranges)

    def _levels(self, out: dict[str, object]) -> None:
        for side, up, down in (("high", "HH", "LH"), ("low", "HL", "LL")):
            new = out[f"swing_{side}"]
            assert new is None or isinstance(new, float)
            out[f"{side}_label"] = label = _label(new, self.swing[side], up, down)
            if label is not None:
                self.labels[side] = label
            if new is not None:
                self.swing[side] = new
                self.broken[side] = False
            out[f"level_{side}"] = self.swing[side]

    def _break(self, out: dict[str, object], close: float, high: float, low: float) -> None:
        level_high, level_low = self.swing["high"], self.swing["low"]
        above = level_high is not None and (high if self.wick else close) > level_high
        below = level_low is not None and (low if self.wick else close) < level_low
        up = above and not self.broken["high"]
        down = below and not self.broken["low"]
        self.broken["high"] |= above
        self.broken["low"] |= below
        if up and down:
            assert level_high is not None and level_low is not None
            direction = 1 if close >= (level_high + level_low) / 2 else -1
        else:
            direction = 1 if up else -1 if down else 0
        prior = self.last_break if self.last_break is not None else (
            self.prev_label_trend if self.index > 0 else 0)
        out["break_dir"] = direction
        if direction != 0:
            self.last_break = direction
        out["trend"] = self.last_break or 0
        out["break_kind"] = (None if direction == 0 else "BOS" if direction == prior or prior == 0
                             else "CHoCH")
        self.prev_label_trend = _label_trend(self.labels["high"], self.labels["low"])

    def _order_block(self, out: dict[str, object], open_: float, high: float, low: float,
                     close: float) -> None:
        if close > open_:
            self.last_up = _Mark(self.index, high, low)
        if close < open_:
            self.last_down = _Mark(self.index, high, low)
        block = (self.last_up if out["break_dir"] == -1 else
                 self.last_down if out["break_dir"] == 1 else None)
        out["ob_bar"] = block.bar if block else None
        out["ob_high"] = block.high if block else None
        out["ob_low"] = block.low if block else None

    def _fvg(self, out: dict[str, object], high: float, low: float) -> None:
        direction, gap_low, gap_high = 0, None, None
        if self.index >= 2:
            two_back = self.bars[-3]
            bull, bear = low - two_back.high, two_back.low - high
            if bull > 0:
                if bull >= self.min_gap:
                    direction, gap_low, gap_high = 1, two_back.high, low
            elif bear > 0 and bear >= self.min_gap:
                direction, gap_low, gap_high = -1, high, two_back.low
        out["fvg_dir"], out["fvg_low"], out["fvg_high"] = direction, gap_low, gap_high
