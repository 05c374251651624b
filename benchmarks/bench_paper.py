"""Paper trading through the whole live path, and its decision latency.

The synthetic day (~450k trades, 1m bars, the default OrderFlowStrategy) as the WebSocket sends
it: one Binance ``trade`` message per trade, as JSON text, each decoded (``orjson.loads``, as
the recorder does) and handed to ``PaperSession.on_message`` as the recorder hands it live: the
decoder, the PaperTrader, the strategy's stream on every closed bar, the execution core.
Trades/s of the whole replay (the issue's target: >= 200k/s; freqtrade's orderflow, the peer
that is not installable here, was measured at ~31k trades/s on this machine). Decision
latency: from the moment the message whose trade closes a bar is received to the moment that
bar's orders are handed to the core (``core.submit``), p50 and p99 over the bars that decided
an order (target p99 <= 5 ms). Twice: the default strategy, and with every per-bar feature on
(footprint, absorption, CVD divergence). A short replay first compiles the core's kernels
(numba caches them on disk; a first run on a new machine would otherwise time the compiler).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

from benchmarks.run import Result
from botclave_cli.backtest.backtester import Backtester
from botclave_cli.config import ExchangeConfig
from botclave_cli.data.synth import SynthConfig, generate
from botclave_cli.live.session import PaperSession
from botclave_cli.strategy.params import StrategyParams

AREA = "paper"


def _messages(trades) -> list[str]:
    ts = trades["ts"].dt.epoch("ms").to_list()
    px, qty = trades["price"].to_list(), trades["qty"].to_list()
    buyer_maker = (trades["side"] == "sell").to_list()
    return [json.dumps({"stream": "btcusdt@trade", "data": {
        "e": "trade", "E": t, "s": "BTCUSDT", "t": i, "p": f"{p:.2f}", "q": f"{q:.5f}",
        "T": t, "m": m, "M": True}}) for i, (t, p, q, m) in enumerate(
            zip(ts, px, qty, buyer_maker, strict=True))]


def _every_feature() -> StrategyParams:
    """Every per-bar feature on: footprint (stacked filter, POC target), absorption, CVD."""
    p = StrategyParams()
    p.entry.setups = ["bos", "bos_ob_retest", "absorption"]
    p.entry.stacked_imbalance = True
    p.entry.cvd_divergence_veto = True
    p.target.mode = "poc"
    return p


def _replay(params: StrategyParams, market, raw: list[str]
            ) -> tuple[float, np.ndarray, int]:
    """Trades/s of the whole replay, the decision latencies (ms) and the paper trades."""
    truth = market.truth
    tester = Backtester(params, ExchangeConfig(), symbol="BTC/USDT",
                        tick_size=truth.tick_size, lot_size=truth.lot_size)
    with tempfile.TemporaryDirectory() as tmp:
        session = PaperSession(tester, Path(tmp), "bench", write_every_s=1e9)
        core = session.trader.core
        submit = core.submit
        received = [0.0]
        latencies: list[float] = []

        def timed_submit(*args, **kwargs):
            latencies.append(time.perf_counter() - received[0])
            return submit(*args, **kwargs)

        core.submit = timed_submit
        started = time.perf_counter()
        for i, line in enumerate(raw):
            received[0] = time.perf_counter()
            session.on_message(orjson.loads(line), i)  # as the recorder decodes
        session.trader.close()
        elapsed = time.perf_counter() - started
        trades = session.trader.result().metrics["trades"]
    return len(raw) / elapsed, np.array(latencies) * 1e3, trades


def _latency(what: str, lat: np.ndarray) -> list[Result]:
    if not len(lat):
        return []
    return [Result(AREA, f"decision latency p50 ({what})", float(np.percentile(lat, 50)), "ms",
                   note=f"{len(lat)} decisions; target p99 <= 5 ms"),
            Result(AREA, f"decision latency p99 ({what})", float(np.percentile(lat, 99)), "ms",
                   note=f"max {lat.max():.2f} ms")]


def run() -> list[Result]:
    market = generate(SynthConfig())
    raw = _messages(market.trades)
    _replay(StrategyParams(), market, raw[:20_000])  # compiles the core's kernels first
    out = []
    for what, params in (("default strategy", StrategyParams()),
                         ("every feature on", _every_feature())):
        rate, lat, trades = _replay(params, market, raw)
        note = f"{len(raw):,} trade messages, {trades} paper trades, {len(lat)} decisions"
        out.append(Result(AREA, f"paper replay through the live path, {what} (JSON decode -> "
                                "session -> core)", rate, "trades/s",
                          "freqtrade orderflow (not installed)", 31_000,
                          note=note + "; peer figure measured earlier on this machine, target "
                          "200k/s"))
        out += _latency(what, lat)
    return out
