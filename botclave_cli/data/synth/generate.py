"""``generate(cfg)``: plan -> aggressive orders -> book kernel -> frames in the store schemas."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from botclave_cli.data.schemas import TS, conform
from botclave_cli.data.synth import kernel
from botclave_cli.data.synth.config import SynthConfig, decimals
from botclave_cli.data.synth.events import day_schedule
from botclave_cli.data.synth.plan import Plan, avoid_diff_time, build_plan, level_pool, trade_lots
from botclave_cli.data.synth.truth import Tape, Truth, TruthEvent, build_truth, measure_events
from botclave_cli.progress import Progress, or_null

FIRST_TRADE_ID = 1_000_000_000
FIRST_UPDATE_ID = 40_000_000_000


@dataclass
class SynthMarket:
    """The generated market: frames in the store schemas, and the truth of what was planted."""

    config: SynthConfig
    trades: pl.DataFrame
    book_snapshot: pl.DataFrame
    book_diff: pl.DataFrame
    quotes: pl.DataFrame
    ohlcv: pl.DataFrame
    truth: Truth

    def frames(self) -> dict[str, pl.DataFrame]:
        return {"trades": self.trades, "book_snapshot": self.book_snapshot,
                "book_diff": self.book_diff, "quotes": self.quotes, "ohlcv": self.ohlcv}


@dataclass
class Orders:
    """Aggressive orders before execution, sorted by time."""

    t: np.ndarray
    k: np.ndarray
    buy: np.ndarray
    lots: np.ndarray


def generate(cfg: SynthConfig, progress: Progress | None = None) -> SynthMarket:
    """Generate the whole market in memory (the days of ``SynthRun`` put together). Same
    config -> identical frames."""
    run = SynthRun(cfg)
    days = list(run.days(progress))
    if len(days) == 1:
        frames = days[0].frames
    else:
        frames = {kind: pl.concat([d.frames[kind] for d in days]) for kind in days[0].frames}
    return SynthMarket(cfg, **frames, truth=run.truth([e for d in days for e in d.events]))


@dataclass
class SynthDay:
    """One UTC day of the market: its frames (store schemas) and its planted events."""

    day: int
    frames: dict[str, pl.DataFrame]
    events: list[TruthEvent]


@dataclass
class _Carry:
    """What one day hands the next: the book kernel's state and the running ids."""

    book: np.ndarray
    pub: np.ndarray
    flags: np.ndarray
    dirty: np.ndarray
    scal: np.ndarray  # pool cursor, best bid, best ask, lowest bid, highest ask, started
    next_trade_id: int = FIRST_TRADE_ID
    last_update_id: int = FIRST_UPDATE_ID

    def copy(self) -> _Carry:
        return _Carry(self.book.copy(), self.pub.copy(), self.flags.copy(), self.dirty.copy(),
                      self.scal.copy(), self.next_trade_id, self.last_update_id)


class SynthRun:
    """The market generated day by day: the plan (path and planted events) for the whole span
    first, then per UTC day the orders, the book and the frames, the book carried across
    midnight. Memory holds the plan and one day; ``write_synth`` writes each day as it comes.
    The random streams are drawn day after day, so one day's config gives the same bytes as
    ever, and the same config always the same bytes."""

    def __init__(self, cfg: SynthConfig) -> None:
        self.cfg = cfg
        seeds = np.random.SeedSequence(cfg.seed).spawn(4)
        rng_path, rng_events, self.rng_trades, self.rng_book = (np.random.default_rng(s)
                                                                for s in seeds)
        self.plan = build_plan(cfg, rng_path, rng_events, day_schedule())

    def days(self, progress: Progress | None = None) -> Iterator[SynthDay]:
        prog = or_null(progress)
        cfg, plan = self.cfg, self.plan
        prog.start(cfg.days, f"synth {cfg.symbol}: generate")
        base = int(plan.path.min()) - cfg.book_levels - 64
        n_ticks = int(plan.path.max()) - base + cfg.book_levels + 64
        pool = level_pool(self.rng_book, cfg)
        carry = _Carry(np.zeros((2, n_ticks), np.int64), np.zeros((2, n_ticks), np.int64),
                       np.zeros((2, n_ticks), np.uint8), np.zeros((2 * n_ticks, 2), np.int64),
                       np.zeros(6, np.int64))
        target = plan.path - base
        for day in range(cfg.days):
            k_lo, k_hi = day * cfg.intervals_per_day, (day + 1) * cfg.intervals_per_day
            orders = place_orders(plan, self.rng_trades, day)
            size_refills(plan, orders, k_lo, k_hi)
            out = run_book(plan, orders, self.rng_book, (k_lo, k_hi), base, n_ticks, pool,
                           carry, target)
            frames, tape = to_frames(plan, out, k_lo, k_hi, carry)
            day_plan = replace(plan, planted=[p for p in plan.planted if k_lo <= p.k0 < k_hi])
            yield SynthDay(day, frames, measure_events(day_plan, tape))
            # drop this day before the next is built: else two days' arrays live at once
            del orders, out, frames, tape, day_plan
            prog.advance()

    def truth(self, events: list[TruthEvent]) -> Truth:
        """The truth of the whole span from the events the days measured."""
        return build_truth(self.plan, None, events)


