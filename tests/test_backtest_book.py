"""Book mode of the backtester: market orders walk the rebuilt book, limit orders wait for the
queue ahead of them, the book-imbalance entry filter. Every expected number is worked out by
hand in the comments (tick 0.01, lot 0.001, latency 0, book sampled every 100 ms)."""

from __future__ import annotations

import polars as pl
import pytest

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.config import ExchangeConfig, FeeSchedule
from botclave_cli.errors import ConfigError
from botclave_cli.strategy.params import StrategyParams
from botclave_cli.strategy.strategy import OrderFlowStrategy
from tests.test_backtest_fills import at, make_tester, sig, trades

TS = pl.Datetime("us", "UTC")
# the book at 1 s: asks 100.00 x1, 100.05 x2, 100.10 x5; bids 99.95 x5, 99.90 x3
ASKS = [(100.00, 1.0), (100.05, 2.0), (100.10, 5.0)]
BIDS = [(99.95, 5.0), (99.90, 3.0)]


def book(diffs: list[tuple[float, str, float, float]] = (), snap_at: float = 1.0,
         end: float = 300.0) -> dict:
    """Snapshot (update id 100) at ``snap_at`` s, then one diff per (seconds, side, price, qty)
    with update ids 101, 102, ... (spot sequencing), and a diff changing nothing at ``end`` s
    (the book data covers the window up to there)."""
    diffs = [*diffs, (end, None, None, None)]
    rows = [(side, lv, px, q) for side, levels in (("ask", ASKS), ("bid", BIDS))
            for lv, (px, q) in enumerate(levels)]
    snap = pl.DataFrame({
        "ts": [at(snap_at)] * len(rows), "ts_local": [None] * len(rows), "seq": [0] * len(rows),
        "last_update_id": [100] * len(rows), "side": [r[0] for r in rows],
        "level": [r[1] for r in rows], "price": [r[2] for r in rows], "qty": [r[3] for r in rows],
    }, schema={"ts": TS, "ts_local": TS, "seq": pl.Int64, "last_update_id": pl.Int64,
               "side": pl.String, "level": pl.Int32, "price": pl.Float64, "qty": pl.Float64})
    n = len(diffs)
    diff = pl.DataFrame({
        "ts": [at(d[0]) for d in diffs], "ts_local": [None] * n, "seq": list(range(1, n + 1)),
        "first_update_id": [101 + i for i in range(n)],
        "last_update_id": [101 + i for i in range(n)],
        "prev_update_id": [None] * n, "side": [d[1] for d in diffs],
        "price": [d[2] for d in diffs], "qty": [d[3] for d in diffs],
    }, schema={"ts": TS, "ts_local": TS, "seq": pl.Int64, "first_update_id": pl.Int64,
               "last_update_id": pl.Int64, "prev_update_id": pl.Int64, "side": pl.String,
               "price": pl.Float64, "qty": pl.Float64})
    return {"book_snapshot": snap, "book_diff": diff}


def book_tester(signals: list[dict], **sets) -> Backtester:
    sets.setdefault("execution__book_sample_ms", 100.0)
    return make_tester(signals, maker=0.0002, taker=0.001, **sets)


# risk sizing: 10000 x 0.0004 / (100.00 - 99.00) = 4 BTC; the first fill's price is the touch
WALK4 = dict(stop_price=99.0)


