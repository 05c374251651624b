"""Bars-only backtests at scale against vectorbt (issue 20, points 1 and 2).

- one SmaCross 10/30 over ``BOTCLAVE_BENCH_BARS`` (default 1,000,000) random-walk 1m bars:
  the first call in a fresh process (imports, numba's on-disk cache loaded, bars built before
  the clock starts) and warm (best of 3), beside vectorbt's warm call and its first call (which
  compiles vectorbt's kernels) on the same bars;
- a sweep of 100 (fast, slow) pairs (fast 5..50 step 5 x slow 60..150 step 10) over the same
  bars: ``backtest.sweep.sma_sweep`` against vectorbt's one broadcast call over the same 100
  pairs, each in its own process after a warm-up call on 2,000 bars (peak RSS of each shown);
  three pairs are checked against single runs (trades and final equity identical).

Risk halts are off (``max_drawdown = max_daily_loss = 1``) so that both engines trade every
cross (with the default 10 % drawdown halt ours would stop after a few hundred trades and
then skip the idle rest, which would flatter it). vectorbt is the ``bench`` extra; without it
the rows say so.
"""

from __future__ import annotations

import os
import time

from benchmarks.procs import run_child
from benchmarks.run import Result

AREA = "bars"
N_BARS = int(os.environ.get("BOTCLAVE_BENCH_BARS", "1000000"))
FAST = [f for f in range(5, 55, 5) for _ in range(60, 160, 10)]
SLOW = [s for _ in range(5, 55, 5) for s in range(60, 160, 10)]

SETUP = f"""
import json, time
from benchmarks.bench_backtest import bars_frame
from benchmarks.bench_bars import ours_params, EX
bars = bars_frame({N_BARS})
"""
OURS_FIRST = SETUP + """
started = time.perf_counter()
from botclave_cli.backtest.backtester import Backtester
res = Backtester(ours_params(10, 30), EX, tick_size=0.01, lot_size=1e-8).run(bars=bars,
                                                                              bars_only=True)
print(json.dumps({"s": time.perf_counter() - started, "trades": res.trades.height}))
"""
PEER_SINGLE = SETUP + """
from benchmarks import vectorbt_peer as V
first, warm, values, counts = V.timed(bars, [10], [30])
print(json.dumps({"first": first, "warm": warm, "trades": int(counts[0]),
                  "final": float(values[0])}))
"""
OURS_SWEEP = SETUP + """
from benchmarks.bench_bars import FAST, SLOW
from botclave_cli.backtest.sweep import sma_sweep
pairs = list(zip(FAST, SLOW))
sma_sweep(bars.head(2000), pairs, ours_params(10, 30), EX, tick_size=0.01, lot_size=1e-8)
started = time.perf_counter()
runs = sma_sweep(bars, pairs, ours_params(10, 30), EX, tick_size=0.01, lot_size=1e-8)
took = time.perf_counter() - started
print(json.dumps({"s": took, "trades": sum(r.trades.height for r in runs)}))
"""
PEER_SWEEP = SETUP + """
from benchmarks.bench_bars import FAST, SLOW
from benchmarks import vectorbt_peer as V
V.timed(bars.head(2000), FAST, SLOW)
first, warm, values, counts = V.timed(bars, FAST, SLOW)
print(json.dumps({"s": warm, "trades": int(counts.sum())}))
"""


def ours_params(fast: int, slow: int):  # noqa: ANN201 - a StrategyParams, imported late
    from benchmarks.bench_backtest import sma_params
    from botclave_cli.strategy.params import SmaCrossParams

    p = sma_params()
    p.sma_cross = SmaCrossParams(fast=fast, slow=slow)
    p.risk.max_drawdown = p.risk.max_daily_loss = 1.0
    return p


def _ex():  # noqa: ANN202
    from botclave_cli.config import ExchangeConfig, FeeSchedule

    return ExchangeConfig(fees=FeeSchedule(maker=0.001, taker=0.001))


EX = _ex()


def _have_vectorbt() -> bool:
    try:
        import vectorbt  # noqa: F401
    except ImportError:
        return False
    return True


def run() -> list[Result]:
    from benchmarks.bench_backtest import bars_frame
    from botclave_cli.backtest.backtester import Backtester
    from botclave_cli.backtest.sweep import sma_sweep

    bars = bars_frame(N_BARS)
    tester = Backtester(ours_params(10, 30), EX, tick_size=0.01, lot_size=1e-8)
    tester.run(bars=bars.head(200), bars_only=True)  # compile / load the caches once
    first, _, _ = run_child(OURS_FIRST)
    warm = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        res = tester.run(bars=bars, bars_only=True)
        warm = min(warm, time.perf_counter() - started)
    peer = run_child(PEER_SINGLE)[0] if _have_vectorbt() else None
    label = f"SmaCross 10/30 bars-only, {N_BARS / 1e6:g}M 1m bars"
    why = "" if peer else "vectorbt absent: pip install -e '.[bench]'"
    out = [
        Result(AREA, f"{label}, warm (best of 3)", N_BARS / warm, "bars/s",
               peer="vectorbt 1.2 warm" if peer else "",
               peer_value=N_BARS / peer["warm"] if peer else None,
               note=why or f"{warm:.3f} s; {res.trades.height} trades (vectorbt "
               f"{peer['trades']}), final equity {res.final_equity:.6g} (vectorbt "
               f"{peer['final']:.6g}; it does not round to our 1e-8 lot)"),
        Result(AREA, f"{label}, first call in a fresh process", first["s"], "s",
               peer="vectorbt 1.2 first call" if peer else "",
               peer_value=peer["first"] if peer else None,
               note=why or "goal <= 2 s; vectorbt's compiles its kernels"),
    ]
    pairs = list(zip(FAST, SLOW, strict=True))
    ours, _, ours_rss = run_child(OURS_SWEEP)
    theirs, _, their_rss = run_child(PEER_SWEEP) if peer else (None, 0.0, 0.0)
    checked = sma_sweep(bars, pairs[::45], ours_params(10, 30), EX, tick_size=0.01,
                        lot_size=1e-8)
    same = all(
        r.trades.equals(one.trades) and r.final_equity == one.final_equity
        for r in checked
        for one in [Backtester(ours_params(r.fast, r.slow), EX, tick_size=0.01,
                               lot_size=1e-8).run(bars=bars, bars_only=True)])
    out.append(Result(
        AREA, f"sweep of {len(pairs)} (fast, slow) pairs, {N_BARS / 1e6:g}M bars",
        len(pairs) * N_BARS / ours["s"] / 1e6, "M pair-bars/s",
        peer="vectorbt 1.2 broadcast" if theirs else "",
        peer_value=len(pairs) * N_BARS / theirs["s"] / 1e6 if theirs else None,
        note=(f"{ours['s']:.2f} s, {ours['trades']} trades, peak RSS {ours_rss:,.0f} MiB"
              + (f"; vectorbt {theirs['s']:.2f} s, {theirs['trades']} trades, peak RSS "
                 f"{their_rss:,.0f} MiB" if theirs else f"; {why}")
              + f"; {len(checked)} pairs identical to single runs: {same}")))
    return out
