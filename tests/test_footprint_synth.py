"""The synthetic market's planted events are found where truth.json says, with the detector
parameters it records, and nothing of each kind inside that kind's quiet stretches."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from botclave_cli.data.synth import SynthConfig, generate
from botclave_cli.engine.footprint.builder import FootprintSpec, build_footprint
from botclave_cli.engine.signals.flow_events import absorption, liquidity_voids
from botclave_cli.engine.signals.indicators import delta_divergence


def us(t: dt.datetime) -> int:
    return int(t.timestamp() * 1_000_000)


@pytest.fixture(scope="module")
def synth():
    market = generate(SynthConfig())
    truth = market.truth
    p = truth.detector_params
    spec = FootprintSpec(bar=p["bar"], tick_size=truth.tick_size, row_size=p["row_size_ticks"],
                         imbalance_ratio=p["imbalance_ratio"],
                         imbalance_min_volume=p["imbalance_min_volume"],
                         imbalance_basis=p["imbalance_basis"],
                         stacked_min_levels=p["stacked_min_levels"], qty_step=truth.lot_size)
    return market, truth, build_footprint(market.trades, spec)


def overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < a1


def test_absorption(synth) -> None:
    market, truth, _ = synth
    p = truth.detector_params
    sig = absorption(market.trades, truth.tick_size,
                     window=f"{p['absorption_window_s']}s",
                     max_through_ticks=p["absorption_max_break_ticks"])
    rows = sig.rows(named=True)
    events = truth.events_of("absorption")
    assert {e.side for e in events} == {"bid", "ask"}
    for e in events:
        hits = [r for r in rows if r["side"] == e.side
                and overlaps(us(r["start"]), us(r["time"]), e.start_us, e.end_us)
                and r["price_low"] <= e.price_high + 1e-9 and r["price_high"] >= e.price_low - 1e-9]
        assert hits, f"absorption {e.side} at {e.price_low} not found"
        assert us(hits[0]["start"]) == e.start_us and us(hits[0]["time"]) == e.end_us
    for q in truth.quiet_of("absorption"):
        assert not [r for r in rows if overlaps(us(r["start"]), us(r["time"]), q.start_us,
                                                 q.end_us)], f"absorption in quiet {q}"
    assert len(rows) == len(events)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_stacked_imbalances(synth, side) -> None:
    _, truth, res = synth
    row = truth.detector_params["row_size_ticks"] * truth.tick_size
    runs = res.stacked_runs().filter(pl.col("side") == side).rows(named=True)
    events = truth.events_of(f"stacked_imbalance_{side}")
    assert events
    for e in events:
        hits = [r for r in runs if e.start_us <= us(r["bar_start"]) < e.end_us
                and r["levels"] >= 4
                and abs(r["price_low"] - e.price_low) <= row + 1e-9
                and abs(r["price_high"] - e.price_high) <= row + 1e-9]
        assert hits, f"stacked {side} at {e.price_low}..{e.price_high} not found in {runs}"
    for q in truth.quiet_of(f"stacked_imbalance_{side}"):
        assert not [r for r in runs if q.start_us <= us(r["bar_start"]) < q.end_us]


def test_liquidity_voids(synth) -> None:
    _, truth, res = synth
    p = truth.detector_params
    row = p["row_size_ticks"] * truth.tick_size
    rows = liquidity_voids(res, min_levels=p["void_min_ticks"] // p["row_size_ticks"]).rows(
        named=True)
    events = truth.events_of("liquidity_void")
    assert len(events) == 2
    for e in events:
        hits = [r for r in rows if r["side"] == e.side
                and us(r["start"]) <= e.start_us < us(r["time"])
                and abs(r["price_low"] - e.price_low) <= row
                and abs(r["price_high"] - e.price_high) <= row]
        assert hits, f"void {e.side} {e.price_low}..{e.price_high} not found in {rows}"
    for q in truth.quiet_of("liquidity_void"):
        assert not [r for r in rows if overlaps(us(r["start"]), us(r["time"]), q.start_us,
                                                 q.end_us)]
    assert len(rows) == len(events)


@pytest.mark.parametrize("side", ["bearish", "bullish"])
def test_divergences(synth, side) -> None:
    _, truth, res = synth
    p = truth.detector_params
    k = p["swing_confirm_bars"]
    sig = delta_divergence(res.bars, k=k, reset=p["cvd_reset"])
    bar_us = 60_000_000
    rows = [r for r in sig.rows(named=True) if r["side"] == side]
    events = truth.events_of(f"{side}_divergence")
    assert events
    for e in events:
        hits = [r for r in rows if us(r["start"]) == e.detail["swing1_us"]
                and us(r["time"]) - k * bar_us == e.detail["swing2_us"]
                and r["price_low"] == pytest.approx(e.price_low)
                and r["price_high"] == pytest.approx(e.price_high)]
        assert hits, f"{side} divergence {e} not found"
    for q in truth.quiet_of(f"{side}_divergence"):
        # neither swing of a reported divergence lies inside a quiet stretch
        inside = [r for r in rows if q.start_us <= us(r["start"]) < q.end_us
                  or q.start_us <= us(r["time"]) - k * bar_us < q.end_us]
        assert not inside, f"{side} divergence inside quiet {q}: {inside}"
