"""The plan of a synthetic market: where the touch should be in every book interval, how it
gets there, who trades, and what is planted.

The background is mild on purpose: the best bid follows a slow random walk (one step per
minute, interpolated) plus a smooth oscillation (Gaussian-filtered noise, a few ticks), moved by
small balanced trades that sweep one level per tick. Planted events and quiet stretches replace
the background on their segments; each segment starts where the path stands, so the path is
continuous and every move is backed by book changes and prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from botclave_cli.data.synth.config import SynthConfig

ANCHOR_SD_TICKS_PER_MIN = 4.0
OSC_SD_TICKS = 6.0
OSC_SMOOTH_S = 6.0
SMALL_NOISE_TICKS = 2
SWEEP, SHIFT = 0, 1


@dataclass
class Override:
    """A level whose size is forced to ``lots`` from interval ``k0`` to ``k1`` (exclusive);
    ``reset`` puts an ordinary size back at ``k1`` (a pulled order). ``refill``: size it from
    the flow actually traded into it (see ``size_refills``)."""

    k0: int
    k1: int
    side: int  # 0 bid, 1 ask
    tick: int
    lots: int
    reset: bool
    refill: bool = False


@dataclass
class Planted:
    """What an event planter did, in plan terms; ``truth.measure`` turns it into a TruthEvent."""

    kind: str
    k0: int
    k1: int
    side: str
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Quiet:
    kinds: tuple[str, ...]
    k0: int
    k1: int


@dataclass
class Plan:
    cfg: SynthConfig
    rng: np.random.Generator
    bg: np.ndarray  # background path (float ticks): increments are reused from any start
    anchor: np.ndarray  # its slow random-walk part (bg - anchor is the oscillation)
    path: np.ndarray  # best bid tick after each interval
    mode: np.ndarray
    p_buy: np.ndarray
    suppress: np.ndarray
    extra_t: list[np.ndarray] = field(default_factory=list)
    extra_buy: list[np.ndarray] = field(default_factory=list)
    extra_lots: list[np.ndarray] = field(default_factory=list)
    overrides: list[Override] = field(default_factory=list)
    planted: list[Planted] = field(default_factory=list)
    quiet: list[Quiet] = field(default_factory=list)

    @property
    def ipm(self) -> int:
        """Intervals per minute."""
        return 60_000 // self.cfg.book_interval_ms

    def k_at(self, seconds: float) -> int:
        return round(seconds * 1_000 / self.cfg.book_interval_ms)

    def t_us(self, k: int) -> int:
        """Start time (us) of interval ``k``."""
        return self.cfg.start_us + k * self.cfg.interval_us

    def small_noise(self, k0: int, k1: int) -> np.ndarray:
        """Integer noise of at most +-2 ticks, smooth like the background oscillation."""
        osc = self.bg[k0:k1] - self.anchor[k0:k1]
        return np.clip(np.round(osc * SMALL_NOISE_TICKS / OSC_SD_TICKS), -SMALL_NOISE_TICKS,
                       SMALL_NOISE_TICKS).astype(np.int64)

    def continue_bg(self, k0: int, k1: int, s: int, lo: int | None = None,
                    hi: int | None = None) -> None:
        """Background from ``s`` on ``[k0, k1)``, optionally clamped to ``[lo, hi]``."""
        ref = self.bg[k0 - 1] if k0 > 0 else self.bg[0]
        seg = s + np.round(self.bg[k0:k1] - ref).astype(np.int64)
        if lo is not None or hi is not None:
            seg = np.clip(seg, lo, hi)
        self.path[k0:k1] = seg

    def ramp(self, k0: int, points: list[tuple[float, float]], s: int, noise: bool = True) -> int:
        """Piecewise-linear path through ``(seconds after k0, ticks from s)`` points; returns
        the interval after the last point."""
        xs = np.array([k0 + self.k_at(sec) for sec, _ in points], dtype=np.float64)
        ys = np.array([s + off for _, off in points], dtype=np.float64)
        k1 = int(xs[-1])
        ks = np.arange(k0, k1)
        seg = np.round(np.interp(ks, xs, ys)).astype(np.int64)
        if noise:
            seg += self.small_noise(k0, k1)
        self.path[k0:k1] = seg
        return k1

    def add_trades(self, t_us: np.ndarray, buy: np.ndarray, lots: np.ndarray) -> None:
        self.extra_t.append(t_us.astype(np.int64))
        self.extra_buy.append(buy.astype(np.int8))
        self.extra_lots.append(lots.astype(np.int64))

    def uniform_times(self, k0: int, k1: int, n: int) -> np.ndarray:
        """``n`` sorted trade times in ``[k0, k1)``, never on a diff's microsecond."""
        t = np.sort(self.rng.integers(self.t_us(k0), self.t_us(k1), n))
        return avoid_diff_time(t, self.cfg)