def test_market_order_walks_three_levels() -> None:
    bt = book_tester([sig(60, 1, **WALK4)], risk__per_trade=0.0004,
                execution__slippage_bps=10.0)  # fixed bps must NOT apply to a book walk
    res = bt.run(trades([(10, 100.0, 1), (60.5, 100.0, 1), (70, 100.2, 5)]), book=book())
    f = res.fills
    # 4 BTC: 1 @ 100.00, 2 @ 100.05, 1 @ 100.10 (the touch outward), all taker
    assert f["price"].to_list() == pytest.approx([100.00, 100.05, 100.10], abs=1e-9)
    assert f["qty"].to_list() == pytest.approx([1.0, 2.0, 1.0], abs=1e-12)
    assert f["liquidity"].to_list() == ["taker"] * 3
    assert f["trade_index"].to_list() == [-1, -1, -1]
    # fees 0.1 % of each level's notional; slippage vs the touch 100.00: 0, 2 x 0.05, 1 x 0.10
    assert f["fee"].to_list() == pytest.approx([0.1, 0.2001, 0.1001], rel=1e-12)
    assert f["slippage"].to_list() == pytest.approx([0.0, 0.1, 0.1], abs=1e-9)
    pos = res.positions[0]
    assert pos.qty == pytest.approx(4.0)
    # average price (100 + 200.10 + 100.10) / 4 = 100.05; fees 0.4002; slippage 0.20
    assert float(f["price"].dot(f["qty"])) / 4.0 == pytest.approx(100.05, abs=1e-12)
    assert float(f["fee"].sum()) == pytest.approx(0.4002, rel=1e-12)
    assert float(f["slippage"].sum()) == pytest.approx(0.20, abs=1e-9)
    # the same order without the book takes the 60.5 s trade at 100.00 + 10 bps
    plain = book_tester([sig(60, 1, **WALK4)], risk__per_trade=0.0004, execution__slippage_bps=10.0)
    pf = plain.run(trades([(10, 100.0, 1), (60.5, 100.0, 1), (70, 100.2, 5)])).fills
    assert pf["price"][0] == pytest.approx(100.1, abs=1e-9)


def test_partial_fill_when_the_visible_depth_runs_out() -> None:
    # 10 BTC wanted (10000 x 0.001 / 1.00), 8 visible: 1 @ 100.00, 2 @ 100.05, 5 @ 100.10;
    # the 2 left take the next trade (70 s, 100.20, 5 BTC) at 100.20 + 10 bps = 100.3002
    bt = book_tester([sig(60, 1, **WALK4)], risk__per_trade=0.001, execution__slippage_bps=10.0)
    res = bt.run(trades([(10, 100.0, 1), (60.5, 100.0, 1), (70, 100.2, 5)]), book=book())
    f = res.fills
    assert f["qty"].to_list() == pytest.approx([1.0, 2.0, 5.0, 2.0], abs=1e-12)
    assert f["price"].to_list() == pytest.approx([100.00, 100.05, 100.10, 100.3002], abs=1e-9)
    assert f["trade_index"].to_list() == [-1, -1, -1, 2]
    assert f["ts"].to_list() == [at(60.5)] * 3 + [at(70)]
    assert f["slippage"][3] == pytest.approx(0.1002 * 2.0, rel=1e-9)
    entry = res.orders.filter(pl.col("purpose") == "entry").row(0, named=True)
    assert entry["status"] == "filled" and entry["filled_qty"] == pytest.approx(10.0)


def test_walk_uses_the_book_at_arrival_not_a_later_one() -> None:
    # the order arrives at 60.2 s (200 ms latency); a diff at 60.3 s empties the 100.00 ask,
    # but that book is after arrival: the walk still starts at 100.00
    bt = book_tester([sig(60, 1, **WALK4)], risk__per_trade=0.0004, execution__latency_ms=200)
    res = bt.run(trades([(10, 100.0, 1), (61, 100.05, 1)]),
                 book=book([(60.3, "ask", 100.00, 0.0)]))
    assert res.fills["price"].to_list() == pytest.approx([100.00, 100.05, 100.10], abs=1e-9)
    # arriving at 60.4 s instead, the book without the 100.00 ask is the one it sees:
    # 4 BTC = 2 @ 100.05 + 2 @ 100.10 (size still 4: per_trade 0.0004 x 10000 / 1.05 -> 3.809)
    bt = book_tester([sig(60, 1, **WALK4)], risk__per_trade=0.0004, execution__latency_ms=400)
    res = bt.run(trades([(10, 100.0, 1), (61, 100.05, 1)]),
                 book=book([(60.3, "ask", 100.00, 0.0)]))
    # size from the touch 100.05: floor(4 / (1.05 x 0.001)) = 3809 lots = 3.809 BTC
    assert res.fills["price"].to_list() == pytest.approx([100.05, 100.10], abs=1e-9)
    assert res.fills["qty"].to_list() == pytest.approx([2.0, 1.809], abs=1e-12)


