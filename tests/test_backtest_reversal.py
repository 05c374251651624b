"""Reversals: an entry signal against an open position closes it first, and the new entry is
sized from the equity and limits left after the close (numbers worked out in the comments).

Common setup (tests/test_backtest_fills.py's make_tester): 10,000 equity, tick 0.01, lot 0.001
BTC, no latency, no slippage, taker fee 0.1 %, max_position 0.45 x equity, risk 1 % per trade.

The first position, long at 100.30 with its stop at 99.00: the risk rule asks for
100 / 1.30 = 76.923 BTC, but max_position allows floor(4500 / 0.1003) = 44,865 lots
= 44.865 BTC (notional 4499.9595, fee 4.4999595): cash 5495.5405405.
The price then rises to 103.30, where that position is worth 4634.5545 > 0.45 x equity: counted
against max_position, it would leave no room at all for the reversal's new entry (the bug:
``size_below_lot``).
"""

from __future__ import annotations

import polars as pl
import pytest

from tests.test_backtest_fills import at, make_tester, sig, trades

LONG = dict(stop_price=99.0, target_price=110.0)  # the target puts a resting TP order in play
BASE = dict(taker=0.001, risk__max_position=0.45)
# closing 44.865 BTC at 103.30: +4634.5545 - fee 4.6345545 -> cash 10125.460486 (flat)
CASH_AFTER_CLOSE = 10125.460486


def entries(res) -> pl.DataFrame:
    return res.orders.filter(pl.col("purpose") == "entry")


def test_reversal_closes_first_then_sizes_the_new_entry_from_the_equity_after_the_close() -> None:
    bt = make_tester([sig(60, 1, **LONG), sig(120, -1, stop_price=106.0)], **BASE)
    res = bt.run(trades([(0, 100.3, 1), (60.1, 100.3, 1000), (90, 101.0, 1),
                         (120.1, 103.3, 1000), (150, 103.0, 1)]))
    first = res.trades.row(0, named=True)
    assert (first["side"], first["exit_reason"]) == ("long", "signal_exit")
    assert first["qty"] == pytest.approx(44.865)
    # pnl = 44.865 x 3.00 - 4.4999595 - 4.6345545
    assert first["pnl"] == pytest.approx(125.460486, abs=1e-9)
    # short, stop 106.00 at 103.30: risk 101.25460486 / 2.70 = 37.501 BTC (37,501.7 lots);
    # room after the close: floor(0.45 x 10125.460486 / 0.1033) = 44,108 lots
    e = entries(res)
    assert e["status"].to_list() == ["filled", "filled"]
    assert e["qty"][1] == pytest.approx(37.501, abs=1e-12)
    # one trade, close first: the sell that closes, then the sell that opens
    f = res.fills
    assert f["ts"].to_list() == [at(60.1), at(120.1), at(120.1)]
    assert f["qty"].to_list() == pytest.approx([44.865, 44.865, 37.501], abs=1e-12)
    assert f["fee"][2] == pytest.approx(37.501 * 103.3 * 0.001, rel=1e-12)
    # final: cash after the close - entry fee 3.8738533 + 37.501 x (103.30 - 103.00)
    assert res.final_equity == pytest.approx(10132.8369327, abs=1e-7)
    assert res.open_positions == 1 and res.positions[0].side == "short"


def test_reversal_entry_is_capped_by_max_position_measured_after_the_close() -> None:
    # stop 104.80: risk would be 101.25460486 / 1.50 = 67.503 BTC; the room after the close,
    # 44,108 lots, binds
    bt = make_tester([sig(60, 1, **LONG), sig(120, -1, stop_price=104.8)], **BASE)
    res = bt.run(trades([(0, 100.3, 1), (60.1, 100.3, 1000), (120.1, 103.3, 1000),
                         (150, 103.0, 1)]))
    e = entries(res)
    assert e["status"].to_list() == ["filled", "filled"]
    assert e["qty"][1] == pytest.approx(44.108, abs=1e-12)
    assert 44.108 * 103.3 <= 0.45 * CASH_AFTER_CLOSE < 44.109 * 103.3


def test_max_position_taken_by_open_positions_rejects_a_same_side_entry() -> None:
    # max_concurrent 2: a second long while the first holds 4499.9595 of notional; equity is
    # 10000 - 4.4999595, 0.45 x 9995.5000405 = 4497.975 < 4499.9595: no lot of room
    bt = make_tester([sig(60, 1, **LONG), sig(120, 1, stop_price=99.0)],
                     risk__max_concurrent=2, **BASE)
    res = bt.run(trades([(0, 100.3, 1), (60.1, 100.3, 1000), (120.1, 100.3, 1000),
                         (150, 100.3, 1)]))
    e = entries(res)
    assert e["status"].to_list() == ["filled", "rejected"]
    assert e["reject_reason"].to_list() == ["", "max_position"]
    assert e["done_ts"][1] == at(120.1)  # refused when it would have been sized