def avoid_diff_time(t: np.ndarray, cfg: SynthConfig) -> np.ndarray:
    """Trades never share the diff's microsecond (the last of each interval) or the sweep's."""
    off = (t - cfg.start_us) % cfg.interval_us
    return np.where(off >= cfg.interval_us - 2, t - (off - (cfg.interval_us - 3)), t)


def background(cfg: SynthConfig, rng: np.random.Generator,
               n_k: int) -> tuple[np.ndarray, np.ndarray]:
    """(background path, its slow anchor) in float ticks, starting at 0."""
    ipm = 60_000 // cfg.book_interval_ms
    n_min = n_k // ipm + 2
    steps = rng.normal(0.0, ANCHOR_SD_TICKS_PER_MIN, n_min)
    steps[0] = 0.0
    anchor = np.interp(np.arange(n_k), np.arange(n_min) * ipm, np.cumsum(steps))
    white = rng.standard_normal(n_k)
    from scipy.ndimage import gaussian_filter1d  # here only: every CLI start imports synth

    osc = gaussian_filter1d(white, OSC_SMOOTH_S * 1_000 / cfg.book_interval_ms, mode="wrap")
    osc *= OSC_SD_TICKS / osc.std()
    return anchor + osc, anchor


Planter = Callable[[Plan, int, int], int]


def build_plan(cfg: SynthConfig, rng_path: np.random.Generator, rng_events: np.random.Generator,
               schedule: list[tuple[float, Planter]]) -> Plan:
    """Lay the background and the day's schedule (seconds after midnight, planter) on every day.

    A planter gets ``(plan, k0, s)`` with ``s`` the best bid tick just before ``k0``, fills the
    path from ``k0`` and returns where its segment ends.
    """
    n_k = cfg.days * cfg.intervals_per_day
    bg, anchor = background(cfg, rng_path, n_k)
    plan = Plan(
        cfg=cfg, rng=rng_events, bg=bg, anchor=anchor,
        path=np.zeros(n_k, np.int64),
        mode=np.full(n_k, SWEEP, np.int8),
        p_buy=np.full(n_k, 0.5),
        suppress=np.zeros(n_k, bool),
    )
    start_tick = round(cfg.start_price / cfg.tick_size)
    cursor, s = 0, start_tick
    for day in range(cfg.days):
        for seconds, planter in sorted(schedule, key=lambda x: x[0]):
            k0 = day * cfg.intervals_per_day + plan.k_at(seconds)
            if k0 < cursor:
                continue
            if k0 > cursor:
                plan.continue_bg(cursor, k0, s)
                s = int(plan.path[k0 - 1])
            cursor = planter(plan, k0, s)
            s = int(plan.path[cursor - 1])
    if cursor < n_k:
        plan.continue_bg(cursor, n_k, s)
    return plan


def trade_lots(rng: np.random.Generator, n: int, cfg: SynthConfig,
               scale: float = 1.0) -> np.ndarray:
    """Aggressive order sizes in lots: log-normal around ``trade_qty_median * scale``, no outliers
    (clipped at 25x the median)."""
    median = cfg.trade_qty_median * scale / cfg.lot_size
    lots = np.exp(rng.normal(np.log(median), 0.8, n))
    return np.clip(np.round(lots), 1, 25 * median).astype(np.int64)


def level_pool(rng: np.random.Generator, cfg: SynthConfig, size: int = 1 << 16) -> np.ndarray:
    """Resting sizes in lots drawn by the book kernel in turn: log-normal around
    ``level_qty_median``, clipped to [0.4x, 3x] the median so that no ordinary level looks like a
    wall (walls are >= 10x)."""
    median = cfg.level_qty_median / cfg.lot_size
    lots = np.exp(rng.normal(np.log(median), 0.3, size))
    return np.clip(np.round(lots), 0.4 * median, 3 * median).astype(np.int64)
