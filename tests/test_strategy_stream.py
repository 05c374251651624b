"""OrderFlowStrategy bar by bar (strategy/stream.py) against the batch computation.

The stream is a second implementation of the features (structure_stream.py carries swings,
levels, breaks and order blocks; the divergence and POC windows are deques): fed one closed
bar's trades at a time, every feature column and every signal must equal the batch
``features(enrich(bars))`` / ``signals`` exactly, on synthetic days and on the real captures of
../shared/data. The per-bar backtest (``--per-bar``) must give the batch backtest's bytes.
The absorption detector both paths share is checked by hand and for look-ahead.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.config import ExchangeConfig
from botclave_cli.data.importers.capture import read_capture
from botclave_cli.data.synth import SynthConfig, generate
from botclave_cli.engine.signals.absorption_onset import (
    OnsetHistory,
    OnsetParams,
    absorption_onsets,
)
from botclave_cli.errors import ConfigError
from botclave_cli.strategy.bars import BarTrades, bars_from_trades
from botclave_cli.strategy.base import signal_frame
from botclave_cli.strategy.params import StrategyParams
from botclave_cli.strategy.strategy import OrderFlowStrategy
from botclave_cli.strategy.structure import market_structure

CAPTURES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-ws"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def every_feature(p: StrategyParams) -> StrategyParams:
    """Every feature group on: footprint (stacked filter, POC target), absorption, divergence."""
    p.entry.setups = ["bos", "bos_ob_retest", "absorption"]
    p.entry.stacked_imbalance = True
    p.entry.cvd_divergence_veto = True
    p.target.mode = "poc"
    return p


def streamed(strategy: OrderFlowStrategy, trades: pl.DataFrame
             ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Feature rows and signals of ``trades`` fed to a fresh stream one closed bar at a time."""
    bars = bars_from_trades(trades, strategy.params.bars.timeframe)
    ts = trades["ts"].dt.epoch("us").to_numpy()
    ends = np.searchsorted(ts, bars["bar_end"].dt.epoch("us").to_numpy())
    stream = strategy.stream()
    arrays = BarTrades.of(trades)
    rows, signals, lo = [], [], 0
    for hi in ends:
        features, decided = stream.on_bar(arrays.slice(lo, hi))
        rows.append(features)
        signals.append(signal_frame(decided))
        lo = hi
    return stream.frame(rows), pl.concat(signals)


def batch(strategy: OrderFlowStrategy, trades: pl.DataFrame
          ) -> tuple[pl.DataFrame, pl.DataFrame]:
    bars = bars_from_trades(trades, strategy.params.bars.timeframe)
    features = strategy.features(strategy.enrich(bars, trades))
    return features, strategy.decide_features(features)


def assert_stream_equals_batch(strategy: OrderFlowStrategy, trades: pl.DataFrame) -> None:
    feats, sigs = streamed(strategy, trades)
    want_feats, want_sigs = batch(strategy, trades)
    for column in want_feats.columns:  # one column at a time: a failure names it
        assert_frame_equal(feats.select(column), want_feats.select(column))
    assert feats.columns == want_feats.columns
    assert_frame_equal(sigs, want_sigs)


@pytest.fixture(scope="module")
def two_days() -> pl.DataFrame:
    return generate(SynthConfig(days=2, trades_per_day=120_000, seed=3)).trades


def test_every_feature_and_signal_of_a_synthetic_day_streamed_equals_batch() -> None:
    m = generate(SynthConfig())
    p = every_feature(StrategyParams())
    p.structure.swing_confirm_bars = m.truth.detector_params["swing_confirm_bars"]
    strategy = OrderFlowStrategy(p, m.truth.tick_size)
    feats, sigs = streamed(strategy, m.trades)
    # the day really exercises the rules: breaks both ways, blocks, gaps, absorption, marks
    assert set(feats["break_kind"].drop_nulls()) == {"BOS", "CHoCH"}
    assert feats["fvg_dir"].abs().sum() > 10 and feats["ob_bar"].drop_nulls().len() > 10
    assert feats["absorption_side"].drop_nulls().len() == len(m.truth.events_of("absorption"))
    assert set(feats["recent_divergence"]) == {-1, 0, 1}
    assert (feats["stacked_buy_count"] > 0).sum() >= 3
    assert sigs.height > 5
    assert_stream_equals_batch(strategy, m.trades)


