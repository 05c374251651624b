"""OrderFlowStrategy bar by bar: each closed bar's features and signals from that bar's trades
and a carried state, never from the history again. The path a paper or live session runs.

``OrderFlowStream.on_bar(trades)`` takes the trades of one bar (``BarTrades``: arrays of
exchange time, price, qty, aggressor side; the bar is complete), and returns the bar's
feature row (a dict; ``frame(rows)`` gives the columns of the batch
``OrderFlowStrategy.features(enrich(bars))``, same order and types) and its signals (the batch
rules of strategy.py applied to that row alone: ``decide_row``, in Python scalars, as a list of
``SIGNAL_SCHEMA`` dicts; ``signal_frame`` makes them a frame). What each feature carries:

- the bar itself (OHLC, volumes, delta): ``bar_row`` on its trades (``bars_from_trades``' sums);
- footprint POC and stacked imbalances: the bar's own footprint (a time bar's footprint needs
  no other bar); ``poc_high`` / ``poc_low``: the last ``target.poc_lookback_bars`` POCs;
- absorption: ``absorption_onset`` with its history (the last windows' totals) carried;
- CVD divergence: the session's running CVD, the CVD at the last ``k + 1`` bars, the last
  confirmed swing high/low with their CVD, and the last divergence mark with its bar;
- structure: ``StructureStream``;
- ``book_imbalance`` (when given, or null when ``entry.book_imbalance_min`` is set and no book
  was): the caller's value as of the bar's end.

tests/test_strategy_stream.py: on the synthetic days and on the captures of ../shared/data,
every feature column and every signal streamed equals the batch computation.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from typing import Any, Literal, Protocol

import polars as pl

from botclave_cli.engine.footprint.builder import bar_poc_and_stacks
from botclave_cli.engine.signals.absorption_onset import OnsetHistory, window_onsets
from botclave_cli.strategy.bars import BAR_SCHEMA, BarTrades, bar_row
from botclave_cli.strategy.features import (
    ABSORPTION_SCHEMA,
    footprint_spec,
    onset_params,
    wants,
)
from botclave_cli.strategy.params import StrategyParams
from botclave_cli.strategy.structure_stream import STRUCTURE_SCHEMA, StructureStream

FOOTPRINT_SCHEMA: dict[str, pl.DataType] = {
    "poc": pl.Float64(), "stacked_buy_count": pl.Int64(), "stacked_sell_count": pl.Int64(),
    "poc_high": pl.Float64(), "poc_low": pl.Float64()}


class _Divergence:
    """CVD divergences on confirmed swings (engine/indicators.delta_divergence, bar by bar)."""

    def __init__(self, k: int, reset: Literal["none", "daily"], lookback: int) -> None:
        self.k = k
        self.reset = reset
        self.lookback = lookback
        self.session: dt.date | int | None = None
        self.cvd = 0.0
        self.recent: deque[float] = deque(maxlen=k + 1)
        self.pivots: dict[str, tuple[float, float] | None] = {"high": None, "low": None}
        self.mark: tuple[int, int] | None = None  # (value, bar index)

    def update(self, index: int, bar_start: dt.datetime, delta: float,
               swing_high: float | None, swing_low: float | None) -> int:
        # indicators.session_key in scalars: one session, or the bar's UTC date
        session = bar_start.date() if self.reset == "daily" else 0
        self.cvd = delta if session != self.session else self.cvd + delta
        self.session = session
        self.recent.append(self.cvd)
        marks = []
        for kind, price, sign, value in (("high", swing_high, 1, -1), ("low", swing_low, -1, 1)):
            if price is None:
                continue
            flow = self.recent[0]  # the CVD at the pivot, k bars back
            before = self.pivots[kind]
            if (before is not None and sign * (price - before[0]) > 0
                    and sign * (flow - before[1]) < 0):
                marks.append(value)
            self.pivots[kind] = (price, flow)
        if marks:
            self.mark = (marks[-1], index)  # both on one bar: bullish wins, as in the batch
        if self.mark is not None and index - self.mark[1] <= self.lookback - 1:
            return self.mark[0]
        return 0


class OrderFlowRules(Protocol):
    """What the stream needs of OrderFlowStrategy (strategy.py imports this module)."""

    params: StrategyParams
    tick_size: float

    def decide_row(self, row: dict[str, Any]) -> list[dict[str, Any]]: ...


class OrderFlowStream:
    """The incremental OrderFlowStrategy (module docstring); ``strategy`` gives the params, the
    tick size and the signal rules."""

    def __init__(self, strategy: OrderFlowRules) -> None:
        self.strategy = strategy
        p = strategy.params
        self.params = p
        self.timeframe = p.bars.timeframe
        self.wants = wants(p)
        self.spec = footprint_spec(p, strategy.tick_size)
        self.pocs: deque[float] = deque(maxlen=p.target.poc_lookback_bars)
        self.onset = onset_params(p, strategy.tick_size)
        self.onset_history = OnsetHistory()
        self.divergence = _Divergence(p.structure.swing_confirm_bars, p.entry.cvd_reset,
                                      p.entry.divergence_lookback_bars)
        self.structure = StructureStream(p.structure, strategy.tick_size)
        self.index = -1
        #: whether a bar's row carries ``book_imbalance`` (given one, or the rules read it)
        self.with_book = p.entry.book_imbalance_min is not None

    def on_bar(self, trades: BarTrades, book_imbalance: float | None = None
               ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The bar of ``trades`` (one bar's trades, in time order): its feature row (a dict:
        ``frame`` makes rows a frame, once, not on every bar) and its signals
        (``SIGNAL_SCHEMA`` dicts, usually none)."""
        self.index += 1
        row = bar_row(*trades, self.timeframe)
        if self.wants.footprint:
            row |= self._footprint(trades)
        if self.wants.absorption:
            row |= self._absorption(trades)
        structure = self.structure.update(row["open"], row["high"], row["low"], row["close"])
        if self.wants.divergence:
            high, low = self.structure.confirmed_now
            row["recent_divergence"] = self.divergence.update(
                self.index, row["bar_start"], row["delta"], high, low)
        if book_imbalance is not None or self.params.entry.book_imbalance_min is not None:
            row["book_imbalance"] = book_imbalance  # null: no usable book at the bar's end
            self.with_book = True
        row |= structure
        return row, self.strategy.decide_row(row)

    def frame(self, rows: list[dict[str, Any]]) -> pl.DataFrame:
        """Feature rows (``on_bar``'s) as the batch's frame: its columns, order and types; a
        bar given no book when others were has a null ``book_imbalance``."""
        schema: dict[str, pl.DataType] = dict(BAR_SCHEMA)
        if self.wants.footprint:
            schema |= FOOTPRINT_SCHEMA
        if self.wants.absorption:
            schema |= ABSORPTION_SCHEMA
        if self.wants.divergence:
            schema["recent_divergence"] = pl.Int8()
        if self.with_book:
            schema["book_imbalance"] = pl.Float64()
        return pl.DataFrame(rows, schema=schema | STRUCTURE_SCHEMA)

    def _footprint(self, trades: BarTrades) -> dict[str, object]:
        poc, stacked_buy, stacked_sell = bar_poc_and_stacks(trades.price, trades.qty,
                                                            trades.buy, self.spec)
        self.pocs.append(poc)
        return {"poc": poc, "stacked_buy_count": stacked_buy, "stacked_sell_count": stacked_sell,
                "poc_high": max(self.pocs), "poc_low": min(self.pocs)}

    def _absorption(self, trades: BarTrades) -> dict[str, object]:
        onsets, self.onset_history = window_onsets(*trades, self.onset, self.onset_history)
        if not onsets:
            return {c: None for c in ABSORPTION_SCHEMA if c != "bar_end"}
        o = onsets[0]
        return {"absorption_side": o.side,
                "absorption_price": o.price_low if o.side == "bid" else o.price_high,
                "absorption_strength": o.strength}

