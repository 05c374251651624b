"""Planters: each writes one planted event (or quiet stretch) into the plan and says where it ends.

A planter is called as ``planter(plan, k0, s)``: ``k0`` is the first book interval of its segment
(always on a minute boundary), ``s`` the best bid tick just before. Offsets are in ticks, times
in seconds; the sizes are chosen so that a detector with the parameters of ``DETECTOR_PARAMS``
finds the event unambiguously, whatever ``trades_per_day``.
"""

from __future__ import annotations

import numpy as np

from botclave_cli.data.synth.edge import FOLLOW_THROUGH
from botclave_cli.data.synth.plan import SHIFT, Override, Plan, Planted, Planter, Quiet, trade_lots

ROW_TICKS = 10
SWING_CONFIRM_BARS = 3
KINDS = (
    "absorption", "stacked_imbalance_buy", "stacked_imbalance_sell", "liquidity_void",
    "bearish_divergence", "bullish_divergence", "bid_wall", "break_of_structure", "order_block",
)
ABSORPTION_S = 180
WALL_S = 480
WALL_MULTIPLE = 25
STACK_TICKS = 100
VOID_TICKS = 400
VOID_HOLD_S = 20 * 60
MIN = 60.0


def absorption(side: str) -> Planter:
    """Heavy aggressive flow into one level for 3 minutes; the level refills after every diff
    (iceberg-like) and price never trades through it. Then its follow-through (edge.py): price
    turns away from the level or breaks through it, as drawn; with ``cfg.edge`` off the
    background continues from the level instead (the draw is made all the same)."""
    sign = 1 if side == "bid" else -1

    def plant(plan: Plan, k0: int, s: int) -> int:
        cfg = plan.cfg
        k1 = k0 + plan.k_at(ABSORPTION_S)
        plan.path[k0:k1] = s
        rate = cfg.trades_per_day / 86_400
        n = max(3_000, round(3 * rate * ABSORPTION_S))
        plan.add_trades(plan.uniform_times(k0, k1, n), np.full(n, side == "ask"),
                        trade_lots(plan.rng, n, cfg, scale=2.0))
        level = s if side == "bid" else s + 1
        plan.overrides.append(Override(k0 - 1, k1, 0 if side == "bid" else 1, level, 0,
                                       reset=True, refill=True))
        planted = Planted("absorption", k0, k1, side, {"tick": level})
        plan.planted.append(planted)
        return follow_through(plan, planted, k1, s, sign)

    return plant


def follow_through(plan: Plan, planted: Planted, k1: int, s: int, sign: int) -> int:
    """What follows an absorption ending at ``k1`` with the best bid at ``s``; ``sign`` +1 for
    a bid (the reversal goes up). Records the drawn outcome and where the segment ends."""
    ft = FOLLOW_THROUGH
    reverses = bool(plan.rng.random() < ft.p_reversal)  # drawn with the edge off too
    if not plan.cfg.edge:
        planted.info.update(outcome="none", drawn="reversal" if reverses else "break")
        return k1
    ticks, seconds = ((ft.reversal_ticks, ft.reversal_s) if reverses
                      else (-ft.break_ticks, ft.break_s))
    k2 = plan.ramp(k1, [(0, 0), (seconds, sign * ticks)], s)
    plan.p_buy[k1:k2] = 0.5 + 0.1 * sign * (1 if reverses else -1)
    planted.info.update(outcome="reversal" if reverses else "break", follow_k1=k2)
    return k2


def wall(ended_by: str) -> Planter:
    """A bid of 25x the median level size, 5 to 18 ticks under the best bid, for 8 minutes while
    price wanders above it; then pulled, or traded through by a fast drop."""

    def plant(plan: Plan, k0: int, s: int) -> int:
        cfg = plan.cfg
        k1 = k0 + plan.k_at(WALL_S)
        w = s - 20
        # 5..18 ticks under the touch: inside any top-20 view of the book
        plan.continue_bg(k0, k1, s, lo=w + 5, hi=w + 18)
        lots = round(WALL_MULTIPLE * cfg.level_qty_median / cfg.lot_size)
        info = {"tick": w, "lots": lots, "ended_by": ended_by}
        if ended_by == "pulled":
            plan.overrides.append(Override(k0 - 1, k1, 0, w, lots, reset=True))
            plan.planted.append(Planted("bid_wall", k0, k1, "bid", info))
            return k1
        s1 = int(plan.path[k1 - 1])
        k2 = plan.ramp(k1, [(0, 0), (6, w - 30 - s1), (10, w - 30 - s1)], s1, noise=False)
        plan.p_buy[k1:k2] = 0.3
        plan.overrides.append(Override(k0 - 1, k2, 0, w, lots, reset=False))
        plan.planted.append(Planted("bid_wall", k0, k2, "bid", info))
        return k2

    return plant


