"""``generate(cfg)``: plan -> aggressive orders -> book kernel -> frames in the store schemas."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from botclave_cli.data.schemas import TS, conform
from botclave_cli.data.synth import kernel
from botclave_cli.data.synth.config import SynthConfig, decimals
from botclave_cli.data.synth.events import day_schedule
from botclave_cli.data.synth.plan import Plan, avoid_diff_time, build_plan, level_pool, trade_lots
from botclave_cli.data.synth.truth import Tape, Truth, build_truth
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
    """Generate the whole market in memory. Same config -> identical frames."""
    prog = or_null(progress)
    prog.start(3, f"synth {cfg.symbol}: generate")
    seeds = np.random.SeedSequence(cfg.seed).spawn(4)
    rng_path, rng_events, rng_trades, rng_book = (np.random.default_rng(s) for s in seeds)
    plan = build_plan(cfg, rng_path, rng_events, day_schedule())
    orders = place_orders(plan, rng_trades)
    size_refills(plan, orders)
    prog.advance()
    out = run_book(plan, orders, rng_book)
    prog.advance()
    market = to_frames(plan, out)
    prog.advance()
    return market


def place_orders(plan: Plan, rng: np.random.Generator) -> Orders:
    """Background orders (Poisson arrivals, balanced sides unless the plan skews them) plus the
    planted flow, in time order."""
    cfg = plan.cfg
    mean_gap = 86_400e6 / cfg.trades_per_day
    n_max = int(cfg.trades_per_day * cfg.days * 1.05) + 1_000
    t = cfg.start_us + np.floor(np.cumsum(rng.exponential(mean_gap, n_max))).astype(np.int64)
    t = avoid_diff_time(t[t < cfg.end_us], cfg)
    k = (t - cfg.start_us) // cfg.interval_us
    keep = ~plan.suppress[k]
    t, k = t[keep], k[keep]
    buy = (rng.random(t.size) < plan.p_buy[k]).astype(np.int8)
    lots = trade_lots(rng, t.size, cfg)
    t_all = np.concatenate([t, *plan.extra_t])
    order = np.argsort(t_all, kind="stable")
    t_all = t_all[order]
    return Orders(
        t=t_all,
        k=(t_all - cfg.start_us) // cfg.interval_us,
        buy=np.concatenate([buy, *plan.extra_buy])[order],
        lots=np.concatenate([lots, *plan.extra_lots])[order],
    )


def size_refills(plan: Plan, orders: Orders) -> None:
    """Give each refilling level (absorption, pinned touch) a visible size that the flow of any
    single interval cannot exhaust: it holds, and price never trades through it."""
    median = round(plan.cfg.level_qty_median / plan.cfg.lot_size)
    for o in plan.overrides:
        if not o.refill:
            continue
        hits = (orders.k > o.k0) & (orders.k <= o.k1) & (orders.buy == (1 if o.side == 1 else 0))
        per_k = np.bincount(orders.k[hits] - o.k0, orders.lots[hits], minlength=o.k1 - o.k0 + 1)
        o.lots = int(max(3 * median, np.ceil(1.25 * per_k.max()) + 1))
        for p in plan.planted:
            if p.kind == "absorption" and p.info["tick"] == o.tick and p.k0 == o.k0 + 1:
                p.info["visible_lots"] = o.lots


def run_book(plan: Plan, orders: Orders, rng: np.random.Generator) -> dict[str, np.ndarray | int]:
    cfg = plan.cfg
    depth = cfg.book_levels
    base = int(plan.path.min()) - depth - 64
    n_ticks = int(plan.path.max()) - base + depth + 64
    n_k = plan.path.size
    ov = plan.overrides
    moves = int(np.abs(np.diff(plan.path)).sum())
    cap_p = orders.t.size * 2 + moves + 1_024
    cap_d = n_k * 3 + 4 * moves + orders.t.size * 2 + 1_024
    snap_k = np.arange(cfg.days, dtype=np.int64) * cfg.intervals_per_day
    args = (
        n_ticks, depth, cfg.start_us, cfg.interval_us,
        orders.k, orders.t, orders.buy, orders.lots,
        plan.path - base, plan.mode,
        np.array([o.k0 for o in ov], np.int64), np.array([o.k1 for o in ov], np.int64),
        np.array([o.side for o in ov], np.int64), np.array([o.tick - base for o in ov], np.int64),
        np.array([o.lots for o in ov], np.int64), np.array([int(o.reset) for o in ov], np.int64),
        level_pool(rng, cfg), rng.integers(0, 2, n_k).astype(np.int8),
        rng.integers(1, depth, n_k).astype(np.int64),
        snap_k, depth,
    )
    while True:
        res = kernel.simulate(*args, cap_p, cap_d)
        if res[4] >= 0 and res[9] >= 0:
            break
        cap_p, cap_d = cap_p * 2, cap_d * 2
    names = ("p_t", "p_tick", "p_lots", "p_buy", "n_p", "d_k", "d_side", "d_tick", "d_lots",
             "n_d", "q", "s_idx", "s_side", "s_level", "s_tick", "s_lots", "n_s")
    out = dict(zip(names, res, strict=True))
    out["base"] = base
    out["snap_k"] = snap_k
    return out


def to_frames(plan: Plan, out: dict) -> SynthMarket:
    cfg = plan.cfg
    base = out["base"]
    n_p, n_d, n_s = out["n_p"], out["n_d"], out["n_s"]
    n_k = plan.path.size
    tape = Tape(t=out["p_t"][:n_p], tick=out["p_tick"][:n_p] + base,
                lots=out["p_lots"][:n_p], buy=out["p_buy"][:n_p])
    trades = conform(pl.DataFrame({
        "ts": _ts(tape.t),
        "price": _price(tape.tick, cfg),
        "qty": _qty(tape.lots, cfg),
        "side": pl.Series(tape.buy, dtype=pl.Int8).replace_strict(
            {1: "buy", 0: "sell"}, return_dtype=pl.String),
        "trade_id": np.arange(FIRST_TRADE_ID, FIRST_TRADE_ID + n_p, dtype=np.int64),
    }), "trades")

    d_k = out["d_k"][:n_d]
    rows_per = np.bincount(d_k, minlength=n_k)
    last = FIRST_UPDATE_ID + np.cumsum(rows_per)
    first = last - rows_per + 1
    prev = np.concatenate([[FIRST_UPDATE_ID], last[:-1]])
    diff_ts = cfg.start_us + (np.arange(n_k, dtype=np.int64) + 1) * cfg.interval_us - 1
    d_side = out["d_side"][:n_d]
    null = d_side < 0
    book_diff = conform(pl.DataFrame({
        "ts": _ts(diff_ts[d_k]),
        "seq": 3 * d_k + 1,
        "first_update_id": first[d_k],
        "last_update_id": last[d_k],
        "prev_update_id": prev[d_k],
        "side": _book_side(d_side),
        "price": pl.Series(_price(out["d_tick"][:n_d] + base, cfg)).scatter(
            np.nonzero(null)[0], None),
        "qty": pl.Series(_qty(out["d_lots"][:n_d], cfg)).scatter(np.nonzero(null)[0], None),
    }), "book_diff").sort("seq", "side", "price", maintain_order=True)

    q = out["q"]
    quotes = conform(pl.DataFrame({
        "ts": _ts(diff_ts),
        "seq": 3 * np.arange(n_k, dtype=np.int64) + 2,
        "update_id": last,
        "bid_price": _price(q[:, 0] + base, cfg),
        "bid_qty": _qty(q[:, 1], cfg),
        "ask_price": _price(q[:, 2] + base, cfg),
        "ask_qty": _qty(q[:, 3], cfg),
    }), "quotes")

    snap_k = out["snap_k"][out["s_idx"][:n_s]]
    snap_last = np.where(snap_k == 0, FIRST_UPDATE_ID, last[np.maximum(snap_k - 1, 0)])
    book_snapshot = conform(pl.DataFrame({
        "ts": _ts(cfg.start_us + snap_k * cfg.interval_us),
        "seq": 3 * snap_k,
        "last_update_id": snap_last,
        "side": _book_side(out["s_side"][:n_s]),
        "level": out["s_level"][:n_s].astype(np.int32),
        "price": _price(out["s_tick"][:n_s] + base, cfg),
        "qty": _qty(out["s_lots"][:n_s], cfg),
    }), "book_snapshot").sort("seq", "side", "level", maintain_order=True)

    truth = build_truth(plan, tape)
    return SynthMarket(cfg, trades, book_snapshot, book_diff, quotes,
                       ohlcv_1m(tape, cfg), truth)


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
