"""Queue models of book mode (``execution.queue_model``): ``risk_averse`` (only trades at the
price move a resting limit up; the queue ahead is capped at the level's size, hftbacktest's
RiskAdverseQueueModel) and ``prob_power`` (hftbacktest's ProbQueueModel with
PowerProbQueueFunc: part of a fall of the level that trades do not explain is ahead of us).
Every expected number is worked out by hand in the comments (tick 0.01, lot 0.001 -> 1 BTC =
1000 lots, latency 0, book sampled every 100 ms; the book of test_backtest_book: bids 99.95 x5,
99.90 x3)."""

from __future__ import annotations

import pytest

from botclave_cli.config import load_model
from botclave_cli.errors import ConfigError
from botclave_cli.execution.queue import prob_queue_front
from tests.test_backtest_book import book, book_tester, limit_sig
from tests.test_backtest_fills import at, sig, trades


# --- the update rule itself (lots) -------------------------------------------------------------
def test_brief_example_ten_ahead_thirty_behind() -> None:
    # 10 ahead, 30 behind (level 40); 5 trade at the price (ahead 10 -> 5), then the level is
    # seen at 20: a fall of 20, 5 of it the trade, chg = 40 - 20 - 5 = 15 unexplained.
    # risk_averse: the 15 are all behind us -> ahead 5 (the level, 20, holds the 5).
    # prob_power n=2: front 5, back = 40 - 5 traded - 5 front = 30;
    #   p(behind) = 30^2 / (30^2 + 5^2) = 900 / 925 = 36/37; ahead loses (1 - 36/37) x 15 = 15/37;
    #   back - p x chg = 30 - 540/37 > 0 (the back can hold its share) -> 5 - 15/37 = 170/37
    #   = 4.5946; under the new size 20 -> 170/37.
    assert prob_queue_front(5.0, 40.0, 20.0, 5.0, 2.0) == pytest.approx(170 / 37, rel=1e-12)
    # n=1: p = 30/35 = 6/7, ahead loses 15/7 -> 5 - 15/7 = 20/7
    assert prob_queue_front(5.0, 40.0, 20.0, 5.0, 1.0) == pytest.approx(20 / 7, rel=1e-12)
    # hftbacktest's literal back = prev - front = 35 would give p = 1225/1250 and 5 - 0.3 = 4.7;
    # we do not count the 5 traded lots as behind us
    assert prob_queue_front(5.0, 40.0, 20.0, 5.0, 2.0) != pytest.approx(4.7)


def test_increase_and_overflowing_cancellations() -> None:
    # the level grew (40 -> 50, 5 traded: chg = -15): the front stays 5
    assert prob_queue_front(5.0, 40.0, 50.0, 5.0, 2.0) == 5.0
    # the fall is exactly the trades (40 -> 35, 5 traded): nothing unexplained
    assert prob_queue_front(5.0, 40.0, 35.0, 5.0, 2.0) == 5.0
    # front 5, back 10 (level 15) falls to 0 with no trade: chg 15, p = 100/125 = 0.8;
    # 5 - 0.2 x 15 + min(10 - 0.8 x 15, 0) = 5 - 3 - 2 = 0 (the back could not hold 12)
    assert prob_queue_front(5.0, 15.0, 0.0, 0.0, 2.0) == pytest.approx(0.0, abs=1e-12)
    # front 30, back 10 falls 40 -> 25: chg 15, p = 100/1000 = 0.1: 30 - 0.9 x 15 = 16.5
    assert prob_queue_front(30.0, 40.0, 25.0, 0.0, 2.0) == pytest.approx(16.5, rel=1e-12)
    # ... and falls 40 -> 12: chg 28: 30 - 25.2 = 4.8 (p x chg = 2.8 fits the back)
    assert prob_queue_front(30.0, 40.0, 12.0, 0.0, 2.0) == pytest.approx(4.8, rel=1e-12)
    # at the front already (front 0): every cancellation is behind us
    assert prob_queue_front(0.0, 40.0, 10.0, 0.0, 2.0) == 0.0
    # the front never exceeds the level's new size: front 8 of 10, 10 -> 3 with 0 traded:
    # chg 7, back 2, p = 4/68; 8 - (64/68) x 7 + min(2 - (4/68) x 7, 0) = 1.4118 -> under 3
    assert prob_queue_front(8.0, 10.0, 3.0, 0.0, 2.0) == pytest.approx(8 - 64 / 68 * 7, rel=1e-12)


