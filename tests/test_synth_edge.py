"""The planted edge of the synthetic market: each absorption's follow-through is in the tape as
truth.json says (checked from the prints by hand), the control (``edge=False``, same seed) has
the same events, flow and draws with nothing after them, the outcome is drawn with the
documented probability, and truth.json prices the reference trade as worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from botclave_cli.data.synth import FOLLOW_THROUGH, SynthConfig, generate
from botclave_cli.data.synth.edge import expected_edge, trade_return
from botclave_cli.data.synth.events import follow_through
from botclave_cli.data.synth.plan import Planted, build_plan

CFG = SynthConfig(days=2, trades_per_day=20_000, book_interval_ms=1_000)
FT = FOLLOW_THROUGH
NOISE = 5  # ticks: the plan's noise (2) plus an order walking a level or two of the book


@pytest.fixture(scope="module")
def markets():
    return generate(CFG), generate(CFG.model_copy(update={"edge": False}))


def tape(market) -> tuple[np.ndarray, np.ndarray]:
    t = market.trades
    return t["ts"].dt.epoch("us").to_numpy(), np.round(t["price"].to_numpy()).astype(np.int64)


def test_reference_trade_by_hand():
    # long at a 42,000 bid: entry 42,000 x 1.0001 = 42,004.2; target 42,400 filled at its price:
    # 395.8 / 42,004.2 = 94.2287 bps, fees 10 bps x (42,004.2 + 42,400) / 42,004.2 = 20.0942 bps
    won = trade_return(42_000.0, "bid", "reversal", 1.0) * 1e4
    assert won == pytest.approx(74.134444, abs=1e-5)
    # stop 41,900 filled 1 bps worse, 41,895.81: -108.39 / 42,004.2 = -25.8045 bps, fees 19.9742
    assert trade_return(42_000.0, "bid", "break", 1.0) * 1e4 == pytest.approx(-45.778758, abs=1e-5)
    assert expected_edge(42_000.0, "bid", 1.0, True) * 1e4 == pytest.approx(
        0.7 * 74.134444 + 0.3 * -45.778758, abs=1e-5)
    # the control expects its costs: 2 x 10 bps fees + 2 x 1 bps slippage
    assert expected_edge(42_000.0, "ask", 1.0, False) * 1e4 == pytest.approx(-22.0)
    with pytest.raises(ValueError, match="outcome"):
        trade_return(42_000.0, "bid", "none", 1.0)


def test_follow_through_is_in_the_tape(markets):
    market, _ = markets
    t, tick = tape(market)
    events = market.truth.events_of("absorption")
    assert len(events) == 7 * CFG.days
    for e in events:
        level, d = round(e.price_low), (1 if e.side == "bid" else -1)
        seconds = FT.reversal_s if e.detail["outcome"] == "reversal" else FT.break_s
        assert e.detail["follow_through_end_us"] == e.end_us + seconds * 1_000_000
        w = (t >= e.end_us) & (t < e.detail["follow_through_end_us"])
        away = d * (tick[w] - level)  # ticks in the fade's favour
        if e.detail["outcome"] == "reversal":
            assert away.max() >= FT.reversal_ticks - NOISE
            assert away.min() >= -NOISE  # never back through the level: the stop is safe
            assert away.max() > FT.target_ticks  # the reference target trades through
        else:
            assert e.detail["outcome"] == "break"
            assert away.min() <= -FT.break_ticks + NOISE
            assert away.max() <= NOISE  # no turn away first
            assert away.min() < -FT.stop_ticks  # the reference stop is hit
        ref = trade_return(e.price_low, e.side, e.detail["outcome"], CFG.tick_size) * 1e4
        assert e.detail["reference_return_bps"] == pytest.approx(ref, abs=1e-6)
    edge = market.truth.edge
    assert edge.enabled and edge.events == len(events)
    assert edge.reversals == sum(e.detail["outcome"] == "reversal" for e in events)
    assert edge.expected_edge_bps == pytest.approx(
        np.mean([e.detail["expected_edge_bps"] for e in events]), abs=1e-6)
    assert edge.follow_through == FT.as_dict()


def test_control_has_the_same_events_and_draws_and_no_follow_through(markets):
    market, control = markets
    ev, cv = market.truth.events, control.truth.events
    assert [(e.kind, e.start_us, e.end_us, e.side) for e in ev] == [
        (e.kind, e.start_us, e.end_us, e.side) for e in cv]
    first = min(e.end_us for e in market.truth.events_of("absorption"))
    before = (market.trades["ts"].dt.epoch("us") < first)
    assert market.trades.filter(before).equals(
        control.trades.filter(control.trades["ts"].dt.epoch("us") < first))
    absorbed = control.truth.events_of("absorption")
    assert [e.detail["drawn"] for e in absorbed] == [
        e.detail["outcome"] for e in market.truth.events_of("absorption")]
    t, tick = tape(control)
    for e in absorbed:
        assert e.detail["outcome"] == "none" and e.detail["reference_return_bps"] is None
        assert e.detail["expected_edge_bps"] == pytest.approx(-22.0)
        # background only: nothing like the planted moves within their time
        w = (t >= e.end_us) & (t < e.end_us + FT.reversal_s * 1_000_000)
        assert np.abs(tick[w] - round(e.price_low)).max() < FT.break_ticks
    assert not control.truth.edge.enabled and control.truth.edge.reversals == 0
    assert control.truth.edge.expected_edge_bps == pytest.approx(-22.0)


def test_outcomes_are_drawn_with_the_documented_probability():
    cfg = SynthConfig(book_interval_ms=1_000)
    seeds = np.random.SeedSequence(5).spawn(2)
    plan = build_plan(cfg, *(np.random.default_rng(s) for s in seeds), [])
    n, k1, s = 4_000, 3_600, int(plan.path[3_599])
    outcomes = []
    for _ in range(n):
        planted = Planted("absorption", k1 - 180, k1, "bid", {})
        follow_through(plan, planted, k1, s, 1)
        outcomes.append(planted.info["outcome"])
    share = outcomes.count("reversal") / n
    assert abs(share - FT.p_reversal) <= 3 * (FT.p_reversal * (1 - FT.p_reversal) / n) ** 0.5
    assert set(outcomes) == {"reversal", "break"}


def test_cli_no_edge(tmp_path):
    from botclave_cli.cli.app import app

    result = CliRunner().invoke(app, ["synth", "--trades-per-day", "20000", "--no-edge",
                                      "--data-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["edge"] is False and data["expected_edge_bps"] == pytest.approx(-22.0)
    truth = json.loads((tmp_path / "synth" / "spot" / "BTC-USDT" / "truth.json").read_text())
    assert truth["edge"]["enabled"] is False
    assert {e["detail"]["outcome"] for e in truth["events"] if e["kind"] == "absorption"} == {
        "none"}
    plain = CliRunner().invoke(app, ["synth", "--trades-per-day", "20000",
                                     "--data-dir", str(tmp_path)])
    assert plain.exit_code == 0 and "edge +" in plain.output and "bps per trade" in plain.output
    helped = CliRunner().invoke(app, ["synth", "--help"])
    assert "--no-edge" in helped.output


def test_pipeline_generates_again_when_the_stored_market_has_other_settings(tmp_path):
    from botclave_cli.data.store import Store
    from botclave_cli.data.synth import read_truth, truth_path, write_synth
    from botclave_cli.pipeline import PipelineConfig
    from botclave_cli.pipeline.context import Context
    from botclave_cli.pipeline.stages import data_stage
    from botclave_cli.progress import or_null

    store = Store(tmp_path)
    write_synth(store, SynthConfig(trades_per_day=5_000))  # 2024-01-01, with the edge

    def stage(**synth):
        cfg = PipelineConfig.model_validate({"synth": {"trades_per_day": 5_000, **synth}})
        start, end = cfg.window()
        ctx = Context(cfg=cfg, store=store, start=start, end=end, progress=or_null(None),
                      charts=None, report=None)  # type: ignore[arg-type]
        return data_stage(ctx).detail

    assert stage().startswith("using stored")
    assert stage(edge=False) == "generated 1 day(s) of synthetic market (control: no edge)"
    assert not read_truth(truth_path(store, "BTC/USDT")).edge.enabled
    assert stage(edge=False).startswith("using stored")
    assert stage(edge=False, seed=8).startswith("generated")
