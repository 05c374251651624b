"""Walls and absorption planted in the synthetic market are found by the book-based detectors
(replayed book + trades), at the planted time and price, and none inside the quiet stretches."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from botclave_cli.data.synth import SynthConfig, generate
from botclave_cli.engine.book.dom_builder import DOMBuilder
from botclave_cli.engine.book.stream import BookStream
from botclave_cli.engine.depth.analyzer import DepthAnalyzer, DepthParams

SECOND = 1_000_000


@pytest.fixture(scope="module")
def synth():
    market = generate(SynthConfig())
    truth = market.truth
    p = truth.detector_params
    params = DepthParams(
        interval_us=SECOND, sample_depth=p["book_levels"], wall_k=p["wall_min_multiple"],
        wall_min_us=p["wall_min_duration_s"] * SECOND,
        absorption_window_us=p["absorption_window_s"] * SECOND,
        absorption_break_ticks=p["absorption_max_break_ticks"])
    # the parts of analyze_book these tests need (the series is tested on hand-made books)
    stream = BookStream.from_frames(market.book_snapshot, market.book_diff)
    replay = DOMBuilder("spot").replay(stream, sample_interval_us=SECOND,
                                       sample_depth=params.sample_depth)
    samples = replay.samples_frame()
    analyzer = DepthAnalyzer(params)
    counts = {**replay.counts, "samples_valid": samples["ts"].n_unique(),
              "samples_taken": len(replay.samples["ts"])}
    return truth, SimpleNamespace(
        counts=counts, walls=analyzer.walls(samples, market.trades),
        zones=analyzer.absorption(samples, market.trades, truth.tick_size))


def _overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < a1


def test_the_synthetic_book_replays_without_a_break(synth):
    _, result = synth
    c = result.counts
    assert c["gaps"] == c["crossed"] == c["stale_snapshots"] == 0
    assert c["diffs_applied"] == c["diffs"]
    assert c["samples_valid"] == c["samples_taken"] == 86_400


def test_bid_walls_found_with_how_they_ended(synth):
    truth, result = synth
    planted = [e for e in truth.events if e.kind == "bid_wall"]
    assert len(planted) == 2
    for event in planted:
        found = [w for w in result.walls if w.side == "bid" and w.price == event.price_low
                 and _overlaps(w.first_seen_us, w.last_seen_us + SECOND, event.start_us,
                               event.end_us)]
        assert len(found) == 1, (event, result.walls)
        wall = found[0]
        # sampled at 1 s: first/last seen within a second of the planted span
        assert abs(wall.first_seen_us - event.start_us) <= SECOND
        assert abs(wall.last_seen_us - event.end_us) <= SECOND
        assert wall.peak_qty == pytest.approx(event.detail["qty"])
        assert wall.ended == event.detail["ended_by"]
    for quiet in (q for q in truth.quiet if q.kind == "bid_wall"):
        inside = [w for w in result.walls
                  if _overlaps(w.first_seen_us, w.last_seen_us + SECOND, quiet.start_us,
                               quiet.end_us)]
        assert inside == [], quiet


def test_absorption_zones_found_at_the_planted_level(synth):
    truth, result = synth
    planted = [e for e in truth.events if e.kind == "absorption"]
    assert {e.side for e in planted} == {"bid", "ask"}
    for event in planted:
        found = [z for z in result.zones if z.side == event.side
                 and _overlaps(z.start_us, z.end_us, event.start_us, event.end_us)]
        assert len(found) == 1, (event, result.zones)
        zone = found[0]
        assert zone.price_low == pytest.approx(event.price_low)
        assert zone.price_high == pytest.approx(event.price_high)
        assert (zone.start_us, zone.end_us) == (event.start_us, event.end_us)
        assert zone.absorbed_qty == pytest.approx(event.detail["absorbed_qty"], rel=1e-9)
        assert zone.trades == event.detail["trades"]
    for quiet in (q for q in truth.quiet if q.kind == "absorption"):
        inside = [z for z in result.zones
                  if _overlaps(z.start_us, z.end_us, quiet.start_us, quiet.end_us)]
        assert inside == [], quiet
    assert len(result.zones) == len(planted)