# --- in the kernel, on a scripted book -----------------------------------------------------------
def run(model: str | None, diffs, tape, price: float = 99.95, **sets):
    if model is not None:
        sets["execution__queue_model"] = model
    bt = book_tester([limit_sig(price)], risk__per_trade=0.0004, **sets)
    return bt.run(trades(tape), book=book(diffs))


# buy limit at 99.90 (4 BTC: 10000 x 0.0004 / 1.00): the level is raised to 10 at 59 s (10 ahead
# at arrival, 60 s), to 40 at 61 s (30 behind us); 5 trade at 99.90 at 62 s; at 62.5 s the level
# shows 20 (a fall of 20 of which 5 are the trade); then 5 more trade at 64 s and 10 at 65 s
BRIEF_DIFFS = [(59.0, "bid", 99.90, 10.0), (61.0, "bid", 99.90, 40.0),
               (62.5, "bid", 99.90, 20.0)]
BRIEF_TAPE = [(10, 100.0, 1), (62, 99.90, 5.0), (64, 99.90, 5.0), (65, 99.90, 10.0)]


def test_brief_example_in_the_kernel() -> None:
    # risk_averse: ahead 10000 lots -> 5000 after 62 s -> 0 after 64 s (no fill: the trade is
    # all queue) -> the 65 s trade fills all 4 BTC
    ra = run("risk_averse", BRIEF_DIFFS, BRIEF_TAPE, price=99.90).fills
    assert ra["ts"].to_list() == [at(65)]
    assert ra["qty"].to_list() == pytest.approx([4.0], abs=1e-12)
    # prob_power n=2: the 61 s sample grows the level (front stays 10000); the 62 s trade eats
    # 5000 (front 5000, 5000 traded; the samples up to 62.4 s still show 40000: no change, the
    # trade keeps counting); the 62.5 s sample: 40000 -> 20000 with 5000 traded: as in the rule
    # above x 1000, front = 5000 - 15000/37 = 4594.59 lots. The 64 s
    # trade of 5000 eats 4594.59; the rest 405.41 fills floor = 405 lots = 0.405 BTC (maker at
    # 99.90); the 65 s trade fills the other 3.595
    pp = run("prob_power", BRIEF_DIFFS, BRIEF_TAPE, price=99.90).fills
    assert pp["ts"].to_list() == [at(64), at(65)]
    assert pp["qty"].to_list() == pytest.approx([0.405, 3.595], abs=1e-12)
    assert pp["price"].to_list() == pytest.approx([99.90, 99.90], abs=1e-12)
    assert pp["liquidity"].to_list() == ["maker", "maker"]


# buy limit at 99.95 (5 BTC rest there at arrival, all ahead of us); 2 BTC join behind us at
# 61 s (level 7), then 5 BTC are cancelled at 62 s (level 2, no trade): which 5?
CANCEL_DIFFS = [(61.0, "bid", 99.95, 7.0), (62.0, "bid", 99.95, 2.0)]
CANCEL_TAPE = [(10, 100.0, 1), (63, 99.95, 2.0), (64, 99.95, 3.0), (65, 99.95, 10.0)]


def test_cancellations_ahead_fill_us_earlier_under_prob_power() -> None:
    # risk_averse: the cancellations are taken to be behind us as far as the level allows:
    # ahead 5000 lots, but at 62 s only 2000 rest at 99.95, so at most 2000 are ahead of us
    # (capped: min(5000, 2000) = 2000; before the cap we waited behind 5000 and 65 s filled
    # all 4 BTC). 63 s, 2000 at 99.95: all queue, nothing for us; 64 s, 3000: nothing ahead,
    # 3 BTC fill (maker at 99.95); 65 s fills the last 1 BTC
    ra = run("risk_averse", CANCEL_DIFFS, CANCEL_TAPE).fills
    assert ra["ts"].to_list() == [at(64), at(65)]
    assert ra["qty"].to_list() == pytest.approx([3.0, 1.0], abs=1e-12)
    assert ra["liquidity"].to_list() == ["maker", "maker"]
    # prob_power n=2: 61 s: 5000 -> 7000 (growth, front 5000); 62 s: 7000 -> 2000, 0 traded:
    # chg 5000, front 5000, back 2000, p(behind) = 2000^2 / (2000^2 + 5000^2) = 4/29;
    # ahead loses 25/29 x 5000 = 4310.34; back - p x chg = 2000 - 689.66 >= 0 ->
    # front = 5000 x 4/29 = 689.655 lots (under the new size 2000).
    # 63 s, 2000 at 99.95: 689.655 ahead, the rest 1310.34 -> 1310 lots = 1.310 BTC for us;
    # 64 s, 3000: nothing ahead, the remaining 2.690 BTC fill
    pp = run("prob_power", CANCEL_DIFFS, CANCEL_TAPE).fills
    assert pp["ts"].to_list() == [at(63), at(64)]
    assert pp["qty"].to_list() == pytest.approx([1.310, 2.690], abs=1e-12)
    assert pp["liquidity"].to_list() == ["maker", "maker"]
    assert pp["fee"].to_list() == pytest.approx([99.95 * 1.310 * 0.0002,
                                                 99.95 * 2.690 * 0.0002], rel=1e-12)
    # a larger power puts the cancellations even more on the longer side (ahead, 5000 vs 2000):
    # n=4: p = 16/641 -> front = 5000 x 16/641 = 124.80; 63 s fills floor(1875.20) = 1875 lots
    p4 = run("prob_power", CANCEL_DIFFS, CANCEL_TAPE, execution__queue_power=4.0).fills
    assert p4["qty"].to_list() == pytest.approx([1.875, 2.125], abs=1e-12)