def test_an_entry_smaller_than_a_lot_is_still_size_below_lot() -> None:
    # risk 0.0001 % of 10000 = 0.01 over a 50.30 stop distance = 0.000199 BTC: 0.2 of a lot
    bt = make_tester([sig(60, 1, stop_price=50.0)], risk__per_trade=1e-6, **BASE)
    res = bt.run(trades([(0, 100.3, 1), (60.1, 100.3, 1000)]))
    assert entries(res)["reject_reason"].to_list() == ["size_below_lot"]


def test_reversal_entry_waits_while_the_close_fills_partially() -> None:
    # participation 50 %: each 20 BTC trade lets us take 10 BTC. The close (44.865 BTC) takes
    # the 103.30, 103.40, 103.50 and 103.60 trades (10 each) and 4.865 of the 103.70 one;
    # the new short waits and starts on the 103.70 trade's remaining 5.135 BTC
    bt = make_tester([sig(60, 1, **LONG), sig(120, -1, stop_price=106.0)],
                     execution__participation=0.5, **BASE)
    res = bt.run(trades([(0, 100.3, 1), (60.1, 100.3, 200), (120.1, 103.3, 20),
                         (120.2, 103.4, 20), (120.3, 103.5, 20), (120.4, 103.6, 20),
                         (120.5, 103.7, 20), (120.6, 103.8, 20), (120.7, 103.9, 200)]))
    f = res.fills.filter(pl.col("ts") >= at(120))
    closing = f.filter(pl.col("order_id") == 2)  # 0 entry, 1 target, 2 close, 3 new entry
    opening = f.filter(pl.col("order_id") == 3)
    assert closing["price"].to_list() == pytest.approx([103.3, 103.4, 103.5, 103.6, 103.7])
    assert closing["qty"].to_list() == pytest.approx([10, 10, 10, 10, 4.865], abs=1e-12)
    # cash after the close: 5495.5405405 + 4138 x 0.999 (10 BTC at each of 103.30 .. 103.60)
    # + 504.5005 x 0.999 (4.865 at 103.70) = 5495.5405405 + 4133.862 + 503.9959995
    # = 10133.39854, the equity at sizing (flat); stop 106.00 at 103.70: 2.30 of risk per BTC
    # -> floor(101.3339854 / 0.0023) = 44,058 lots; room floor(4560.029343 / 0.1037) = 43,973
    assert opening["ts"][0] == at(120.5)
    assert opening["qty"].to_list() == pytest.approx([5.135, 10, 28.838], abs=1e-12)
    assert opening["price"].to_list() == pytest.approx([103.7, 103.8, 103.9])
    assert entries(res)["qty"][1] == pytest.approx(43.973, abs=1e-12)


def test_reversal_drops_an_opposite_entry_that_has_not_filled() -> None:
    # a long limit at 99.00 rests (never traded through); the short signal reverses the view:
    # the resting long is cancelled, the short fills
    bt = make_tester([sig(60, 1, order_type="limit", limit_price=99.0, stop_price=98.0),
                      sig(120, -1, stop_price=104.0)], **BASE)
    res = bt.run(trades([(0, 100.3, 1), (60.1, 100.3, 1000), (120.1, 100.3, 1000),
                         (150, 98.5, 1000)]))
    e = entries(res)
    assert e["status"].to_list() == ["cancelled", "filled"]
    assert e["done_ts"][0] == at(120)
    # only the short's fill: the 98.50 print would have filled the long limit (both sides)
    assert res.fills["order_id"].to_list() == [e["order_id"][1]]
    assert res.fills["qty"][0] == pytest.approx(27.027, abs=1e-12)  # 100 / 3.70 risk


