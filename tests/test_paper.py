"""Paper trading's core loop (live/paper.py) against the batch backtest.

Trades arrive as a live session receives them, message by message (random batch sizes, one
trade per message, a real capture); the strategy decides each bar from its stream as the bar
closes; the execution core fills paper orders. Orders, fills, trades, equity, signals and bars
must equal ``Backtester.run`` on the same trades, byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.config import ExchangeConfig
from botclave_cli.data.importers.capture import read_capture
from botclave_cli.data.synth import SynthConfig, generate
from botclave_cli.errors import DataError
from botclave_cli.live.paper import PaperTrader
from botclave_cli.strategy.params import StrategyParams

CAPTURE = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-ws"
           / "spot_btcusdt_20240808.gz")


def params(timeframe: str = "2m") -> StrategyParams:
    p = StrategyParams()
    p.entry.setups = ["bos", "bos_ob_retest", "absorption"]
    p.entry.cvd_divergence_veto = True
    p.target.mode = "poc"
    p.bars.timeframe = timeframe
    p.risk.max_daily_loss = p.risk.max_drawdown = 1.0
    p.risk.cooldown_losses = 0
    p.execution.participation = 0.5
    return p


def replay(trader: PaperTrader, trades: pl.DataFrame, sizes: np.ndarray) -> None:
    ts = trades["ts"].dt.epoch("us").to_numpy()
    px, qty = trades["price"].to_numpy(), trades["qty"].to_numpy()
    buy = (trades["side"] == "buy").to_numpy()
    i = k = 0
    while i < len(ts):
        n = int(sizes[k % len(sizes)])
        trader.on_trades(ts[i:i + n], px[i:i + n], qty[i:i + n], buy[i:i + n])
        i, k = i + n, k + 1
    trader.close()


def assert_same(paper, batch) -> None:
    for frame in ("signals", "orders", "fills", "trades", "equity", "bars"):
        assert_frame_equal(getattr(paper, frame), getattr(batch, frame))
    assert paper.final_equity == batch.final_equity


@pytest.mark.parametrize("sizes", ["random", "one trade per message"])
def test_paper_on_a_synthetic_day_equals_the_backtest(sizes: str) -> None:
    m = generate(SynthConfig(trades_per_day=20_000, seed=5))
    t = m.truth
    p = params()

    def tester() -> Backtester:
        return Backtester(p, ExchangeConfig(), tick_size=t.tick_size, lot_size=t.lot_size)

    batch = tester().run(m.trades)
    assert batch.trades.height >= 10
    trader = PaperTrader(tester())
    chunks = (np.random.default_rng(3).integers(1, 60, 5000) if sizes == "random"
              else np.ones(1, np.int64))
    replay(trader, m.trades, chunks)
    assert_same(trader.result(), batch)


def test_paper_on_a_real_capture_equals_the_backtest() -> None:
    if not CAPTURE.exists():
        pytest.skip(f"{CAPTURE} absent (../shared/data is not beside the project)")
    trades = read_capture([CAPTURE]).trades.sort("ts", maintain_order=True)
    p = params("5s")
    p.structure.swing_confirm_bars = 2
    p.orderflow.row_size_ticks = 5
    p.orderflow.absorption_min_baseline_bars = 5
    p.risk.per_trade = 0.002

    def tester() -> Backtester:
        return Backtester(p, ExchangeConfig(), tick_size=0.01, lot_size=0.00001)

    batch = tester().run(trades)
    assert batch.signals.height >= 3
    trader = PaperTrader(tester())
    replay(trader, trades, np.random.default_rng(8).integers(1, 20, 2000))
    assert_same(trader.result(), batch)


def test_trades_out_of_order_are_refused() -> None:
    m = generate(SynthConfig(trades_per_day=5000))
    trader = PaperTrader(Backtester(params(), ExchangeConfig(), tick_size=1.0, lot_size=1e-5))
    ts = m.trades["ts"].dt.epoch("us").to_numpy()
    one = np.array([100.0]), np.array([0.01]), np.array([True])
    trader.on_trades(ts[10:11], *one)
    with pytest.raises(DataError, match="older than the last one"):
        trader.on_trades(ts[5:6], *one)


def test_a_raw_capture_replayed_through_the_message_decoder_equals_the_backtest() -> None:
    if not CAPTURE.exists():
        pytest.skip(f"{CAPTURE} absent (../shared/data is not beside the project)")
    from botclave_cli.live.replay import replay_capture, trade_message

    # the decoder reads Binance's own fields: m (buyer is maker) true -> the aggressor sold
    assert trade_message({"stream": "btcusdt@trade", "data": {
        "e": "trade", "T": 1723161254000, "p": "60000.10", "q": "0.002", "m": True}}) == (
        1723161254000000, 60000.10, 0.002, False)
    assert trade_message({"e": "depthUpdate"}) is None
    p = params("5s")
    p.structure.swing_confirm_bars = 2
    p.orderflow.absorption_min_baseline_bars = 5
    trades = read_capture([CAPTURE]).trades.sort("ts", maintain_order=True)
    batch = Backtester(p, ExchangeConfig(), tick_size=0.01, lot_size=0.00001).run(trades)
    trader = PaperTrader(Backtester(p, ExchangeConfig(), tick_size=0.01, lot_size=0.00001))
    assert replay_capture(trader, CAPTURE) == trades.height
    assert_same(trader.result(), batch)
