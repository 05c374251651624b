"""Absorption as a trader sees it live: the window where it starts, judged on the past only.

``flow_events.absorption`` describes a finished day (its baseline is the median window of the
whole input, and a run of windows becomes one event ending at the last of them): right for a
chart, a look-ahead for a strategy. Here each window (UTC-aligned, the bar's timeframe) is
judged when it closes, against what came before it:

- baseline = the median TOTAL volume of the previous ``baseline_windows`` windows that hold
  trades (fewer at the start; none until ``min_baseline_windows`` exist: no event then);
- a cell (level of ``level_ticks`` ticks, aggressor side) is absorbed when its aggressive volume
  reaches ``volume_mult`` x baseline and price stays within ``max_through_ticks`` beyond the
  level (sells into the BID: the window's low; buys into the ASK: its high);
- an ONSET is such a cell that was not already absorbed in the window just before (the same
  level and side): a run of windows is one event, known at the close of its first window.
  strength = the cell's volume / baseline. A window keeps its strongest onset (ties: lower
  level, then bid before ask).

Volumes are counted in integer units of ``qty_step`` (1e-8 by default), so every sum, median and
comparison is exact: judging a day window by window (``history`` carried from one call to the
next) gives exactly the result of one call over the whole day (tests/test_strategy_stream.py).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import polars as pl

from botclave_cli.data.schemas import TS
from botclave_cli.engine.book.tick_grid import polars_steps
from botclave_cli.errors import DataError, UsageError

#: one row per window with an onset; ``time`` = the window's end (when it is known)
ONSET_SCHEMA: dict[str, pl.DataType] = {
    "time": TS, "side": pl.String(), "price_low": pl.Float64(), "price_high": pl.Float64(),
    "strength": pl.Float64(),
}


class Onset(NamedTuple):
    """One onset (a row of ``ONSET_SCHEMA``; ``time`` in us since the epoch)."""

    time: int
    side: str
    price_low: float
    price_high: float
    strength: float


@dataclass
class OnsetHistory:
    """What the next window's judgement needs of the past: the last windows' totals (units of
    ``qty_step``), and the start (us) and absorbed cells ((buy, level) pairs) of the last one."""

    totals: deque[int] = field(default_factory=deque)
    last_window_us: int | None = None
    last_cells: frozenset[tuple[bool, int]] = frozenset()


@dataclass(frozen=True)
class OnsetParams:
    """The detector's settings (module docstring); ``window_us`` = the bar's length."""

    tick_size: float
    window_us: int
    level_ticks: int = 1
    volume_mult: float = 1.0
    max_through_ticks: int = 2
    baseline_windows: int = 60
    min_baseline_windows: int = 10
    qty_step: float = 1e-8

    def __post_init__(self) -> None:
        if (self.level_ticks < 1 or self.volume_mult <= 0 or self.max_through_ticks < 0
                or self.baseline_windows < 1 or self.min_baseline_windows < 1):
            raise UsageError("absorption: level_ticks >= 1, volume_mult > 0, max_through_ticks "
                             ">= 0, baseline_windows >= 1 and min_baseline_windows >= 1")


def absorption_onsets(trades: pl.DataFrame, p: OnsetParams, history: OnsetHistory | None = None
                      ) -> tuple[pl.DataFrame, OnsetHistory]:
    """Onsets of ``trades`` (ts, price, qty, side; in time order, after ``history``'s windows)
    and the history for the trades that follow."""
    hist = history if history is not None else OnsetHistory()
    if trades.height == 0:
        return pl.DataFrame(schema=ONSET_SCHEMA), hist
    px = (pl.col("price") / p.tick_size).round().cast(pl.Int64)
    t = trades.select(  # one query for the integer columns; the grouping is numpy's
        (pl.col("ts").dt.epoch("us") // p.window_us * p.window_us).alias("win"),
        px.alias("px"), (pl.col("qty") / p.qty_step).round().cast(pl.Int64).alias("units"),
        (pl.col("side") == "buy").alias("buy"))
    onsets, hist = _judge(t["win"].to_numpy(), t["px"].to_numpy(), t["units"].to_numpy(),
                          t["buy"].to_numpy(), p, hist)
    frame = pl.DataFrame(onsets, schema={**ONSET_SCHEMA, "time": pl.Int64}, orient="row")
    return frame.with_columns(pl.col("time").cast(TS)), hist


def window_onsets(ts_us: np.ndarray, price: np.ndarray, qty: np.ndarray, buy: np.ndarray,
                  p: OnsetParams, history: OnsetHistory) -> tuple[list[Onset], OnsetHistory]:
    """``absorption_onsets`` of trades given as arrays (us, quote, base, aggressor is buyer;
    in time order), e.g. one closed bar's in a live session: the same onsets, without a
    frame."""
    if not len(ts_us):
        return [], history
    ts = np.asarray(ts_us, dtype=np.int64)
    return _judge(ts // p.window_us * p.window_us, polars_steps(price, p.tick_size),
                  polars_steps(qty, p.qty_step), np.asarray(buy, dtype=bool), p, history)


def _judge(win: np.ndarray, px: np.ndarray, units: np.ndarray, buy: np.ndarray,
           p: OnsetParams, hist: OnsetHistory) -> tuple[list[Onset], OnsetHistory]:
    """The onsets of trades as integers: window start (us), price (ticks), volume (units of
    ``qty_step``), aggressor is buyer."""
    if len(win) > 1 and not bool(np.all(win[1:] >= win[:-1])):
        raise DataError("absorption: trades are not in time order")
    lvl = px // p.level_ticks * p.level_ticks
    first = np.flatnonzero(np.r_[True, win[1:] != win[:-1]])
    windows = win[first]
    baseline = np.array(_baselines(np.add.reduceat(units, first).tolist(), hist, p),
                        dtype=np.float64)  # None (too few windows before) -> NaN
    low, high = np.minimum.reduceat(px, first), np.maximum.reduceat(px, first)
    # cells (window, level, aggressor side) in that order, bid (buy False) before ask
    order = np.lexsort((buy, lvl, win))
    c_win, c_lvl, c_buy = win[order], lvl[order], buy[order]
    starts = np.flatnonzero(np.r_[True, (c_win[1:] != c_win[:-1]) | (c_lvl[1:] != c_lvl[:-1])
                                  | (c_buy[1:] != c_buy[:-1])])
    c_win, c_lvl, c_buy = c_win[starts], c_lvl[starts], c_buy[starts]
    vol = np.add.reduceat(units[order], starts)
    w = np.searchsorted(windows, c_win)
    top = c_lvl + p.level_ticks - 1
    through = p.max_through_ticks
    held = np.where(c_buy, high[w] <= top + through, low[w] >= c_lvl - through)
    base = baseline[w]
    hit = ~np.isnan(base) & (vol >= p.volume_mult * base) & held
    cells = list(zip(c_win[hit].tolist(), c_buy[hit].tolist(), c_lvl[hit].tolist(),
                     vol[hit].tolist(), base[hit].tolist(), strict=True))
    return _onsets(cells, windows.tolist(), hist, p)


def _baselines(totals: list[int], hist: OnsetHistory, p: OnsetParams) -> list[float | None]:
    """Per window, the median of the previous windows' totals (module docstring); ``hist``'s
    totals move on to the last ``baseline_windows`` windows."""
    out: list[float | None] = []
    past = hist.totals
    for total in totals:
        if len(past) >= p.min_baseline_windows:
            ordered = sorted(past)
            mid = len(ordered) // 2
            out.append(float(ordered[mid]) if len(ordered) % 2
                       else (ordered[mid - 1] + ordered[mid]) / 2)
        else:
            out.append(None)
        past.append(total)
        if len(past) > p.baseline_windows:
            past.popleft()
    return out


def _onsets(cells: list[tuple[int, bool, int, int, float]], windows: list[int],
            hist: OnsetHistory, p: OnsetParams) -> tuple[list[Onset], OnsetHistory]:
    """The onsets of the absorbed ``cells`` ((window, buy, level, volume, baseline), ordered by
    window, level, side) over ``windows`` (us, ascending)."""
    by_win: dict[int, list[tuple[bool, int, int, float]]] = {}
    for win, buy, lvl, vol, base in cells:
        by_win.setdefault(win, []).append((buy, lvl, vol, base))
    rows: list[Onset] = []
    last_win, last_cells = hist.last_window_us, hist.last_cells
    for win in windows:
        hits = by_win.get(win, [])
        before = last_cells if last_win == win - p.window_us else frozenset()
        best = None
        for buy, lvl, vol, base in hits:
            if (buy, lvl) in before:
                continue
            strength = vol / base
            if best is None or strength > best[2]:
                best = (buy, lvl, strength)
        if best is not None:
            buy, lvl, strength = best
            rows.append(Onset(win + p.window_us, "ask" if buy else "bid", lvl * p.tick_size,
                              (lvl + p.level_ticks - 1) * p.tick_size, strength))
        last_win, last_cells = win, frozenset((b, lv) for b, lv, _, _ in hits)
    return rows, OnsetHistory(hist.totals, last_win, last_cells)