def place_orders(plan: Plan, rng: np.random.Generator, day: int = 0) -> Orders:
    """Background orders of UTC day ``day`` (Poisson arrivals, balanced sides unless the plan
    skews them) plus the planted flow of that day, in time order."""
    cfg = plan.cfg
    mean_gap = 86_400e6 / cfg.trades_per_day
    n_max = int(cfg.trades_per_day * 1.05) + 1_000
    lo_us = cfg.start_us + day * 86_400_000_000
    hi_us = lo_us + 86_400_000_000
    t = lo_us + np.floor(np.cumsum(rng.exponential(mean_gap, n_max))).astype(np.int64)
    t = avoid_diff_time(t[t < hi_us], cfg)
    k = (t - cfg.start_us) // cfg.interval_us
    keep = ~plan.suppress[k]
    t, k = t[keep], k[keep]
    buy = (rng.random(t.size) < plan.p_buy[k]).astype(np.int8)
    lots = trade_lots(rng, t.size, cfg)
    in_day = [(e >= lo_us) & (e < hi_us) for e in plan.extra_t]
    t_all = np.concatenate([t, *(e[m] for e, m in zip(plan.extra_t, in_day, strict=True))])
    order = np.argsort(t_all, kind="stable")
    t_all = t_all[order]
    return Orders(
        t=t_all,
        k=(t_all - cfg.start_us) // cfg.interval_us,
        buy=np.concatenate([buy, *(b[m] for b, m in zip(plan.extra_buy, in_day,
                                                        strict=True))])[order],
        lots=np.concatenate([lots, *(x[m] for x, m in zip(plan.extra_lots, in_day,
                                                          strict=True))])[order],
    )


def size_refills(plan: Plan, orders: Orders, k_lo: int = 0, k_hi: int | None = None) -> None:
    """Give each refilling level (absorption, pinned touch) starting in ``[k_lo, k_hi)`` a
    visible size that the flow of any single interval of ``orders`` (that span's) cannot
    exhaust: it holds, and price never trades through it. Planted events sit inside a day."""
    median = round(plan.cfg.level_qty_median / plan.cfg.lot_size)
    for o in plan.overrides:
        if not o.refill or o.k0 < k_lo or (k_hi is not None and o.k0 >= k_hi):
            continue
        hits = (orders.k > o.k0) & (orders.k <= o.k1) & (orders.buy == (1 if o.side == 1 else 0))
        per_k = np.bincount(orders.k[hits] - o.k0, orders.lots[hits], minlength=o.k1 - o.k0 + 1)
        o.lots = int(max(3 * median, np.ceil(1.25 * per_k.max()) + 1))
        for p in plan.planted:
            if p.kind == "absorption" and p.info["tick"] == o.tick and p.k0 == o.k0 + 1:
                p.info["visible_lots"] = o.lots


