"""Each planted event of the synthetic market is in the data as the truth file describes it, and
its quiet stretches hold none of it. Every check recomputes from the frames by hand (ticks,
dict books, explicit swing rules), never from the generator's own measurements."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import polars as pl
import pytest

from botclave_cli.data.synth import SynthConfig, generate

CFG = SynthConfig(trades_per_day=20_000, book_interval_ms=1_000)
MIN_US = 60_000_000


@pytest.fixture(scope="module")
def market():
    return generate(CFG)


def ticks(prices) -> np.ndarray:
    """Prices -> integer ticks of CFG.tick_size (rounded)."""
    return np.round(prices.to_numpy() / CFG.tick_size).astype(np.int64)


@pytest.fixture(scope="module")
def tape(market):
    """Trades as integer arrays: t (us), tick, qty, buy."""
    t = market.trades
    return {
        "t": t["ts"].dt.epoch("us").to_numpy(),
        "tick": ticks(t["price"]),
        "qty": t["qty"].to_numpy(),
        "buy": (t["side"] == "buy").to_numpy(),
    }


@pytest.fixture(scope="module")
def bars(market):
    o = market.ohlcv
    return {
        "t": o["ts"].dt.epoch("us").to_numpy(),
        "open": ticks(o["open"]),
        "high": ticks(o["high"]),
        "low": ticks(o["low"]),
        "close": ticks(o["close"]),
    }


def _window(tape, t0, t1):
    return (tape["t"] >= t0) & (tape["t"] < t1)


def _tick(price):
    return round(price / CFG.tick_size)


def _rows(tape, t0, row):
    """Footprint of the 1m bar at t0: row label -> [ask (buy) volume, bid (sell) volume]."""
    fp: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    w = _window(tape, t0, t0 + MIN_US)
    for tick, qty, buy in zip(tape["tick"][w], tape["qty"][w], tape["buy"][w], strict=True):
        fp[tick // row][0 if buy else 1] += qty
    return fp


def _stack_runs(fp, ratio):
    """Longest runs of consecutive buy / sell diagonal imbalances (empty opposite counts)."""
    best = {"buy": 0, "sell": 0}
    if not fp:
        return best
    rows = range(min(fp) - 1, max(fp) + 2)
    for side in best:
        run = 0
        for r in rows:
            a = fp.get(r, [0.0, 0.0])
            if side == "buy":
                num, den = a[0], fp.get(r - 1, [0.0, 0.0])[1]
            else:
                num, den = a[1], fp.get(r + 1, [0.0, 0.0])[0]
            run = run + 1 if num > 0 and num > ratio * den else 0
            best[side] = max(best[side], run)
    return best


def _swings(bars, n):
    """Indices of strict swing highs / lows confirmed by n bars on each side."""
    hi, lo = bars["high"], bars["low"]
    highs, lows = [], []
    for i in range(n, len(hi) - n):
        if hi[i] > hi[i - n:i].max() and hi[i] > hi[i + 1:i + n + 1].max():
            highs.append(i)
        if lo[i] < lo[i - n:i].min() and lo[i] < lo[i + 1:i + n + 1].min():
            lows.append(i)
    return highs, lows


def _cvd_at_close(tape, t_close):
    day0 = CFG.start_us + (t_close - 1 - CFG.start_us) // 86_400_000_000 * 86_400_000_000
    w = _window(tape, day0, t_close)
    return float(np.where(tape["buy"][w], tape["qty"][w], -tape["qty"][w]).sum())


def _bar_index(bars, t):
    return int(np.searchsorted(bars["t"], t))


def test_every_kind_is_planted_with_quiet_stretches(market):
    truth = market.truth
    kinds = {e.kind for e in truth.events}
    assert kinds == set(truth.detector_params["kinds"])
    for kind in kinds:
        assert truth.quiet_of(kind), kind
    starts = sorted(e.start_us for e in truth.events if e.kind not in ("order_block",))
    assert min(np.diff(starts)) >= 20 * MIN_US  # events far apart
    for q in truth.quiet:  # no quiet stretch overlaps an event of its kind
        for e in truth.events_of(q.kind):
            assert e.end_us <= q.start_us or e.start_us >= q.end_us


def test_absorption_holds_the_level_while_heavy_flow_hits_it(market, tape):
    params = market.truth.detector_params
    for e in market.truth.events_of("absorption"):
        level = _tick(e.price_low)
        w = _window(tape, e.start_us, e.end_us)
        ticks, qty, buy = tape["tick"][w], tape["qty"][w], tape["buy"][w]
        aggressor_buy = e.side == "ask"
        hit = (ticks == level) & (buy == aggressor_buy)
        assert qty[hit].sum() == pytest.approx(e.detail["absorbed_qty"])
        # price never trades through the level
        assert (ticks >= level).all() if e.side == "bid" else (ticks <= level).all()
        # heavy: every minute of the window beats the threshold written for detectors
        for a in range(e.start_us, e.end_us, MIN_US):
            ww = _window(tape, a, a + MIN_US) & (tape["tick"] == level) & (
                tape["buy"] == aggressor_buy)
            assert tape["qty"][ww].sum() >= 2.5 * params["absorption_min_qty"]
        # ... while the book keeps showing the level at the touch, refilled after every diff
        qts = market.quotes.filter(pl.col("ts").dt.epoch("us").is_between(
            e.start_us, e.end_us, closed="left"))
        col = "bid" if e.side == "bid" else "ask"
        assert (qts[f"{col}_price"] == e.price_low).all()
        visible = e.detail["visible_qty"]
        assert (qts[f"{col}_qty"] == visible).all()
        assert e.detail["absorbed_qty"] > 10 * visible


def test_quiet_stretches_have_no_heavy_level(market, tape):
    params = market.truth.detector_params
    window = params["absorption_window_s"] * 1_000_000
    for q in market.truth.quiet_of("absorption"):
        for a in range(q.start_us, q.end_us - window + 1, window // 2):
            w = _window(tape, a, a + window)
            for buy in (True, False):
                m = w & (tape["buy"] == buy)
                if m.any():
                    per_tick = np.bincount(tape["tick"][m] - tape["tick"][m].min(),
                                           tape["qty"][m])
                    assert per_tick.max() < params["absorption_min_qty"]


def test_stacked_imbalances_exceed_the_ratio_on_every_row(market, tape):
    params = market.truth.detector_params
    row = params["row_size_ticks"]
    for kind, side in (("stacked_imbalance_buy", 0), ("stacked_imbalance_sell", 1)):
        (e,) = market.truth.events_of(kind)
        fp = _rows(tape, e.start_us, row)
        lo, hi = _tick(e.price_low) // row, _tick(e.price_high) // row
        assert hi - lo + 1 >= 4
        for r in range(lo, hi + 1):
            num = fp[r][side]
            den = fp.get(r - 1 if side == 0 else r + 1, [0.0, 0.0])[1 - side]
            assert num > 0 and num >= 10 * params["imbalance_ratio"] * den, (kind, r)


def test_quiet_stretches_have_no_stacked_imbalance(market, tape):
    params = market.truth.detector_params
    for side in ("buy", "sell"):
        for q in market.truth.quiet_of(f"stacked_imbalance_{side}"):
            for t0 in range(q.start_us, q.end_us - MIN_US + 1, MIN_US):
                runs = _stack_runs(_rows(tape, t0, params["row_size_ticks"]),
                                   params["imbalance_ratio"])
                assert runs[side] < params["stacked_min_levels"], (side, t0)


def test_liquidity_void_has_no_trade_inside(market, tape):
    for e in market.truth.events_of("liquidity_void"):
        lo, hi = _tick(e.price_low), _tick(e.price_high)
        assert hi - lo + 1 >= market.truth.detector_params["void_min_ticks"]
        w = _window(tape, e.start_us, e.detail["untraded_until_us"])
        assert not ((tape["tick"][w] >= lo) & (tape["tick"][w] <= hi)).any()
        before = tape["tick"][tape["t"] < e.start_us][-1]
        after = tape["tick"][tape["t"] >= e.end_us][0]
        if e.side == "up":
            assert before < lo and after > hi
        else:
            assert before > hi and after < lo
        assert e.end_us - e.start_us <= 5_000_000  # fast


def test_quiet_stretches_have_no_untraded_range(market, tape):
    min_ticks = market.truth.detector_params["void_min_ticks"]
    for q in market.truth.quiet_of("liquidity_void"):
        ticks = np.unique(tape["tick"][_window(tape, q.start_us, q.end_us)])
        assert ticks.size and np.diff(ticks).max() - 1 < min_ticks / 10


def _replay_bid_qty(market, price, t_from, t_to):
    """Bid size at ``price`` after each diff with time in [t_from, t_to), by a dict replay."""
    snap = market.book_snapshot.filter(pl.col("seq") == 0)
    bids = {p: q for s, p, q in snap.select("side", "price", "qty").iter_rows() if s == "bid"}
    diffs = (market.book_diff.filter(pl.col("ts").dt.epoch("us") < t_to)
             .group_by("seq", maintain_order=True)
             .agg(pl.col("ts").first().dt.epoch("us"), "side", "price", "qty"))
    out = []
    for ts, sides, prices, qtys in diffs.select("ts", "side", "price", "qty").iter_rows():
        for side, p, q in zip(sides, prices, qtys, strict=True):
            if side == "bid":
                if q == 0:
                    bids.pop(p, None)
                else:
                    bids[p] = q
        if ts >= t_from:
            out.append(bids.get(price, 0.0))
    return out


def test_bid_walls_persist_then_end_as_told(market, tape):
    params = market.truth.detector_params
    typical = params["typical_level_qty"]
    walls = market.truth.events_of("bid_wall")
    assert {w.detail["ended_by"] for w in walls} == {"pulled", "traded_through"}
    for e in walls:
        assert e.end_us - e.start_us >= 4 * params["wall_min_duration_s"] * 1_000_000
        life = _replay_bid_qty(market, e.price_low, e.start_us, e.end_us)
        assert len(life) > 60 and min(life) >= params["wall_min_multiple"] * typical
        after = _replay_bid_qty(market, e.price_low, e.end_us, e.end_us + 1)
        assert after[0] < 3 * typical
        w = _window(tape, e.start_us, e.end_us + 1) & (tape["tick"] == _tick(e.price_low))
        traded = tape["qty"][w & ~tape["buy"]].sum()
        if e.detail["ended_by"] == "pulled":
            assert traded == 0
        else:
            assert traded == pytest.approx(e.detail["qty"])


def test_quiet_stretches_have_no_large_resting_size(market):
    params = market.truth.detector_params
    limit = params["wall_min_multiple"] * params["typical_level_qty"]
    diffs = market.book_diff.with_columns(us=pl.col("ts").dt.epoch("us"))
    assert market.book_snapshot["qty"].max() < limit
    for q in market.truth.quiet_of("bid_wall"):
        inside = diffs.filter(pl.col("us").is_between(q.start_us, q.end_us, closed="left"))
        assert inside["qty"].max() < limit
        # levels set before the stretch and still resting: none larger either
        before = diffs.filter(pl.col("us") < q.start_us).group_by("side", "price").agg(
            pl.col("qty").last())
        assert before["qty"].max() < limit or before.filter(pl.col("qty") >= limit).join(
            inside, on=["side", "price"], how="anti").height == 0


def test_divergences_on_confirmed_swings(market, tape, bars):
    n = market.truth.detector_params["swing_confirm_bars"]
    highs, lows = _swings(bars, n)
    for e in market.truth.events_of("bearish_divergence") + market.truth.events_of(
            "bullish_divergence"):
        i1, i2 = _bar_index(bars, e.detail["swing1_us"]), _bar_index(bars, e.detail["swing2_us"])
        pivots = highs if e.side == "bearish" else lows
        assert i1 in pivots and i2 in pivots
        assert not [i for i in pivots if i1 < i < i2]  # consecutive swings
        series = bars["high"] if e.side == "bearish" else bars["low"]
        c1 = _cvd_at_close(tape, bars["t"][i1] + MIN_US)
        c2 = _cvd_at_close(tape, bars["t"][i2] + MIN_US)
        if e.side == "bearish":
            assert series[i2] > series[i1] and c2 < c1
        else:
            assert series[i2] < series[i1] and c2 > c1
        assert {_tick(e.price_low), _tick(e.price_high)} == {series[i1], series[i2]}
        assert abs(c2 - c1) > 5 * market.truth.detector_params["typical_level_qty"]


def test_break_of_structure_and_its_order_block(market, bars):
    n = market.truth.detector_params["swing_confirm_bars"]
    highs, lows = _swings(bars, n)
    for bos in market.truth.events_of("break_of_structure"):
        (ob,) = [o for o in market.truth.events_of("order_block") if o.side == bos.side]
        bearish = bos.side == "bearish"
        s = _bar_index(bars, bos.start_us)
        k = _bar_index(bars, ob.start_us)
        assert k == s + 6
        # the leg: three pivots in trend direction and two pullback pivots, each beyond the last
        leg_hi = [i for i in (highs if bearish else lows) if s - 15 <= i <= k]
        leg_lo = [i for i in (lows if bearish else highs) if s - 11 <= i <= s]
        ext = bars["high"] if bearish else bars["low"]
        pull = bars["low"] if bearish else bars["high"]
        assert len(leg_hi) == 3 and len(leg_lo) == 2 and leg_lo[-1] == s
        sign = 1 if bearish else -1
        assert all(sign * (ext[b] - ext[a]) > 0 for a, b in zip(leg_hi, leg_hi[1:], strict=False))
        assert sign * (pull[leg_lo[1]] - pull[leg_lo[0]]) > 0
        level = pull[s]
        assert _tick(bos.price_low) == level
        # the order block is the last bar in trend direction before the displacement
        assert leg_hi[-1] == k
        assert sign * (bars["close"][k] - bars["open"][k]) > 0
        assert sign * (bars["close"][k + 1] - bars["open"][k + 1]) < 0
        assert (_tick(ob.price_low), _tick(ob.price_high)) == (bars["low"][k], bars["high"][k])
        # the displacement closes beyond the broken level within two bars
        brk = _bar_index(bars, bos.detail["first_close_beyond_bar_us"])
        assert brk in (k + 1, k + 2)
        assert sign * (level - bars["close"][brk]) > 0
        assert all(sign * (pull[i] - level) >= 0 for i in range(s, brk))


def test_quiet_stretches_have_no_swing_points(market, bars):
    n = market.truth.detector_params["swing_confirm_bars"]
    highs, lows = _swings(bars, n)
    kinds = ("bearish_divergence", "bullish_divergence", "break_of_structure", "order_block")
    for kind in kinds:
        for q in market.truth.quiet_of(kind):
            a, b = _bar_index(bars, q.start_us), _bar_index(bars, q.end_us)
            assert not [i for i in highs + lows if a - n <= i < b], (kind, q)
            if kind in ("break_of_structure", "order_block"):
                # flat: no bar goes beyond the first one, so nothing can break
                assert len(set(bars["high"][a:b])) == 1 and len(set(bars["low"][a:b])) == 1