@pytest.mark.parametrize("variant", ["wick_limit_no_reset", "swing_stop_short_atr"])
def test_two_synthetic_days_streamed_equals_batch(two_days, variant: str) -> None:
    p = every_feature(StrategyParams())
    if variant == "wick_limit_no_reset":
        p.structure.break_on = "wick"
        p.entry.order_type = "limit"
        p.entry.limit_offset_ticks = 2
        p.entry.cvd_reset = "none"
        p.structure.fvg_min_ticks = 3
        p.bars.timeframe = "2m"
    else:
        p.stop.mode = "swing"
        p.structure.atr_period = 5
        p.structure.swing_confirm_bars = 2
        p.bars.timeframe = "5m"
        p.orderflow.absorption_volume_mult = 0.5
    assert_stream_equals_batch(OrderFlowStrategy(p, 1.0), two_days)


CAPTURE_FILES = ["spot_btcusdt_20240808.gz", "spot_ethusdt_20240808.gz",
                 "usdm_btcusdt_20240808.gz"]


@pytest.mark.parametrize("name", CAPTURE_FILES)
@pytest.mark.parametrize("timeframe", ["1s", "5s"])
def test_real_captures_streamed_equal_batch(name: str, timeframe: str) -> None:
    path = CAPTURES / name
    if not path.exists():
        pytest.skip(f"{path} absent (../shared/data is not beside the project)")
    trades = read_capture([path]).trades.sort("ts", maintain_order=True)
    tick = 0.01 if "eth" in name else 0.1 if "usdm" in name else 0.01
    p = every_feature(StrategyParams())
    p.bars.timeframe = timeframe
    p.structure.swing_confirm_bars = 2
    p.orderflow.row_size_ticks = 5
    p.target.poc_lookback_bars = 20
    p.orderflow.absorption_min_baseline_bars = 5
    assert_stream_equals_batch(OrderFlowStrategy(p, tick), trades)


@pytest.mark.parametrize("book", [False, True])
def test_per_bar_backtest_gives_the_batch_backtest(book: bool) -> None:
    m = generate(SynthConfig(trades_per_day=20_000, book_interval_ms=1000, seed=5))
    p = every_feature(StrategyParams())
    p.entry.stacked_imbalance = False  # more entries on a thin day
    p.risk.max_daily_loss = p.risk.max_drawdown = 1.0
    p.risk.cooldown_losses = 0
    p.execution.participation = 0.3
    p.bars.timeframe = "2m"
    kw = {"book": {"book_snapshot": m.book_snapshot, "book_diff": m.book_diff}} if book else {}
    if book:
        p.entry.book_imbalance_min = -0.5
    t = m.truth
    tester = Backtester(p, ExchangeConfig(), tick_size=t.tick_size, lot_size=t.lot_size)
    whole = tester.run(m.trades, **kw)
    per_bar = tester.run(m.trades, per_bar=True, **kw)
    assert whole.trades.height >= 5
    for frame in ("signals", "orders", "fills", "trades", "equity", "bars"):
        assert_frame_equal(getattr(per_bar, frame), getattr(whole, frame))
    assert per_bar.final_equity == whole.final_equity


def test_per_bar_needs_trades_and_a_stream() -> None:
    bars = bars_from_trades(generate(SynthConfig(trades_per_day=5000)).trades, "1m")
    tester = Backtester(StrategyParams(), ExchangeConfig(), tick_size=1.0, lot_size=1e-5)
    with pytest.raises(ConfigError, match="--per-bar .* trade-level"):
        tester.run(bars=bars, bars_only=True, per_bar=True)


# ---- the absorption detector both paths share ------------------------------------------------

def tape(rows: list[tuple[int, float, float, str]]) -> pl.DataFrame:
    """(second, price, qty, side) -> trades."""
    return pl.DataFrame(
        {"ts": [T0 + dt.timedelta(seconds=s) for s, _, _, _ in rows],
         "price": [float(p) for _, p, _, _ in rows], "qty": [float(q) for _, _, q, _ in rows],
         "side": [side for _, _, _, side in rows]},
        schema={"ts": pl.Datetime("us", "UTC"), "price": pl.Float64, "qty": pl.Float64,
                "side": pl.String})


