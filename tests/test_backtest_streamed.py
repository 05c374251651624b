"""The backtest read from the store day by day equals the backtest of all the trades at once:
every result frame, the metrics and the final equity, on three synthetic days; the CLI takes
the streamed path where it can, and says nothing different."""

from __future__ import annotations

import pytest
from polars.testing import assert_frame_equal

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.backtest.streamed import run_streamed, store_chunks, stream_refusal
from botclave_cli.config import ExchangeConfig
from botclave_cli.data.store import DatasetRef, Store
from botclave_cli.data.synth import SynthConfig, write_synth
from botclave_cli.errors import DataError
from botclave_cli.strategy.base import BarStrategy
from botclave_cli.strategy.params import StrategyParams

REF = DatasetRef("synth", "spot", "BTC/USDT", "trades")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    s = Store(tmp_path_factory.mktemp("streamed"))
    write_synth(s, SynthConfig(days=3, trades_per_day=30_000, book_interval_ms=1_000, seed=4))
    return s


def _params(variant: str) -> StrategyParams:
    p = StrategyParams()
    p.risk.max_daily_loss = p.risk.max_drawdown = 1.0
    p.risk.cooldown_losses = 0
    if variant == "filters":  # footprint and divergence columns in play
        p.entry.stacked_imbalance = True
        p.entry.cvd_divergence_veto = True
        p.target.mode = "poc"
    if variant == "sma":
        p.name = "sma_cross"
        p.risk.sizing = "equity_fraction"
    return p


@pytest.mark.parametrize("variant", ["default", "filters", "sma"])
def test_streamed_equals_whole(store: Store, variant: str) -> None:
    p = _params(variant)
    tester = Backtester(p, ExchangeConfig(), tick_size=1.0, lot_size=1e-5)
    assert stream_refusal(tester, book=False, per_bar=False) is None
    trades = store.scan(REF, None, None).select("ts", "price", "qty", "side").collect()
    whole = tester.run(trades)
    part = run_streamed(tester, store_chunks(store, REF, None, None))
    assert whole.trades.height > 0
    for name in ("bars", "signals", "orders", "fills", "trades", "equity"):
        assert_frame_equal(getattr(part, name), getattr(whole, name), check_exact=True)
    assert part.metrics == whole.metrics
    assert part.final_equity == whole.final_equity
    assert (part.coverage_start_us, part.coverage_end_us, part.input_rows) == (
        whole.coverage_start_us, whole.coverage_end_us, whole.input_rows)


def test_refusals() -> None:
    p = StrategyParams()
    ex = ExchangeConfig()
    tester = Backtester(p, ex, tick_size=1.0, lot_size=1e-5)
    assert stream_refusal(tester, book=True, per_bar=False) == "book mode"
    assert stream_refusal(tester, book=False, per_bar=True) == "--per-bar"
    p.entry.setups = ["bos", "absorption"]
    assert stream_refusal(Backtester(p, ex, tick_size=1.0, lot_size=1e-5), book=False,
                          per_bar=False) == "the absorption setup"
    class Quiet(BarStrategy):
        def on_bar(self, history):
            return None

    assert stream_refusal(Backtester(StrategyParams(), ex, tick_size=1.0, lot_size=1e-5,
                                     strategy=Quiet(StrategyParams())),
                          book=False, per_bar=False) == "a bar-by-bar strategy"
    q = StrategyParams()
    q.bars.timeframe = "7m"
    assert "do not divide a day" in stream_refusal(
        Backtester(q, ex, tick_size=1.0, lot_size=1e-5), book=False, per_bar=False)


def test_empty_range_says_so(store: Store) -> None:
    import datetime as dt

    tester = Backtester(StrategyParams(), ExchangeConfig(), tick_size=1.0, lot_size=1e-5)
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(DataError, match="no trades here"):
        run_streamed(tester, store_chunks(store, REF, start, None), empty="no trades here")