# buy limit at 99.90 (4 BTC): 10 BTC rest there at arrival (59 s), 30 join behind us at 61 s
# (level 40), then at 62 s the level shows 6 with nothing traded at 99.90
CAP_DIFFS = [(59.0, "bid", 99.90, 10.0), (61.0, "bid", 99.90, 40.0), (62.0, "bid", 99.90, 6.0)]
CAP_TAPE = [(10, 100.0, 1), (63, 99.90, 6.0), (64, 99.90, 5.0)]


def test_risk_averse_caps_the_queue_at_the_level_size() -> None:
    # risk_averse: ahead 10000 lots at arrival; the 61 s growth is behind us (ahead 10000); at
    # 62 s only 6000 lots rest at 99.90, so at most 6000 can be ahead of us: ahead
    # min(10000, 6000) = 6000 (before the cap: still 10000, more than the level holds).
    # 63 s: 6000 trade at 99.90, all queue (ahead 0, no fill: the 6000 are the whole level);
    # 64 s: 5000 trade, nothing ahead: we fill min(4000, 5000) = 4000 lots = all 4 BTC, maker
    # at 99.90 (fee 99.90 x 4 x 0.0002). Uncapped it would be 10000 - 6000 = 4000 ahead at
    # 64 s and only 1 BTC of the 5 for us.
    ra = run("risk_averse", CAP_DIFFS, CAP_TAPE, price=99.90).fills
    assert ra["ts"].to_list() == [at(64)]
    assert ra["qty"].to_list() == pytest.approx([4.0], abs=1e-12)
    assert ra["price"].to_list() == pytest.approx([99.90], abs=1e-12)
    assert ra["liquidity"].to_list() == ["maker"]
    assert ra["fee"].to_list() == pytest.approx([99.90 * 4.0 * 0.0002], rel=1e-12)
    # prob_power n=2 reaches the same 6000: 40000 -> 6000, 0 traded: chg 34000, front 10000,
    # back 30000, p = 9e8 / (9e8 + 1e8) = 0.9; 10000 - 0.1 x 34000 + min(30000 - 30600, 0)
    # = 10000 - 3400 - 600 = 6000 (the back cannot hold its 30600), under the new size 6000
    assert prob_queue_front(10000.0, 40000.0, 6000.0, 0.0, 2.0) == pytest.approx(6000.0)
    pp = run("prob_power", CAP_DIFFS, CAP_TAPE, price=99.90).fills
    assert pp.equals(ra)
    # the level emptied (qty 0 at 62 s; 99.90 is inside the listed bids, so nothing rests
    # there): nothing is ahead, and the 6000 at 63 s fill all 4 BTC at once
    gone = run("risk_averse", [*CAP_DIFFS[:2], (62.0, "bid", 99.90, 0.0)], CAP_TAPE,
               price=99.90).fills
    assert gone["ts"].to_list() == [at(63)]
    assert gone["qty"].to_list() == pytest.approx([4.0], abs=1e-12)