def stacked(side: str) -> Planter:
    """Inside one 1m bar: a one-sided 100-tick run in 8 s (only aggressive buys for ``buy``),
    then price holds near the top: the rows of the run show only one side."""
    sign = 1 if side == "buy" else -1

    def plant(plan: Plan, k0: int, s: int) -> int:
        k1 = k0 + plan.ipm
        kr0, kr1 = k0 + 1, k0 + 1 + plan.k_at(8)
        top = s + sign * STACK_TICKS
        plan.path[k0] = s
        plan.path[kr0:kr1] = np.round(np.linspace(s, top, kr1 - kr0 + 1)[1:]).astype(np.int64)
        plan.p_buy[k0:kr1] = 1.0 if side == "buy" else 0.0
        plan.continue_bg(kr1, k1, top, lo=top - 4, hi=top + 4)
        plan.planted.append(Planted(f"stacked_imbalance_{side}", k0, k1, side,
                                    {"from_tick": s, "to_tick": top}))
        return k1

    return plant


def void(direction: str) -> Planter:
    """The book is pulled 400 ticks in 2 s without a single trade, then price stays beyond the
    void for 20 minutes."""
    sign = 1 if direction == "up" else -1

    def plant(plan: Plan, k0: int, s: int) -> int:
        nj = plan.k_at(2)
        kj = k0 + nj
        plan.path[k0:kj] = s + sign * np.round(VOID_TICKS * np.arange(1, nj + 1) / nj).astype(
            np.int64)
        plan.mode[k0:kj] = SHIFT
        plan.suppress[k0:kj] = True
        new = s + sign * VOID_TICKS
        k2 = kj + plan.k_at(VOID_HOLD_S)
        if sign > 0:
            plan.continue_bg(kj, k2, new, lo=new)
        else:
            plan.continue_bg(kj, k2, new, hi=new)
        plan.planted.append(Planted("liquidity_void", k0, kj, direction,
                                    {"from_tick": s, "to_tick": new, "hold_k1": k2}))
        return k2

    return plant


def divergence(kind: str) -> Planter:
    """Swing 1 at bar 10, swing 2 at bar 30 beyond it; the leg to swing 1 is driven by aggressive
    flow in its direction, the leg to swing 2 by passive flow (the book moves away) while the
    aggressors push against it, so CVD makes the opposite swing."""
    sign = 1 if kind == "bearish" else -1
    legs = [(10.5, 210, 0.65, 0), (20.5, 60, 0.35, 0), (30.5, 250, 0.25, SHIFT),
            (40.5, 100, 0.45, 0), (41.0, 100, 0.5, 0)]

    def plant(plan: Plan, k0: int, s: int) -> int:
        points = [(0.0, 0.0)] + [(m * MIN, sign * off) for m, off, _, _ in legs]
        k1 = plan.ramp(k0, points, s)
        prev = k0
        for m, _, p_buy, mode in legs:
            k = k0 + plan.k_at(m * MIN)
            plan.p_buy[prev:k] = p_buy if sign > 0 else 1.0 - p_buy
            plan.mode[prev:k] = mode
            prev = k
        plan.planted.append(Planted(f"{kind}_divergence", k0, k1, kind,
                                    {"swing_bars": (k0 + 10 * plan.ipm, k0 + 30 * plan.ipm)}))
        return k1

    return plant


def structure(kind: str) -> Planter:
    """An up-leg of higher highs (bars 6, 16, 26) and higher lows (bars 10, 20), a last up bar
    (26), then a displacement that breaks the bar-20 low within a minute (bearish; mirrored for
    bullish). Plants the break of structure and its order block (bar 26)."""
    sign = 1 if kind == "bearish" else -1
    legs = [(6.5, 100, 0.55), (10.5, 50, 0.45), (16.5, 160, 0.55), (20.5, 110, 0.45),
            (26.75, 220, 0.55), (27.0, 214, 0.45), (28.0, -20, 0.15), (29.0, -20, 0.5)]

    def plant(plan: Plan, k0: int, s: int) -> int:
        points = [(0.0, 0.0)] + [(m * MIN, sign * off) for m, off, _ in legs]
        k1 = plan.ramp(k0, points, s)
        prev = k0
        for m, _, p_buy in legs:
            k = k0 + plan.k_at(m * MIN)
            plan.p_buy[prev:k] = p_buy if sign > 0 else 1.0 - p_buy
            prev = k
        info = {"swing_bar": k0 + 20 * plan.ipm, "ob_bar": k0 + 26 * plan.ipm,
                "displacement_bar": k0 + 27 * plan.ipm}
        plan.planted.append(Planted("break_of_structure", k0, k1, kind, info))
        plan.planted.append(Planted("order_block", k0, k1, kind, info))
        return k1

    return plant