def limit_sig(price: float) -> dict:
    # stop 1.00 below: size 10000 x 0.0004 / 1.00 = 4 BTC at the limit price
    return sig(60, 1, order_type="limit", limit_price=price, stop_price=price - 1.0)


def test_limit_fills_only_after_the_queue_ahead_is_consumed() -> None:
    # buy limit at 99.95 where 5 BTC rest: trades at 99.95 of 2 + 3 eat the queue, the next
    # 1.5 BTC at 99.95 fills us (maker, 0.02 %), then 2.5 of the following 10
    bt = book_tester([limit_sig(99.95)], risk__per_trade=0.0004)
    res = bt.run(trades([(10, 100.0, 1), (61, 99.95, 2.0), (62, 99.95, 3.0), (63, 99.95, 1.5),
                         (64, 99.95, 10.0)]), book=book())
    f = res.fills
    assert f["ts"].to_list() == [at(63), at(64)]
    assert f["qty"].to_list() == pytest.approx([1.5, 2.5], abs=1e-12)
    assert f["price"].to_list() == pytest.approx([99.95, 99.95], abs=1e-12)
    assert f["liquidity"].to_list() == ["maker", "maker"]
    assert f["fee"].to_list() == pytest.approx([99.95 * 1.5 * 0.0002, 99.95 * 2.5 * 0.0002],
                                               rel=1e-12)
    assert f["slippage"].to_list() == [0.0, 0.0]
    # without the book, limit_fill=touch fills at the first trade at the limit (61 s)
    plain = book_tester([limit_sig(99.95)], risk__per_trade=0.0004, execution__limit_fill="touch")
    pf = plain.run(trades([(10, 100.0, 1), (61, 99.95, 2.0), (62, 99.95, 3.0)])).fills
    assert pf["ts"][0] == at(61)


def test_limit_never_fills_while_the_queue_is_not_cleared() -> None:
    # 2 + 2 of the 5 ahead traded: 1 BTC still ahead of us, nothing through the limit
    bt = book_tester([limit_sig(99.95)], risk__per_trade=0.0004, execution__limit_fill="touch")
    res = bt.run(trades([(10, 100.0, 1), (61, 99.95, 2.0), (62, 99.95, 2.0), (63, 100.0, 3.0)]),
                 book=book())
    assert res.fills.height == 0
    entry = res.orders.filter(pl.col("purpose") == "entry").row(0, named=True)
    assert entry["status"] == "active" and entry["filled_qty"] == 0.0


def test_trade_through_the_limit_fills_whatever_the_queue() -> None:
    # queue 5 untouched, a trade at 99.90 (through 99.95) fills us at the limit, maker
    bt = book_tester([limit_sig(99.95)], risk__per_trade=0.0004)
    res = bt.run(trades([(10, 100.0, 1), (61, 99.95, 1.0), (62, 99.90, 10.0)]), book=book())
    f = res.fills
    assert f["ts"].to_list() == [at(62)]
    assert f["price"].to_list() == pytest.approx([99.95]) and f["qty"][0] == pytest.approx(4.0)
    assert f["liquidity"].to_list() == ["maker"]


def test_limit_inside_the_spread_has_no_queue() -> None:
    # nothing rests at 99.97: the first trade at 99.97 fills us (4 BTC of its 6)
    bt = book_tester([limit_sig(99.97)], risk__per_trade=0.0004)
    res = bt.run(trades([(10, 100.0, 1), (61, 99.97, 6.0)]), book=book())
    assert res.fills["qty"].to_list() == pytest.approx([4.0])
    assert res.fills["liquidity"].to_list() == ["maker"]


