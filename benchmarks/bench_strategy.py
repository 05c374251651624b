"""OrderFlowStrategy bar by bar (the paper/live path) against the batch computation.

The synthetic day (1,440 one-minute bars, ~450k trades) with every feature group on
(footprint POC and stacks, absorption, CVD divergence, structure): the time the stream takes
per closed bar (median and p99: the decision latency a live session adds after a bar closes)
and the batch features + signals of the whole day. Both give the same columns and signals
(tests/test_strategy_stream.py); this says what each costs.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.run import Result
from botclave_cli.data.synth import SynthConfig, generate
from botclave_cli.strategy.bars import BarTrades, bars_from_trades
from botclave_cli.strategy.params import StrategyParams
from botclave_cli.strategy.strategy import OrderFlowStrategy

AREA = "strategy"


def _strategy(tick: float) -> OrderFlowStrategy:
    p = StrategyParams()
    p.entry.setups = ["bos", "bos_ob_retest", "absorption"]
    p.entry.stacked_imbalance = True
    p.entry.cvd_divergence_veto = True
    p.target.mode = "poc"
    return OrderFlowStrategy(p, tick)


def run() -> list[Result]:
    market = generate(SynthConfig())
    trades = market.trades
    strategy = _strategy(market.truth.tick_size)
    bars = bars_from_trades(trades, "1m")
    started = time.perf_counter()
    whole = strategy.decide_features(strategy.features(strategy.enrich(bars, trades)))
    batch_s = time.perf_counter() - started
    ends = np.searchsorted(trades["ts"].dt.epoch("us").to_numpy(),
                           bars["bar_end"].dt.epoch("us").to_numpy())
    stream = strategy.stream()
    per_bar = np.empty(len(ends))
    arrays = BarTrades.of(trades)
    lo, n_signals = 0, 0
    for i, hi in enumerate(ends):
        chunk = arrays.slice(lo, hi)
        t0 = time.perf_counter()
        _, signals = stream.on_bar(chunk)
        per_bar[i] = (time.perf_counter() - t0) * 1e3
        n_signals += len(signals)
        lo = hi
    same = n_signals == whole.height
    return [
        Result(AREA, "orderflow bar by bar, per closed bar (median)", float(np.median(per_bar)),
               "ms", note=f"{len(ends)} bars, every feature on; same signals as batch: {same}"),
        Result(AREA, "orderflow bar by bar, per closed bar (p99)",
               float(np.percentile(per_bar, 99)), "ms", note="a 1m bar lasts 60,000 ms"),
        Result(AREA, "orderflow batch features + signals, whole day", batch_s, "s",
               note=f"{trades.height:,} trades, {bars.height} bars; stream total "
                    f"{per_bar.sum() / 1e3:.2f} s"),
    ]
