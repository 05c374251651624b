"""OrderFlowStrategy on the synthetic market: the planted break of structure, its order block
and the absorption zones produce the expected signals (time, direction, stop), none of them
inside the quiet stretches, and the backtest trades them."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.config import ExchangeConfig
from botclave_cli.data.synth import SynthConfig, generate
from botclave_cli.strategy.params import StrategyParams
from botclave_cli.strategy.structure import market_structure


def utc(us: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(us / 1e6, tz=dt.UTC)


@pytest.fixture(scope="module")
def run():
    market = generate(SynthConfig())
    truth = market.truth
    p = StrategyParams()
    p.entry.setups = ["bos", "absorption"]
    p.structure.swing_confirm_bars = truth.detector_params["swing_confirm_bars"]
    p.orderflow.absorption_max_through_ticks = truth.detector_params["absorption_max_break_ticks"]
    p.risk.max_daily_loss = p.risk.max_drawdown = 1.0
    p.risk.cooldown_losses = 0
    tester = Backtester(p, ExchangeConfig(), tick_size=truth.tick_size, lot_size=truth.lot_size)
    return market, truth, p, tester.run(market.trades)


@pytest.mark.parametrize("kind, action", [("bearish", -1), ("bullish", 1)])
def test_planted_break_of_structure_and_order_block(run, kind: str, action: int) -> None:
    market, truth, p, res = run
    bos = next(e for e in truth.events_of("break_of_structure") if e.side == kind)
    ob = next(e for e in truth.events_of("order_block") if e.side == kind)
    # the structure sees a change of character at the planted bar, with the planted block
    s = market_structure(res.bars, p.structure, truth.tick_size)
    bar = s.filter(pl.col("bar_end") == utc(bos.end_us)).row(0, named=True)
    assert bar["break_dir"] == action and bar["break_kind"] == "CHoCH"
    assert bar["ob_low"] == pytest.approx(ob.price_low)
    assert bar["ob_high"] == pytest.approx(ob.price_high)
    assert bar["bar_start"] == utc(ob.end_us)  # the block is the bar just before the break
    # -> a signal decided at the close of the breaking bar, stop beyond the block's far edge
    sig = res.signals.filter((pl.col("setup") == "bos") & (pl.col("ts") == utc(bos.end_us)))
    assert sig.height == 1 and sig["action"][0] == action
    buffer = p.stop.buffer_ticks * truth.tick_size
    far_edge = ob.price_high + buffer if action == -1 else ob.price_low - buffer
    assert sig["stop_price"][0] == pytest.approx(far_edge)
    # ... that the engine executes after the latency
    entry = res.orders.filter(pl.col("signal_id") == sig["signal_id"][0]).row(0, named=True)
    assert entry["status"] == "filled"
    assert entry["arrival_ts"] == utc(bos.end_us) + dt.timedelta(milliseconds=50)


@pytest.mark.parametrize("side, action", [("bid", 1), ("ask", -1)])
def test_planted_absorption(run, side: str, action: int) -> None:
    market, truth, p, res = run
    ev = next(e for e in truth.events_of("absorption") if e.side == side)
    sig = res.signals.filter(pl.col("setup") == "absorption")
    # known at the close of the first bar the absorption shows in, judged on earlier bars only
    first_bar_end = utc(ev.start_us) + dt.timedelta(minutes=1)
    hit = sig.filter(pl.col("ts") == first_bar_end)
    assert hit.height == 1 and hit["action"][0] == action
    buffer = p.stop.buffer_ticks * truth.tick_size
    level = ev.price_low if side == "bid" else ev.price_high
    assert hit["stop_price"][0] == pytest.approx(level - action * buffer)
    # the only absorption signals are the planted ones
    assert sig.height == len(truth.events_of("absorption"))


@pytest.mark.parametrize("kind, setup", [("break_of_structure", "bos"),
                                         ("absorption", "absorption")])
def test_no_signal_in_quiet_stretches(run, kind: str, setup: str) -> None:
    market, truth, p, res = run
    quiet = truth.quiet_of(kind)
    assert quiet
    ts = res.signals.filter(pl.col("setup") == setup)["ts"].to_list()
    for q in quiet:
        inside = [t for t in ts if utc(q.start_us) <= t < utc(q.end_us)]
        assert not inside, f"{setup} signal at {inside[0]} inside quiet {q}"


def test_footprint_filters_and_poc_target(run) -> None:
    from botclave_cli.strategy.bars import bars_from_trades
    from botclave_cli.strategy.strategy import OrderFlowStrategy

    market, truth, p, _ = run
    plain = p.model_copy(deep=True)
    plain.entry.setups = ["bos"]
    strict = plain.model_copy(deep=True)
    strict.entry.stacked_imbalance = True
    strict.target.mode = "poc"
    bars = bars_from_trades(market.trades, "1m")
    strat = OrderFlowStrategy(strict, truth.tick_size)
    feats = strat.enrich(bars, market.trades)
    # the planted stacked bars carry their stack on the right bar
    for kind, col in (("stacked_imbalance_buy", "stacked_buy_count"),
                      ("stacked_imbalance_sell", "stacked_sell_count")):
        ev = truth.events_of(kind)[0]
        assert feats.filter(pl.col("bar_start") == utc(ev.start_us))[col][0] >= 1
    base = OrderFlowStrategy(plain, truth.tick_size).signals(bars)
    kept = strat.signals(feats)
    assert 0 < kept.height < base.height
    assert set(kept["ts"].to_list()) <= set(base["ts"].to_list())
    rows = kept.join(feats, left_on="ts", right_on="bar_end").iter_rows(named=True)
    for r in rows:
        stacked = r["stacked_buy_count"] if r["action"] == 1 else r["stacked_sell_count"]
        assert stacked >= 1
        poc = r["poc_high"] if r["action"] == 1 else r["poc_low"]
        if r["action"] * (poc - r["close"]) > 0:
            assert r["target_price"] == pytest.approx(poc)
        else:
            dist = abs(r["close"] - r["stop_price"])
            assert r["target_price"] == pytest.approx(r["close"] + r["action"] * 2.0 * dist)


def test_cvd_divergence_veto(run) -> None:
    from botclave_cli.strategy.bars import bars_from_trades
    from botclave_cli.strategy.strategy import OrderFlowStrategy

    market, truth, p, _ = run
    plain = p.model_copy(deep=True)
    plain.entry.setups = ["bos"]
    veto = plain.model_copy(deep=True)
    veto.entry.cvd_divergence_veto = True
    bars = bars_from_trades(market.trades, "1m")
    strat = OrderFlowStrategy(veto, truth.tick_size)
    feats = strat.enrich(bars, market.trades)
    k = p.structure.swing_confirm_bars
    # the planted divergences are known k bars after their second swing
    for kind, sign in (("bearish_divergence", -1), ("bullish_divergence", 1)):
        ev = truth.events_of(kind)[0]
        known = utc(ev.end_us) + dt.timedelta(minutes=k)
        row = feats.filter(pl.col("bar_start") == known).row(0, named=True)
        assert row["recent_divergence"] == sign
        before = feats.filter(pl.col("bar_start") == known - dt.timedelta(minutes=1))
        assert before["recent_divergence"][0] != sign
    base = OrderFlowStrategy(plain, truth.tick_size).signals(bars)
    kept = strat.signals(feats)
    dropped = base.join(kept.select("ts"), on="ts", how="anti").join(
        feats, left_on="ts", right_on="bar_end")
    assert (dropped["recent_divergence"] == -dropped["action"]).all()
    assert kept.height + dropped.height == base.height