def run_book(plan: Plan, orders: Orders, rng: np.random.Generator, span: tuple[int, int],
             base: int, n_ticks: int, pool: np.ndarray, carry: _Carry,
             target: np.ndarray | None = None) -> dict[str, np.ndarray | int]:
    """The book kernel over the intervals ``span`` (one day), from and into ``carry``;
    ``target``: ``plan.path - base`` (computed once for all days by the caller)."""
    cfg = plan.cfg
    depth = cfg.book_levels
    k_lo, k_hi = span
    n_k = k_hi - k_lo
    ov = plan.overrides
    if target is None:
        target = plan.path - base
    moves = int(np.abs(np.diff(plan.path[max(k_lo - 1, 0):k_hi])).sum())
    cap_p = orders.t.size * 2 + moves + 1_024
    cap_d = n_k * 3 + 4 * moves + orders.t.size * 2 + 1_024
    snap_k = np.array([k_lo], np.int64)
    args = (
        n_ticks, depth, cfg.start_us, cfg.interval_us,
        orders.k, orders.t, orders.buy, orders.lots,
        target, plan.mode,
        np.array([o.k0 for o in ov], np.int64), np.array([o.k1 for o in ov], np.int64),
        np.array([o.side for o in ov], np.int64), np.array([o.tick - base for o in ov], np.int64),
        np.array([o.lots for o in ov], np.int64), np.array([int(o.reset) for o in ov], np.int64),
        pool, rng.integers(0, 2, n_k).astype(np.int8),
        rng.integers(1, depth, n_k).astype(np.int64),
        snap_k, depth,
    )
    saved = carry.copy()
    while True:
        res = kernel.simulate(*args, cap_p, cap_d, k_lo, k_hi, carry.book, carry.pub,
                              carry.flags, carry.dirty, carry.scal)
        if res[4] >= 0 and res[9] >= 0:
            break
        cap_p, cap_d = cap_p * 2, cap_d * 2
        for name in ("book", "pub", "flags", "dirty", "scal"):
            getattr(carry, name)[...] = getattr(saved, name)
    names = ("p_t", "p_tick", "p_lots", "p_buy", "n_p", "d_k", "d_side", "d_tick", "d_lots",
             "n_d", "q", "s_idx", "s_side", "s_level", "s_tick", "s_lots", "n_s")
    out = dict(zip(names, res, strict=True))
    del res
    # copies of the filled rows: views would keep the kernel's spare capacity alive
    for keys, n in ((names[:4], out["n_p"]), (names[5:9], out["n_d"]), (names[11:16], out["n_s"])):
        for key in keys:
            out[key] = out[key][:n].copy()
    out["base"] = base
    out["snap_k"] = snap_k
    return out