def test_bars_only_reversal_closes_and_reopens_at_the_same_open() -> None:
    # bars-only: the short decided at the 2nd bar's end fills at the 3rd bar's open, as the
    # close does (backtesting.py's position.close() then sell()); equity_fraction 0.4, no fees
    from tests.test_backtest_crosscheck import make_bars

    bars = make_bars(5, 4).with_columns(open=pl.Series([100.0, 101.0, 104.0, 103.0]),
                                        high=pl.Series([101.5, 104.5, 105.0, 104.0]),
                                        low=pl.Series([99.5, 100.5, 102.5, 101.0]),
                                        close=pl.Series([101.0, 104.0, 103.0, 102.0]))
    bt = make_tester([sig(60, 1, target_price=110.0), sig(120, -1)], risk__sizing="equity_fraction",
                     risk__fraction=0.4, risk__max_position=0.45)
    res = bt.run(bars=bars, bars_only=True)
    # long 4000 / 101.00 = 39.603 BTC at the 2nd bar's open; closed at 104.00 (+118.809);
    # equity 10118.809 -> short floor(4047.5236 / 0.104) = 38,918 lots = 38.918 BTC at 104.00
    f = res.fills
    assert f["price"].to_list() == pytest.approx([101.0, 104.0, 104.0])
    assert f["qty"].to_list() == pytest.approx([39.603, 39.603, 38.918], abs=1e-12)
    assert res.trades["pnl"][0] == pytest.approx(39.603 * 3.0)


def test_book_reversal_entry_walks_what_the_close_left_of_the_same_book() -> None:
    from tests.test_backtest_book import book, book_tester

    # book (tests/test_backtest_book.py): asks 100.00 x1, 100.05 x2, 100.10 x5; bids 99.95 x5,
    # 99.90 x3. Short 1.904 BTC at 60 s (risk 2.00 / 1.05 from the 99.95 touch) walks 99.95.
    # The long at 120 s: the close buys 1 @ 100.00 + 0.904 @ 100.05; cash 10190.1144952
    # - 190.4452 - fee 0.1904452 = 9999.47885; the entry is sized from the next level it can
    # take, 100.05: floor(1.9998958 / 1.05 / 0.001) = 1904 lots, 1.096 @ 100.05 (what the close
    # left) + 0.808 @ 100.10; slippage from the sample's touch 100.00
    bt = book_tester([sig(60, -1, stop_price=101.0), sig(120, 1, stop_price=99.0)],
                     risk__per_trade=0.0002)
    res = bt.run(trades([(10, 100.0, 1), (60.5, 99.95, 1), (120.5, 100.0, 1), (140, 100.0, 1)]),
                 book=book())
    f = res.fills
    assert f["order_id"].to_list() == [0, 1, 1, 2, 2]  # short, close x2, new long x2
    assert f["price"].to_list() == pytest.approx([99.95, 100.0, 100.05, 100.05, 100.10])
    assert f["qty"].to_list() == pytest.approx([1.904, 1.0, 0.904, 1.096, 0.808], abs=1e-12)
    assert f["trade_index"].to_list() == [-1] * 5
    assert f["slippage"][3:].to_list() == pytest.approx([1.096 * 0.05, 0.808 * 0.10], abs=1e-9)


def test_book_reversal_entry_that_waited_walks_the_book_when_the_close_is_done() -> None:
    from tests.test_backtest_book import book, book_tester

    # the 100.10 ask is gone from 100 s to 125 s. Short 6.666 BTC at 60 s (risk 2.00 / 0.30
    # from 99.95): 5 @ 99.95 + 1.666 @ 99.90, cash 10665.5172166. The close at 120 s finds
    # 3 BTC of asks (1 @ 100.00, 2 @ 100.05) and buys the other 3.666 on the 130 s trade at
    # 100.20: cash 10665.5172166 - 667.4332 - 0.6674332 = 9997.4165834. The long waited; it
    # walks the book as of 130 s (100.10 back, nothing of ours taken from that sample):
    # floor(1.9994833 / 1.00 / 0.001) = 1999 lots: 1 @ 100.00 + 0.999 @ 100.05
    bt = book_tester([sig(60, -1, stop_price=100.25), sig(120, 1, stop_price=99.0)],
                     risk__per_trade=0.0002)
    res = bt.run(trades([(10, 100.0, 1), (60.5, 99.95, 1), (120.5, 100.0, 1),
                         (130, 100.2, 10), (140, 100.1, 1)]),
                 book=book([(100, "ask", 100.10, 0.0), (125, "ask", 100.10, 5.0)]))
    f = res.fills
    assert f["order_id"].to_list() == [0, 0, 1, 1, 1, 2, 2]
    assert f["qty"].to_list() == pytest.approx([5, 1.666, 1, 2, 3.666, 1, 0.999], abs=1e-12)
    assert f["price"].to_list() == pytest.approx([99.95, 99.90, 100.0, 100.05, 100.2, 100.0,
                                                  100.05])
    assert f["ts"].to_list() == [at(60.5)] * 2 + [at(120.5)] * 2 + [at(130)] * 3
    assert f["trade_index"].to_list() == [-1, -1, -1, -1, 3, -1, -1]
    assert res.trades["pnl"][0] == pytest.approx(666.1834 - 667.4332 - 0.6661834 - 0.6674332,
                                                 abs=1e-9)
