"""Book mode on the small synthetic market: every book-walk fill is checked against the book
the engine rebuilds independently at the order's arrival (DOMBuilder.book_at), and the
imbalance filter against the engine's own depth series."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.config import ExchangeConfig
from botclave_cli.data.synth import SynthConfig, generate
from botclave_cli.engine.book.dom_builder import DOMBuilder
from botclave_cli.engine.book.stream import BookStream
from botclave_cli.engine.depth.analyzer import DepthAnalyzer, DepthParams
from botclave_cli.strategy.params import StrategyParams


@pytest.fixture(scope="module")
def market():
    m = generate(SynthConfig(trades_per_day=5000, book_interval_ms=1000))
    t = m.truth
    p = StrategyParams()
    p.entry.setups = ["bos", "absorption"]
    p.structure.swing_confirm_bars = t.detector_params["swing_confirm_bars"]
    p.risk.max_daily_loss = p.risk.max_drawdown = 1.0
    p.risk.cooldown_losses = 0
    book = {"book_snapshot": m.book_snapshot, "book_diff": m.book_diff}
    res = Backtester(p, ExchangeConfig(), tick_size=t.tick_size,
                     lot_size=t.lot_size).run(m.trades, book=book)
    return m, p, book, res


def test_walk_fills_match_the_rebuilt_book_at_arrival(market) -> None:
    m, p, _, res = market
    t = m.truth
    stream = BookStream.from_frames(m.book_snapshot, m.book_diff, t.tick_size, t.lot_size)
    walks = res.fills.filter(pl.col("trade_index") == -1)
    assert walks.height > 10  # the run really walked the book
    orders = res.orders.select("order_id", "arrival_ts", "side")
    interval = int(p.execution.book_sample_ms * 1000)
    checked = 0
    reversals = 0
    taken: dict[tuple[int, str, float], float] = {}  # depth earlier orders took from a sample
    for (oid,), grp in walks.group_by("order_id", maintain_order=True):
        o = orders.filter(pl.col("order_id") == oid).row(0, named=True)
        arrival = int(o["arrival_ts"].timestamp() * 1e6 + 0.5)
        sample = (arrival // interval) * interval
        state = DOMBuilder("spot").book_at(stream, sample, depth=20)
        px, qty = ((state.ask_price, state.ask_qty) if o["side"] == "buy"
                   else (state.bid_price, state.bid_qty))
        # what is left of each level once earlier orders in the same sample have walked it
        # (a reversal: the close walks first, the new entry takes the rest, same side)
        left = [(float(a), float(b) - taken.get((sample, o["side"], float(a)), 0.0))
                for a, b in zip(px, qty, strict=True) if b > 0]
        left = [(a, b) for a, b in left if b > 1e-9]
        if left and left[0][1] < qty[0] - 1e-9:
            reversals += 1
        n = grp.height
        assert grp["price"].to_list() == pytest.approx([a for a, _ in left[:n]], abs=1e-9)
        # every level but the last is taken whole; the last at most whole
        assert grp["qty"][:-1].to_list() == pytest.approx([b for _, b in left[:n - 1]],
                                                          abs=1e-9)
        assert grp["qty"][-1] <= left[n - 1][1] + 1e-9
        for a, b in zip(grp["price"], grp["qty"], strict=True):
            taken[(sample, o["side"], a)] = taken.get((sample, o["side"], a), 0.0) + b
        touch = px[0]
        want_slip = float(np.sum(np.abs(grp["price"].to_numpy() - touch) * grp["qty"].to_numpy()))
        assert float(grp["slippage"].sum()) == pytest.approx(want_slip, abs=1e-6)
        checked += 1
    assert checked == walks["order_id"].n_unique()
    assert reversals > 0  # some entries walked what their reversal's close left


def test_imbalance_column_matches_the_engine_depth_series(market) -> None:
    m, p, _, res = market
    t = m.truth
    stream = BookStream.from_frames(m.book_snapshot, m.book_diff, t.tick_size, t.lot_size)
    interval = int(p.execution.book_sample_ms * 1000)
    rep = DOMBuilder("spot").replay(stream, sample_interval_us=interval, sample_depth=20)
    series = DepthAnalyzer(DepthParams(interval_us=interval, levels=10)).series(
        rep.samples_frame())
    want = res.bars.select("bar_end").join(
        series.select(pl.col("ts").alias("bar_end"), "imbalance"), on="bar_end", how="left")
    got = res.bars.select("bar_end", "book_imbalance")
    both = got.join(want, on="bar_end").drop_nulls()
    assert both.height > 1000
    assert np.allclose(both["book_imbalance"], both["imbalance"], atol=1e-12)


def test_imbalance_filter_keeps_exactly_the_agreeing_signals(market) -> None:
    m, p, book, res = market
    t = m.truth
    q = p.model_copy(deep=True)
    q.entry.book_imbalance_min = 0.05
    filt = Backtester(q, ExchangeConfig(), tick_size=t.tick_size,
                      lot_size=t.lot_size).run(m.trades, book=book)
    imb = res.bars.select(pl.col("bar_end").alias("ts"), "book_imbalance")
    want = (res.signals.join(imb, on="ts", how="left")
            .filter((pl.col("book_imbalance") * pl.col("action")) >= 0.05))
    assert 0 < filt.signals.height < res.signals.height
    assert filt.signals.select("ts", "action", "setup").equals(
        want.select("ts", "action", "setup"))