def to_frames(plan: Plan, out: dict, k_lo: int, k_hi: int, carry: _Carry
              ) -> tuple[dict[str, pl.DataFrame], Tape]:
    """The day's frames and tape; trade and update ids continue from ``carry`` (advanced)."""
    cfg = plan.cfg
    base = out["base"]
    n_p, n_d, n_s = out["n_p"], out["n_d"], out["n_s"]
    n_k = k_hi - k_lo
    tape = Tape(t=out["p_t"][:n_p], tick=out["p_tick"][:n_p] + base,
                lots=out["p_lots"][:n_p], buy=out["p_buy"][:n_p])
    first_id = carry.next_trade_id
    trades = conform(pl.DataFrame({
        "ts": _ts(tape.t),
        "price": _price(tape.tick, cfg),
        "qty": _qty(tape.lots, cfg),
        "side": pl.Series(tape.buy, dtype=pl.Int8).replace_strict(
            {1: "buy", 0: "sell"}, return_dtype=pl.String),
        "trade_id": np.arange(first_id, first_id + n_p, dtype=np.int64),
    }), "trades")

    d_k = out["d_k"][:n_d]
    rows_per = np.bincount(d_k - k_lo, minlength=n_k)
    last = carry.last_update_id + np.cumsum(rows_per)
    first = last - rows_per + 1
    prev = np.concatenate([[carry.last_update_id], last[:-1]])
    ks = np.arange(k_lo, k_hi, dtype=np.int64)
    diff_ts = cfg.start_us + (ks + 1) * cfg.interval_us - 1
    d_side = out["d_side"][:n_d]
    null = d_side < 0
    day_k = d_k - k_lo
    book_diff = conform(pl.DataFrame({
        "ts": _ts(diff_ts[day_k]),
        "seq": 3 * d_k + 1,
        "first_update_id": first[day_k],
        "last_update_id": last[day_k],
        "prev_update_id": prev[day_k],
        "side": _book_side(d_side),
        "price": pl.Series(_price(out["d_tick"][:n_d] + base, cfg)).scatter(
            np.nonzero(null)[0], None),
        "qty": pl.Series(_qty(out["d_lots"][:n_d], cfg)).scatter(np.nonzero(null)[0], None),
    }), "book_diff").sort("seq", "side", "price", maintain_order=True)

    q = out["q"]
    quotes = conform(pl.DataFrame({
        "ts": _ts(diff_ts),
        "seq": 3 * ks + 2,
        "update_id": last,
        "bid_price": _price(q[:, 0] + base, cfg),
        "bid_qty": _qty(q[:, 1], cfg),
        "ask_price": _price(q[:, 2] + base, cfg),
        "ask_qty": _qty(q[:, 3], cfg),
    }), "quotes")

    snap_k = out["snap_k"][out["s_idx"][:n_s]]
    book_snapshot = conform(pl.DataFrame({
        "ts": _ts(cfg.start_us + snap_k * cfg.interval_us),
        "seq": 3 * snap_k,
        "last_update_id": np.full(n_s, carry.last_update_id, np.int64),
        "side": _book_side(out["s_side"][:n_s]),
        "level": out["s_level"][:n_s].astype(np.int32),
        "price": _price(out["s_tick"][:n_s] + base, cfg),
        "qty": _qty(out["s_lots"][:n_s], cfg),
    }), "book_snapshot").sort("seq", "side", "level", maintain_order=True)

    carry.next_trade_id = first_id + n_p
    carry.last_update_id = int(last[-1])
    day_cfg = cfg.model_copy(update={"start": cfg.start + dt.timedelta(days=k_lo // n_k),
                                     "days": 1})
    frames = {"trades": trades, "book_snapshot": book_snapshot, "book_diff": book_diff,
              "quotes": quotes, "ohlcv": ohlcv_1m(tape, day_cfg)}
    return frames, tape


def ohlcv_1m(tape: Tape, cfg: SynthConfig) -> pl.DataFrame:
    """1m candles of every minute of the span, from the prints in integers (exact sums, the same
    bytes whatever the thread count). A minute without trades is a flat candle at the previous
    close with zero volume, as Binance serves it."""
    n_min = cfg.days * 1_440
    minute = (tape.t - cfg.start_us) // 60_000_000
    counts = np.bincount(minute, minlength=n_min)
    has = counts > 0
    first = np.searchsorted(minute, np.arange(n_min))[has]
    last = (np.cumsum(counts) - 1)[has]
    close = np.zeros(n_min, np.int64)
    close[has] = tape.tick[last]
    filled = np.maximum.accumulate(np.where(has, np.arange(n_min), -1))
    prev_close = np.where(filled >= 0, close[np.maximum(filled, 0)], tape.tick[0])
    cols = {name: prev_close.copy() for name in ("open", "high", "low", "close")}
    cols["open"][has] = tape.tick[first]
    cols["high"][has] = np.maximum.reduceat(tape.tick, first)
    cols["low"][has] = np.minimum.reduceat(tape.tick, first)
    volume = np.zeros(n_min, np.int64)
    volume[has] = np.add.reduceat(tape.lots, first)
    notional = np.zeros(n_min, np.int64)  # ticks x lots
    notional[has] = np.add.reduceat(tape.tick * tape.lots, first)
    dec = decimals(cfg.tick_size) + decimals(cfg.lot_size)
    return conform(pl.DataFrame({
        "ts": _ts(cfg.start_us + np.arange(n_min, dtype=np.int64) * 60_000_000),
        **{name: _price(v, cfg) for name, v in cols.items()},
        "volume": _qty(volume, cfg),
        "quote_volume": np.round(notional * (cfg.tick_size * cfg.lot_size), dec),
        "trade_count": counts.astype(np.int64),
    }), "ohlcv")


def _ts(us: np.ndarray) -> pl.Series:
    return pl.Series(us.astype(np.int64)).cast(pl.Datetime("us")).dt.replace_time_zone(
        "UTC").cast(TS)


def _price(ticks: np.ndarray, cfg: SynthConfig) -> np.ndarray:
    return np.round(ticks * cfg.tick_size, decimals(cfg.tick_size))


def _qty(lots: np.ndarray, cfg: SynthConfig) -> np.ndarray:
    return np.round(lots * cfg.lot_size, decimals(cfg.lot_size))


def _book_side(side: np.ndarray) -> pl.Series:
    return pl.Series(side, dtype=pl.Int8).replace_strict(
        {0: "bid", 1: "ask", -1: None}, return_dtype=pl.String)
