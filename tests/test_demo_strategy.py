"""The demo's strategy (``backtest.set`` of configs/pipeline.yaml over strategy_params.yaml)
trades the events planted in the synthetic market: every planted absorption is faded (entered
against its aggressors), and most entries sit on a planted event - on the demo's seed and on
another one, with the edge and on the control. The default strategy, for contrast, does not."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from botclave_cli import demo
from botclave_cli.backtest.backtester import Backtester
from botclave_cli.config import load_exchange_config, load_model
from botclave_cli.data.synth import SynthConfig, Truth, TruthEvent, generate
from botclave_cli.strategy.params import StrategyParams, params_with_overrides

PROJECT = Path(__file__).resolve().parents[1]
MOST = 0.6
#: the direction a planted absorption is traded in: against its aggressors
DIRECTION = {("absorption", "bid"): "long", ("absorption", "ask"): "short"}


def project_path(path: Path) -> Path:
    return path if path.is_absolute() else PROJECT / path


def demo_setup() -> tuple[StrategyParams, StrategyParams, object, object]:
    """(demo params, default params, exchange config, synth settings), read the way the
    pipeline reads them."""
    cfg = demo.demo_config(PROJECT / "configs" / "pipeline.yaml")
    base = load_model(project_path(cfg.strategy_config), StrategyParams)
    ex = load_exchange_config(project_path(cfg.exchange_config))
    return params_with_overrides(base, cfg.backtest.set), base, ex, cfg.synth


@pytest.fixture(scope="module", params=[("demo seed", True), (11, True), (11, False)])
def runs(request):
    params, default, ex, synth = demo_setup()
    seed, edge = request.param
    market = generate(SynthConfig(seed=synth.seed if seed == "demo seed" else seed,
                                  trades_per_day=synth.trades_per_day,
                                  book_interval_ms=synth.book_interval_ms, edge=edge))
    truth = market.truth

    def run(p: StrategyParams) -> pl.DataFrame:
        return Backtester(p, ex, tick_size=truth.tick_size, lot_size=truth.lot_size).run(
            market.trades).trades

    return truth, run(params), run(default)


def entry_us(trades: pl.DataFrame) -> list[int]:
    return trades["entry_ts"].dt.epoch("us").to_list()


def test_entries_at_events_by_hand():
    ev = [TruthEvent(kind="absorption", start_us=100_000_000, end_us=280_000_000,
                     price_low=1.0, price_high=1.0, side="bid"),
          TruthEvent(kind="bid_wall", start_us=1_000_000_000, end_us=1_100_000_000,
                     price_low=1.0, price_high=1.0, side="bid")]
    truth = Truth(symbol="X/Y", seed=0, tick_size=1.0, lot_size=1.0, start_us=0,
                  end_us=2_000_000_000, detector_params={}, events=ev, quiet=[])
    # before the start, at the start, 60 s after the end (in), 60 s + 1 us after (out), a wall
    got = demo.entries_at_events([99_999_999, 100_000_000, 340_000_000, 340_000_001,
                                  1_150_000_000], truth, window_s=60)
    assert got == [None, "absorption", "absorption", None, "bid_wall"]


def test_every_planted_absorption_is_faded(runs):
    truth, trades, _ = runs
    window = demo.EVENT_WINDOW_S * 1e6
    for ev in truth.events:
        side = DIRECTION.get((ev.kind, ev.side))
        if side is None:
            continue
        # absorption is traded from its first bar on (known then)
        hit = trades.filter(pl.col("entry_ts").dt.epoch("us").is_between(ev.start_us,
                                                                         ev.end_us + window))
        assert hit.height == 1, f"{ev.kind} {ev.side} ending {ev.end_us}: {hit.height} entries"
        assert hit["side"][0] == side


def test_most_entries_trade_a_planted_event(runs):
    truth, trades, default = runs
    kinds = demo.entries_at_events(entry_us(trades), truth)
    at_events = sum(k is not None for k in kinds)
    assert trades.height >= 7
    assert at_events / trades.height >= MOST, kinds
    # the default strategy trades the background: most of its entries are nowhere near an event
    base = demo.entries_at_events(entry_us(default), truth)
    assert default.height > 2 * trades.height
    assert sum(k is not None for k in base) / default.height < MOST