# --- the book-imbalance entry filter ---------------------------------------------------------
class OneBreak(OrderFlowStrategy):
    """A hand-made structure: one break of structure in direction ``d`` on the bar ending at
    120 s (everything else the strategy computes as usual)."""

    def __init__(self, params: StrategyParams, tick_size: float, d: int) -> None:
        super().__init__(params, tick_size)
        self.d = d

    def features(self, bars: pl.DataFrame) -> pl.DataFrame:
        brk = pl.when(pl.col("bar_end") == at(120)).then(self.d).otherwise(0)
        return bars.with_columns(brk.alias("break_dir"), pl.lit(0.0).alias("delta_pct"),
                                 pl.lit(1.0).alias("atr"), pl.lit(None, pl.Float64).alias("ob_low"),
                                 pl.lit(None, pl.Float64).alias("ob_high"))


BAR_TRADES = [(10, 100.0, 1), (30, 100.0, 1), (70, 100.0, 1), (100, 100.0, 1), (121, 100.0, 1),
              (150, 100.0, 1), (170, 100.0, 1), (190, 100.0, 1)]
# book: imbalance over 10 levels 0 after the snapshot (8 vs 8); at 119.5 s the 99.90 bid grows
# to 11 -> (16 - 8) / 24 = 1/3; at 120.5 s (after the decision) the 100.10 ask grows to 29 ->
# (16 - 32) / 48 = -1/3
IMB_DIFFS = [(119.5, "bid", 99.90, 11.0), (120.5, "ask", 100.10, 29.0)]


def run_filter(d: int, minimum: float | None, diffs=IMB_DIFFS, with_book: bool = True):
    p = StrategyParams()
    p.entry.book_imbalance_min = minimum
    p.execution.book_sample_ms = 100.0
    p.risk.cooldown_losses = 0
    bt = Backtester(p, ExchangeConfig(fees=FeeSchedule(maker=0.0, taker=0.0)),
                    tick_size=0.01, lot_size=0.001, strategy=OneBreak(p, 0.01, d))
    return bt.run(trades(BAR_TRADES), book=book(diffs) if with_book else None)


def test_book_imbalance_column_is_the_book_at_each_bar_end() -> None:
    res = run_filter(1, None)
    got = dict(zip(res.bars["bar_end"].to_list(), res.bars["book_imbalance"].to_list(),
                   strict=True))
    assert got[at(60)] == pytest.approx(0.0)
    assert got[at(120)] == pytest.approx(1 / 3)
    assert got[at(180)] == pytest.approx(-1 / 3)


@pytest.mark.parametrize("d, minimum, entries", [
    (1, None, 1), (1, 0.3, 1), (1, 0.34, 0),  # long needs imbalance >= min: 1/3
    (-1, 0.3, 0), (-1, -0.4, 1),  # short needs -imbalance >= min: -1/3
])
def test_imbalance_filter_blocks_or_allows_the_entry(d: int, minimum, entries: int) -> None:
    res = run_filter(d, minimum)
    assert res.signals.height == entries
    if entries:
        assert res.signals["ts"].to_list() == [at(120)]
        assert res.signals["action"].to_list() == [d]


def test_no_look_ahead_the_book_after_the_decision_never_counts() -> None:
    # without the 120.5 s diff, or with a wild book after the decision, the 120 s decision and
    # every bar ending before 120.5 s are unchanged
    base = run_filter(1, 0.3)
    for diffs in ([IMB_DIFFS[0]], [IMB_DIFFS[0], (120.5, "ask", 100.05, 500.0),
                                   (121.0, "bid", 99.95, 0.0)]):
        other = run_filter(1, 0.3, diffs)
        assert other.signals.equals(base.signals)
        cut = pl.col("bar_end") <= at(120)
        assert other.bars.filter(cut).equals(base.bars.filter(cut))
    # a diff at exactly the decision time is known at it: the ask grows to 29 at 120 s
    late = run_filter(1, 0.3, [IMB_DIFFS[0], (120.0, "ask", 100.10, 29.0)])
    assert late.signals.height == 0