def quiet_then_absorbed() -> list[tuple[int, float, float, str]]:
    rows = []
    for m in range(5):  # 5 quiet minutes: 12 lots a minute over 100..104
        for s in range(0, 60, 5):
            rows.append((m * 60 + s, 100 + (s // 5) % 5, 1, "buy" if s % 10 else "sell"))
    for m in (5, 6, 7):  # 3 minutes of 48 lots a minute sold into 100, 6 lots into 99
        for s in range(0, 60, 2):
            rows.append((m * 60 + s, 100 if s % 10 else 99, 2 if s % 10 else 1, "sell"))
    return sorted(rows)


def test_absorption_onset_by_hand() -> None:
    p = OnsetParams(tick_size=1.0, window_us=60_000_000, baseline_windows=4,
                    min_baseline_windows=3)
    onsets, hist = absorption_onsets(tape(quiet_then_absorbed()), p)
    # minute 5 is judged against minutes 1-4 (12 lots each: median 12): 48 >= 12 at 100, and
    # the low (99) stays within 2 ticks -> the bid absorbed; minutes 6 and 7 continue the run
    assert onsets.rows() == [(T0 + dt.timedelta(minutes=6), "bid", 100.0, 100.0, 48 / 12)]
    # the history: the last 4 windows' totals in units of 1e-8 (12 and 48 + 6 lots), and the
    # cell absorbed in the last window (sells into 100)
    assert list(hist.totals) == [12 * 10**8] + [54 * 10**8] * 3
    assert hist.last_cells == {(False, 100)}
    # judged first at minute 6 (6 windows before it): the run is new there, so it starts there
    late = OnsetParams(tick_size=1.0, window_us=60_000_000, min_baseline_windows=6)
    assert absorption_onsets(tape(quiet_then_absorbed()), late)[0]["time"].to_list() == [
        T0 + dt.timedelta(minutes=7)]
    # too little history: nothing is judged before min_baseline_windows windows exist
    never = OnsetParams(tick_size=1.0, window_us=60_000_000, min_baseline_windows=9)
    assert absorption_onsets(tape(quiet_then_absorbed()), never)[0].height == 0


def test_absorption_onset_never_looks_ahead_and_resumes_from_its_history() -> None:
    rows = quiet_then_absorbed()
    p = OnsetParams(tick_size=1.0, window_us=60_000_000, baseline_windows=4,
                    min_baseline_windows=3)
    whole, _ = absorption_onsets(tape(rows), p)
    hist: OnsetHistory | None = None
    parts = []
    for minute in range(8):  # minute by minute with the carried history
        chunk = tape([r for r in rows if minute * 60 <= r[0] < (minute + 1) * 60])
        got, hist = absorption_onsets(chunk, p, hist)
        parts.append(got)
        # what the first minutes give does not depend on the minutes after them
        cut, _ = absorption_onsets(tape([r for r in rows if r[0] < (minute + 1) * 60]), p)
        assert_frame_equal(cut, whole.filter(pl.col("time") <= T0
                                             + dt.timedelta(minutes=minute + 1)))
    assert_frame_equal(pl.concat(parts), whole)


def test_atr_of_a_bar_depends_on_its_window_alone(two_days) -> None:
    """Each bar's ATR is its window's true ranges summed afresh: the value computed from the
    last period + 1 bars only equals the value computed over the whole history, bit for bit."""
    p = StrategyParams().structure
    bars = bars_from_trades(two_days, "1m")
    whole = market_structure(bars, p)["atr"].to_numpy()
    for i in (0, 5, p.atr_period, 700, bars.height - 1):
        lo = max(0, i - p.atr_period)
        tail = market_structure(bars.slice(lo, i - lo + 1), p)["atr"].to_numpy()
        assert tail[-1] == whole[i]
    h, lo_, c = (bars[k].to_numpy()[:3] for k in ("high", "low", "close"))
    tr = [h[0] - lo_[0]] + [max(h[j] - lo_[j], abs(h[j] - c[j - 1]), abs(lo_[j] - c[j - 1]))
                            for j in (1, 2)]
    assert whole[2] == pytest.approx(sum(tr) / 3, rel=1e-15)