def stair(direction: str, minutes: int = 40) -> Planter:
    """A steady trend of 15 ticks a bar (noise +-2): every bar's high and low beyond the last, so
    no swing point is ever confirmed inside and no price is crossed without prints."""
    sign = 1 if direction == "up" else -1

    def plant(plan: Plan, k0: int, s: int) -> int:
        k1 = plan.ramp(k0, [(0, 0), (minutes * MIN, sign * 15 * minutes)], s)
        plan.quiet.append(Quiet(("bearish_divergence", "bullish_divergence", "liquidity_void",
                                 "bid_wall", "absorption"), k0 + 5 * plan.ipm, k1 - 5 * plan.ipm))
        return k1

    return plant


def band(minutes: int) -> Planter:
    """Background noise held inside two footprint rows (20 ticks): no three rows in a bar, no
    heavy level, no untraded range, no outsized resting size."""

    def plant(plan: Plan, k0: int, s: int) -> int:
        k1 = k0 + minutes * plan.ipm
        lo = (s // ROW_TICKS) * ROW_TICKS
        plan.continue_bg(k0, k1, s, lo=lo, hi=lo + 2 * ROW_TICKS - 2)
        plan.quiet.append(Quiet(("absorption", "stacked_imbalance_buy", "stacked_imbalance_sell",
                                 "liquidity_void", "bid_wall"), k0 + 2 * plan.ipm,
                                k1 - 2 * plan.ipm))
        return k1

    return plant


def pinned(minutes: int) -> Planter:
    """Price pinned to one bid and one ask inside one row: both best levels refill, and a buy and
    a sell every 5 s give every bar the same high and low. Nothing of any kind can form."""

    def plant(plan: Plan, k0: int, s: int) -> int:
        cfg = plan.cfg
        k1 = k0 + minutes * plan.ipm
        pin = (s // ROW_TICKS) * ROW_TICKS + 4
        plan.path[k0:k1] = pin
        starts = plan.t_us(k0 + 1) + np.arange(0, (k1 - k0 - 2) * cfg.interval_us, 5_000_000)
        t = np.concatenate([starts + 1_000_000, starts + 2_500_000])
        buy = np.concatenate([np.zeros(starts.size, bool), np.ones(starts.size, bool)])
        order = np.argsort(t, kind="stable")
        lots = np.full(t.size, max(1, round(cfg.trade_qty_median / cfg.lot_size)))
        plan.add_trades(t[order], buy[order], lots)
        plan.overrides.append(Override(k0, k1, 0, pin, 0, reset=True, refill=True))
        plan.overrides.append(Override(k0, k1, 1, pin + 1, 0, reset=True, refill=True))
        plan.quiet.append(Quiet(KINDS, k0 + 4 * plan.ipm, k1 - 4 * plan.ipm))
        return k1

    return plant


def day_schedule() -> list[tuple[float, Planter]]:
    """Seconds after each UTC midnight -> planter. Events sit at least 20 minutes apart; the
    seven absorptions a day (with their follow-through) are the planted edge the demo trades."""
    h = 3_600
    return [
        (20 * MIN, band(60)),
        (90 * MIN, absorption("ask")),
        (2 * h, absorption("bid")),
        (3 * h, pinned(30)),
        (4 * h, wall("pulled")),
        (4.5 * h, absorption("ask")),
        (5 * h, wall("traded_through")),
        (5.5 * h, absorption("bid")),
        (6 * h, stacked("buy")),
        (6.5 * h, absorption("ask")),
        (7 * h, stair("up")),
        (8 * h, stacked("sell")),
        (8.5 * h, absorption("bid")),
        (9 * h, stair("down")),
        (10 * h, void("up")),
        (11 * h, void("down")),
        (12 * h, divergence("bearish")),
        (13 * h, pinned(30)),
        (14 * h, divergence("bullish")),
        (15 * h, band(40)),
        (16 * h, structure("bearish")),
        (17 * h, pinned(30)),
        (18 * h, structure("bullish")),
        (19 * h, stair("up")),
        (20 * h, absorption("ask")),
        (21 * h, band(40)),
        (22 * h, pinned(30)),
        (23 * h, stair("down")),
    ]