def test_imbalance_filter_without_book_data_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="book_imbalance_min needs book data"):
        run_filter(1, 0.3, with_book=False)


def test_book_needs_trade_level_mode() -> None:
    bt = book_tester([sig(60, 1, **WALK4)])
    bars = pl.DataFrame({"bar_start": [at(0)], "bar_end": [at(60)], "open": [100.0],
                         "high": [100.0], "low": [100.0], "close": [100.0], "volume": [1.0]})
    with pytest.raises(ConfigError, match="trade-level"):
        bt.run(bars=bars, bars_only=True, book=book())


def test_exit_signal_walks_the_bid_side() -> None:
    # long 4 BTC by the walk above (avg 100.05); the exit decided at 120 s sells into the
    # bids: 4 of the 5 at 99.95, no slippage (all at the touch), taker fee 0.1 %
    bt = book_tester([sig(60, 1, **WALK4), sig(120, 0)], risk__per_trade=0.0004)
    res = bt.run(trades([(10, 100.0, 1), (60.5, 100.0, 1), (121, 100.0, 1)]), book=book())
    exits = res.fills.filter(pl.col("side") == "sell")
    assert exits["price"].to_list() == pytest.approx([99.95])
    assert exits["qty"].to_list() == pytest.approx([4.0])
    t = res.trades.row(0, named=True)
    assert t["entry_price"] == pytest.approx(100.05) and t["exit_price"] == pytest.approx(99.95)
    # pnl = 4 x (99.95 - 100.05) - fees (0.4002 + 99.95 x 4 x 0.001 = 0.3998) = -1.2
    assert t["pnl"] == pytest.approx(-0.4 - 0.4002 - 0.3998, abs=1e-9)
    assert t["slippage"] == pytest.approx(0.2, abs=1e-9)


def test_after_the_book_data_ends_orders_use_the_trade_prices() -> None:
    # the book stops at 50 s: the order reaching the exchange at 60 s takes the 60.5 s trade
    # at 100.00 + 10 bps, as without a book
    bt = book_tester([sig(60, 1, **WALK4)], risk__per_trade=0.0004, execution__slippage_bps=10.0)
    res = bt.run(trades([(10, 100.0, 1), (60.5, 100.0, 5)]), book=book(end=50.0))
    assert res.fills["price"].to_list() == pytest.approx([100.1], abs=1e-9)
    assert res.fills["trade_index"].to_list() == [1]


def test_marketable_limit_walks_up_to_its_price_then_rests() -> None:
    # buy limit 100.05 (stop 99.00 -> 4 BTC sized at the touch 100.00): takes 1 @ 100.00 and
    # 2 @ 100.05 as taker, not 100.10 (beyond the limit); the last 1 BTC rests at 100.05 with
    # nothing ahead and fills (maker) on the 62 s trade at 100.05
    bt = book_tester([sig(60, 1, order_type="limit", limit_price=100.05, stop_price=99.0)],
                     risk__per_trade=0.0004)
    res = bt.run(trades([(10, 100.0, 1), (61, 100.10, 1.0), (62, 100.05, 3.0)]), book=book())
    f = res.fills
    assert f["price"].to_list() == pytest.approx([100.00, 100.05, 100.05], abs=1e-9)
    assert f["qty"].to_list() == pytest.approx([1.0, 2.0, 1.0], abs=1e-12)
    assert f["liquidity"].to_list() == ["taker", "taker", "maker"]
    assert f["ts"].to_list() == [at(61), at(61), at(62)]
    assert f["fee"].to_list() == pytest.approx([0.1, 0.2001, 100.05 * 0.0002], rel=1e-12)