def test_prob_power_equals_risk_averse_when_nothing_is_cancelled() -> None:
    # the book of test_limit_fills_only_after_the_queue_ahead_is_consumed (no diff at 99.95):
    # only trades move the queue, both models fill 1.5 at 63 s and 2.5 at 64 s
    tape = [(10, 100.0, 1), (61, 99.95, 2.0), (62, 99.95, 3.0), (63, 99.95, 1.5),
            (64, 99.95, 10.0)]
    ra = run(None, [], tape).fills
    pp = run("prob_power", [], tape).fills
    assert ra["qty"].to_list() == pytest.approx([1.5, 2.5], abs=1e-12)
    assert pp.equals(ra)
    # growth behind us at 61.5 s changes nothing either
    grow = run("prob_power", [(61.5, "bid", 99.95, 9.0)], tape).fills
    assert grow.equals(ra)


def test_risk_averse_is_the_default() -> None:
    default = run(None, CANCEL_DIFFS, CANCEL_TAPE)
    explicit = run("risk_averse", CANCEL_DIFFS, CANCEL_TAPE)
    for name in ("fills", "orders", "trades", "equity"):
        assert getattr(default, name).equals(getattr(explicit, name))


def test_without_a_book_the_queue_model_does_nothing() -> None:
    tape = [(10, 100.0, 1), (61, 99.95, 2.0), (62, 99.94, 3.0)]
    plain = book_tester([limit_sig(99.95)], risk__per_trade=0.0004)
    prob = book_tester([limit_sig(99.95)], risk__per_trade=0.0004,
                       execution__queue_model="prob_power")
    a, b = plain.run(trades(tape)).fills, prob.run(trades(tape)).fills
    assert a.height == 1 and a.equals(b)


def test_queue_model_config_is_checked(tmp_path) -> None:
    from botclave_cli.strategy.params import StrategyParams

    bad = tmp_path / "s.yaml"
    bad.write_text("execution:\n  queue_model: optimistic\n")
    with pytest.raises(ConfigError, match="queue_model"):
        load_model(bad, StrategyParams)
    bad.write_text("execution:\n  queue_power: 0\n")
    with pytest.raises(ConfigError, match="queue_power"):
        load_model(bad, StrategyParams)
    ok = tmp_path / "ok.yaml"
    ok.write_text("execution:\n  queue_model: prob_power\n  queue_power: 3\n")
    p = load_model(ok, StrategyParams)
    assert (p.execution.queue_model, p.execution.queue_power) == ("prob_power", 3.0)


def test_level_size_known_only_inside_the_visible_depth() -> None:
    import numpy as np

    from botclave_cli.execution.queue import level_qty as _level_qty

    # depth 3: bids 100, 99, 97 (ticks) with 5, 6, 7 lots; asks 101, 102 and one empty slot
    bpx, bq = np.array([[100, 99, 97]]), np.array([[5, 6, 7]])
    apx, aq = np.array([[101, 102, 0]]), np.array([[1, 2, 0]])
    assert _level_qty(bpx, bq, 0, 99, 1) == 6
    assert _level_qty(bpx, bq, 0, 98, 1) == 0  # between listed levels: nothing rests there
    assert _level_qty(bpx, bq, 0, 101, 1) == 0  # above the best bid
    assert _level_qty(bpx, bq, 0, 96, 1) == -1  # beyond the visible depth: unknown
    assert _level_qty(apx, aq, 0, 105, -1) == 0  # the ask side lists fewer levels: all of it
    assert _level_qty(apx, aq, 0, 102, -1) == 2


def test_risk_averse_cap_on_the_ask_side() -> None:
    # sell limit at 100.10 (stop 101.10: 10000 x 0.0004 / 1.00 = 4 BTC) behind the 5 BTC resting
    # there; at 62 s the level shows 2 with nothing traded: ahead min(5000, 2000) = 2000 lots.
    # 63 s: 2000 trade at 100.10, all queue; 64 s: 3000, nothing ahead: 3 BTC fill (maker at
    # 100.10); 65 s fills the last 1 BTC. Uncapped: 5000 ahead, 63 s + 64 s eat it all and
    # 65 s fills the 4 BTC.
    bt = book_tester([sig(60, -1, order_type="limit", limit_price=100.10, stop_price=101.10)],
                     risk__per_trade=0.0004)
    f = bt.run(trades([(10, 100.0, 1), (63, 100.10, 2.0), (64, 100.10, 3.0),
                       (65, 100.10, 5.0)]), book=book([(62.0, "ask", 100.10, 2.0)])).fills
    assert f["ts"].to_list() == [at(64), at(65)]
    assert f["qty"].to_list() == pytest.approx([3.0, 1.0], abs=1e-12)
    assert f["price"].to_list() == pytest.approx([100.10, 100.10], abs=1e-12)
    assert f["liquidity"].to_list() == ["maker", "maker"]
