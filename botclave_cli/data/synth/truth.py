"""The truth file: what was planted where, measured on the generated data, and the quiet
stretches. Detectors' tests read it (see notes/SYNTH.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from botclave_cli.data.synth.edge import FOLLOW_THROUGH, expected_edge, trade_return
from botclave_cli.data.synth.events import KINDS, ROW_TICKS, SWING_CONFIRM_BARS
from botclave_cli.data.synth.plan import Plan, Planted


class TruthEvent(BaseModel):
    """One planted event. Times in us since epoch (UTC), prices in quote currency.

    ``side``: absorption and bid_wall: the passive book side ("bid"/"ask"); stacked imbalances:
    "buy"/"sell"; liquidity_void: the direction of the move ("up"/"down"); divergences, break of
    structure and order block: "bearish"/"bullish".
    """

    model_config = ConfigDict(extra="forbid")

    kind: str
    start_us: int
    end_us: int
    price_low: float
    price_high: float
    side: str
    detail: dict[str, Any] = Field(default_factory=dict)


class QuietStretch(BaseModel):
    """[start_us, end_us) where nothing of ``kind`` may be found."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    start_us: int
    end_us: int


class EdgeTruth(BaseModel):
    """The planted edge (edge.py): the absorptions' follow-through and the expected net return
    of its reference trade, in bps of the entry notional, averaged over the planted events.
    ``enabled`` False is the control market (``--no-edge``): same events, no follow-through."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    kind: str = "absorption"
    follow_through: dict[str, Any]
    events: int
    reversals: int
    expected_edge_bps: float
    note: str


class Truth(BaseModel):
    """Everything planted in one synthetic market, measured on the generated data.

    ``detector_params`` are the settings the events were built for:

    - ``row_size_ticks``, ``bar``, ``imbalance_ratio``, ``imbalance_min_volume``,
      ``imbalance_basis``, ``stacked_min_levels``: footprint rows and diagonal imbalances (a
      stacked event has >= 4 rows, each >= 10x the ratio or against an empty opposite row; a
      quiet bar never has ``stacked_min_levels`` in a row).
    - ``swing_confirm_bars``: strict pivots on 1m bars (higher/lower than that many bars on
      each side); ``cvd_reset``: CVD restarts at each UTC midnight.
    - ``absorption_window_s``, ``absorption_min_qty``: aggressive volume into one price within
      such a window that counts as heavy (a third of the smallest planted minute; quiet
      stretches never reach it at any price); ``absorption_max_break_ticks``: planted levels are
      never traded through at all.
    - ``wall_min_multiple``, ``wall_min_duration_s``, ``typical_level_qty``: walls are 25x the
      median level size for minutes; ordinary levels never exceed 3x.
    - ``void_min_ticks``: planted voids span about 400 ticks; quiet stretches have no untraded
      gap of even a tenth of this.
    - ``book_levels``, ``book_interval_ms``: depth per side (one level per tick from the touch)
      and diff cadence.
    """

    model_config = ConfigDict(extra="forbid")

    symbol: str
    seed: int
    tick_size: float
    lot_size: float
    start_us: int
    end_us: int
    detector_params: dict[str, Any]
    events: list[TruthEvent]
    quiet: list[QuietStretch]
    edge: EdgeTruth | None = None

    def events_of(self, kind: str) -> list[TruthEvent]:
        return [e for e in self.events if e.kind == kind]

    def quiet_of(self, kind: str) -> list[QuietStretch]:
        return [q for q in self.quiet if q.kind == kind]


@dataclass
class Tape:
    """The generated prints as integers: time (us), price (ticks), size (lots), aggressor buy."""

    t: np.ndarray
    tick: np.ndarray
    lots: np.ndarray
    buy: np.ndarray


def measure_events(plan: Plan, tape: Tape) -> list[TruthEvent]:
    """Each of ``plan.planted`` measured on ``tape`` (a day's prints suffice for that day's
    events: ``synth.generate`` measures day by day)."""
    m = _Measure(plan, tape)
    return [getattr(m, planted.kind)(planted) for planted in plan.planted]


def build_truth(plan: Plan, tape: Tape | None, events: list[TruthEvent] | None = None
                ) -> Truth:
    """The truth of ``plan``: its events measured on ``tape``, or ``events`` measured already."""
    cfg = plan.cfg
    if events is None:
        assert tape is not None, "build_truth needs the tape or the measured events"
        events = measure_events(plan, tape)
    quiet = [QuietStretch(kind=kind, start_us=plan.t_us(q.k0), end_us=plan.t_us(q.k1))
             for q in plan.quiet for kind in q.kinds]
    absorbed = [e.detail["max_qty_per_window"] for e in events if e.kind == "absorption"]
    params = {
        "row_size_ticks": ROW_TICKS,
        "bar": "1m",
        "imbalance_ratio": 3.0,
        "imbalance_min_volume": 0.0,
        "imbalance_basis": "volume",
        "stacked_min_levels": 3,
        "swing_confirm_bars": SWING_CONFIRM_BARS,
        "cvd_reset": "daily",
        "absorption_window_s": ABSORPTION_WINDOW_S,
        "absorption_min_qty": round(min(absorbed) / 3, 6) if absorbed else None,
        "absorption_max_break_ticks": 2,
        "wall_min_multiple": 10.0,
        "wall_min_duration_s": 120,
        "typical_level_qty": cfg.level_qty_median,
        "void_min_ticks": 100,
        "book_levels": cfg.book_levels,
        "book_interval_ms": cfg.book_interval_ms,
        "kinds": list(KINDS),
    }
    return Truth(symbol=cfg.symbol, seed=cfg.seed, tick_size=cfg.tick_size,
                 lot_size=cfg.lot_size, start_us=cfg.start_us, end_us=cfg.end_us,
                 detector_params=params, events=events, quiet=quiet,
                 edge=edge_truth(cfg.edge, [e for e in events if e.kind == "absorption"]))


def edge_truth(enabled: bool, absorptions: list[TruthEvent]) -> EdgeTruth:
    """The edge block of truth.json from the measured absorption events."""
    expected = [e.detail["expected_edge_bps"] for e in absorptions]
    ft = FOLLOW_THROUGH
    if enabled:
        note = (f"after each absorption price turns away from the level by {ft.reversal_ticks} "
                f"ticks within {ft.reversal_s} s with probability {ft.p_reversal:g}, else breaks "
                f"through it by {ft.break_ticks} ticks within {ft.break_s} s (each event's "
                "detail.outcome); expected_edge_bps prices the reference trade (edge.py): fade "
                f"at the level, target {ft.target_ticks} ticks, stop {ft.stop_ticks} ticks "
                f"through, {ft.fee_bps:g} bps fee a side, {ft.slippage_bps:g} bps slippage on "
                "taker fills")
    else:
        note = ("control (--no-edge): the same events and draws, but only the background random "
                "walk after each absorption; a trade of it expects its costs only "
                f"(2 x {ft.fee_bps:g} bps fees + 2 x {ft.slippage_bps:g} bps slippage)")
    return EdgeTruth(
        enabled=enabled, follow_through=ft.as_dict(), events=len(absorptions),
        reversals=sum(e.detail["outcome"] == "reversal" for e in absorptions),
        expected_edge_bps=round(float(np.mean(expected)), 6) if expected else 0.0, note=note)


ABSORPTION_WINDOW_S = 60


class _Measure:
    """Turns each planted event into a TruthEvent using the prints actually generated."""

    def __init__(self, plan: Plan, tape: Tape) -> None:
        self.plan = plan
        self.cfg = plan.cfg
        self.tape = tape
        self.day_start = np.searchsorted(tape.t, plan.cfg.start_us + 86_400_000_000 * np.arange(
            plan.cfg.days + 1))

    # helpers -----------------------------------------------------------------------------
    def price(self, tick: int) -> float:
        return round(tick * self.cfg.tick_size, 10)

    def qty(self, lots: float) -> float:
        return round(float(lots) * self.cfg.lot_size, 10)

    def window(self, t0: int, t1: int) -> slice:
        return slice(int(np.searchsorted(self.tape.t, t0)), int(np.searchsorted(self.tape.t, t1)))

    def bar(self, k: int) -> tuple[int, int, int, int, int]:
        """(open time us, open, high, low, close) in ticks of the 1m bar starting at interval k."""
        t0 = self.plan.t_us(k)
        w = self.window(t0, t0 + 60_000_000)
        ticks = self.tape.tick[w]
        return t0, int(ticks[0]), int(ticks.max()), int(ticks.min()), int(ticks[-1])

    def cvd_at(self, t_end: int) -> float:
        """Cumulative delta (base units) from the UTC day start to ``t_end`` (exclusive)."""
        day = (t_end - 1 - self.cfg.start_us) // 86_400_000_000
        lo = self.day_start[day]
        hi = int(np.searchsorted(self.tape.t, t_end))
        signed = np.where(self.tape.buy[lo:hi] == 1, self.tape.lots[lo:hi], -self.tape.lots[lo:hi])
        return self.qty(signed.sum())

    # kinds -------------------------------------------------------------------------------
    def absorption(self, p: Planted) -> TruthEvent:
        level = p.info["tick"]
        t0, t1 = self.plan.t_us(p.k0), self.plan.t_us(p.k1)
        w = self.window(t0, t1)
        tick, lots, buy = self.tape.tick[w], self.tape.lots[w], self.tape.buy[w]
        hit = (tick == level) & (buy == (1 if p.side == "ask" else 0))
        through = (level - tick.min()) if p.side == "bid" else (tick.max() - level)
        per_window = []
        step = ABSORPTION_WINDOW_S * 1_000_000
        for a in range(t0, t1 - step + 1, step):
            ww = self.window(a, a + step)
            h = (self.tape.tick[ww] == level) & (self.tape.buy[ww] == (1 if p.side == "ask" else 0))
            per_window.append(self.qty(self.tape.lots[ww][h].sum()))
        return TruthEvent(
            kind="absorption", start_us=t0, end_us=t1, price_low=self.price(level),
            price_high=self.price(level), side=p.side,
            detail={"absorbed_qty": self.qty(lots[hit].sum()), "trades": int(hit.sum()),
                    "ticks_through": int(max(0, through)),
                    "max_qty_per_window": min(per_window),
                    "visible_qty": self.qty(p.info.get("visible_lots", 0)),
                    "aggressor": "sell" if p.side == "bid" else "buy",
                    **self._follow_through(p, self.price(level))})

    def _follow_through(self, p: Planted, level: float) -> dict[str, Any]:
        """The drawn outcome and the reference trade's returns (bps) for this absorption."""
        outcome = p.info["outcome"]
        tick = self.cfg.tick_size
        ref = (None if outcome == "none"
               else round(trade_return(level, p.side, outcome, tick) * 1e4, 6))
        end = self.plan.t_us(p.info.get("follow_k1", p.k1))
        return {"outcome": outcome, "drawn": p.info.get("drawn", outcome),
                "follow_through_end_us": end,
                "reference_return_bps": ref,
                "expected_edge_bps": round(expected_edge(level, p.side, tick,
                                                         self.cfg.edge) * 1e4, 6)}

    def bid_wall(self, p: Planted) -> TruthEvent:
        wall = p.info["tick"]
        start = self.plan.t_us(p.k0) - 1  # the diff before k0 shows it
        if p.info["ended_by"] == "pulled":
            end = self.plan.t_us(p.k1 + 1) - 1
            traded = 0.0
        else:
            w = self.window(start, self.plan.t_us(p.k1))
            hit = np.nonzero((self.tape.tick[w] == wall) & (self.tape.buy[w] == 0))[0]
            last = int(self.tape.t[w][hit[-1]])
            k = (last - self.cfg.start_us) // self.cfg.interval_us
            end = self.plan.t_us(int(k) + 1) - 1
            traded = self.qty(self.tape.lots[w][hit].sum())
        return TruthEvent(
            kind="bid_wall", start_us=start, end_us=end, price_low=self.price(wall),
            price_high=self.price(wall), side="bid",
            detail={"qty": self.qty(p.info["lots"]), "typical_qty": self.cfg.level_qty_median,
                    "multiple": round(p.info["lots"] * self.cfg.lot_size
                                      / self.cfg.level_qty_median, 6),
                    "ended_by": p.info["ended_by"], "traded_qty": traded})

    def _stacked(self, p: Planted, side: str) -> TruthEvent:
        t0 = self.plan.t_us(p.k0)
        w = self.window(t0, t0 + 60_000_000)
        rows = self.tape.tick[w] // ROW_TICKS
        lots, buy = self.tape.lots[w], self.tape.buy[w]
        r0 = int(rows.min())
        ask = np.bincount(rows[buy == 1] - r0, lots[buy == 1], minlength=rows.max() - r0 + 3)
        bid = np.bincount(rows[buy == 0] - r0, lots[buy == 0], minlength=rows.max() - r0 + 3)
        s, top = p.info["from_tick"], p.info["to_tick"]
        if side == "buy":
            lo_row, hi_row = s // ROW_TICKS + 1, (top - 4) // ROW_TICKS
            pairs = [(ask[r - r0], bid[r - r0 - 1]) for r in range(lo_row, hi_row + 1)]
        else:
            lo_row, hi_row = (top + 5) // ROW_TICKS, (s + 1) // ROW_TICKS - 1
            pairs = [(bid[r - r0], ask[r - r0 + 1]) for r in range(lo_row, hi_row + 1)]
        ratios = [None if den == 0 else round(float(num / den), 3) for num, den in pairs]
        finite = [r for r in ratios if r is not None]
        return TruthEvent(
            kind=p.kind, start_us=t0, end_us=t0 + 60_000_000,
            price_low=self.price(lo_row * ROW_TICKS), price_high=self.price(hi_row * ROW_TICKS),
            side=side,
            detail={"rows": hi_row - lo_row + 1, "row_size_ticks": ROW_TICKS,
                    "min_ratio": min(finite) if finite else None,
                    "ratios": ratios, "min_row_qty": self.qty(min(n for n, _ in pairs)),
                    "note": "prices are row labels (lower price of each row); a null ratio is "
                            "against an empty opposite row"})

    def stacked_imbalance_buy(self, p: Planted) -> TruthEvent:
        return self._stacked(p, "buy")

    def stacked_imbalance_sell(self, p: Planted) -> TruthEvent:
        return self._stacked(p, "sell")

    def liquidity_void(self, p: Planted) -> TruthEvent:
        # measured: orders larger than the touch walk a level or two into the range, so the
        # void is what is left between the last print before and the prints during the hold
        t0, t1 = self.plan.t_us(p.k0), self.plan.t_us(p.k1)
        hold = self.plan.t_us(p.info["hold_k1"])
        before = self.tape.tick[self.window(t0 - 60_000_000, t0)]
        after = self.tape.tick[self.window(t1, hold)]
        if p.side == "up":
            lo, hi = int(before.max()) + 1, int(after.min()) - 1
        else:
            lo, hi = int(after.max()) + 1, int(before.min()) - 1
        return TruthEvent(
            kind="liquidity_void", start_us=self.plan.t_us(p.k0), end_us=self.plan.t_us(p.k1),
            price_low=self.price(lo), price_high=self.price(hi), side=p.side,
            detail={"ticks": hi - lo + 1, "untraded_until_us": self.plan.t_us(p.info["hold_k1"]),
                    "note": "no trade inside [price_low, price_high] from start_us to "
                            "untraded_until_us"})

    def _divergence(self, p: Planted) -> TruthEvent:
        bearish = p.side == "bearish"
        swings = []
        for k in p.info["swing_bars"]:
            t0, _, high, low, _ = self.bar(k)
            swings.append((t0, high if bearish else low, self.cvd_at(t0 + 60_000_000)))
        (t1, p1, c1), (t2, p2, c2) = swings
        return TruthEvent(
            kind=p.kind, start_us=t1, end_us=t2, price_low=self.price(min(p1, p2)),
            price_high=self.price(max(p1, p2)), side=p.side,
            detail={"swing1_us": t1, "swing2_us": t2, "swing1_price": self.price(p1),
                    "swing2_price": self.price(p2), "cvd1": c1, "cvd2": c2,
                    "note": "swings are 1m bar highs (bearish) or lows (bullish); cvd at each "
                            "swing bar's close, reset at the UTC day start"})

    def bearish_divergence(self, p: Planted) -> TruthEvent:
        return self._divergence(p)

    def bullish_divergence(self, p: Planted) -> TruthEvent:
        return self._divergence(p)

    def _break(self, p: Planted) -> tuple[int, int, int | None, int | None]:
        bearish = p.side == "bearish"
        t_swing, _, high, low, _ = self.bar(p.info["swing_bar"])
        level = low if bearish else high
        wick = close = None
        k = p.info["displacement_bar"]
        while k < p.k1 + 5 * self.plan.ipm and (wick is None or close is None):
            t0, _, h, lo, c = self.bar(k)
            if wick is None and (lo < level if bearish else h > level):
                wick = t0
            if close is None and (c < level if bearish else c > level):
                close = t0
            k += self.plan.ipm
        return t_swing, level, wick, close

    def break_of_structure(self, p: Planted) -> TruthEvent:
        t_swing, level, wick, close = self._break(p)
        end = (close if close is not None else wick or t_swing) + 60_000_000
        return TruthEvent(
            kind="break_of_structure", start_us=t_swing, end_us=end, price_low=self.price(level),
            price_high=self.price(level), side=p.side,
            detail={"swing_us": t_swing, "broken_price": self.price(level),
                    "first_break_bar_us": wick, "first_close_beyond_bar_us": close,
                    "change_of_character": True,
                    "note": "the last confirmed higher low (bearish) / lower high (bullish) of "
                            "the leg, broken by a displacement; start_us = its swing bar, end_us "
                            "= close of the first bar closing beyond it"})

    def order_block(self, p: Planted) -> TruthEvent:
        t0, o, h, lo, c = self.bar(p.info["ob_bar"])
        _, _, wick, close = self._break(p)
        return TruthEvent(
            kind="order_block", start_us=t0, end_us=t0 + 60_000_000, price_low=self.price(lo),
            price_high=self.price(h), side=p.side,
            detail={"open": self.price(o), "close": self.price(c),
                    "bos_break_bar_us": close if close is not None else wick,
                    "note": "last up bar (bearish) / down bar (bullish) before the displacement "
                            "that breaks structure; price range = that bar's low..high"})
