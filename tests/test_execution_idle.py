"""The execution core's idle fast-forward (kernel._skip_idle) against trade-by-trade processing.

While flat with no working order the core skips to the next signal arrival or funding time at
once. With book arrays present it never skips; a book whose only sample is invalid changes
nothing else (every order falls back to the trade-price rules), so a core fed such a book is
an independent trade-by-trade reference: same orders, fills, trades, marks and cash, byte for
byte, on the synthetic scenario of test_execution_core (entries, stops, targets, trailing
stops, reversals, partial fills, funding) and on a bars-only moving-average cross.
"""

from __future__ import annotations

import numpy as np
import pytest

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.backtest.bars_path import pseudo_trades
from botclave_cli.config import ExchangeConfig, FeeSchedule
from botclave_cli.execution import layout as L
from botclave_cli.execution.core import Book, CoreInputs, ExecutionCore
from tests.test_backtest_sweep import make_bars, params
from tests.test_execution_core import _assert_same, _scenario


def _fed(inputs: CoreInputs, ts: np.ndarray, px: np.ndarray, qty: np.ndarray,
         invalid_book: bool) -> ExecutionCore:
    core = ExecutionCore(inputs.params, depth=1 if invalid_book else 0)
    core.submit(inputs.signals)
    if invalid_book:
        z = np.zeros((1, 1), np.int64)
        core.add_book(Book(np.array([ts[0] - 1], np.int64), np.zeros(1, np.int64), z, z, z, z))
    core.add_funding(inputs.funding_ts, inputs.funding_rate)
    core.trades_ticks(ts, px, qty)
    return core


def _check(inputs: CoreInputs, ts: np.ndarray, px: np.ndarray, qty: np.ndarray) -> None:
    fast = _fed(inputs, ts, px, qty, invalid_book=False)
    slow = _fed(inputs, ts, px, qty, invalid_book=True)
    assert fast.outputs()["trades_i"].shape[0] > 0
    # the one trace of the invalid book: orders note "no valid book at arrival" (O_QSET 2)
    qset = slow.state.orders[: slow.state.iv[L.I_N_ORDERS], L.O_QSET]
    assert set(np.unique(qset)) <= {0, 2}
    n = min(int(slow.state.iv[L.I_N_ORDERS]), int(fast.state.iv[L.I_N_ORDERS]))
    slow.state.orders[:n, L.O_QSET] = fast.state.orders[:n, L.O_QSET]
    _assert_same(fast, slow, int(slow.state.iv[L.I_N_MARKS]) + 1)
    assert fast.trades_seen == slow.trades_seen == len(ts)
    assert fast.state.iv.tobytes() == slow.state.iv.tobytes()


@pytest.mark.parametrize("order_type", ["market", "limit"])
def test_skip_equals_trade_by_trade_on_the_synthetic_scenario(order_type: str) -> None:
    sc = _scenario(False, order_type)
    _check(sc["inputs"], sc["ts"], sc["px"], sc["qty"])


def test_skip_equals_trade_by_trade_on_bars() -> None:
    bars = make_bars(5_000)
    p = params(max_drawdown=0.05)
    p.sma_cross.fast, p.sma_cross.slow = 5, 20
    ex = ExchangeConfig(fees=FeeSchedule(maker=0.001, taker=0.001))
    tester = Backtester(p, ex, tick_size=0.01, lot_size=1e-8)
    res = tester.run(bars=bars, bars_only=True)
    ts, px, qty = pseudo_trades(bars, "ohlc", 0.01)
    _check(tester.core_inputs(res.signals, None, True), ts, px, qty)
