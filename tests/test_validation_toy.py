"""A deterministic toy strategy over synthetic bar returns, for validator tests (picklable).

Position at bar t: the sign of the sum of the previous ``lookback`` market returns when its
absolute value exceeds ``threshold``, else flat; the bar's return is position x market return,
minus ``cost`` on every change of position. A trade is a run of one non-zero position, closed at
the window's end. Bars before the window are read for the lookback (the past); bars at or after
``end_us`` are never read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from botclave_cli.validate.evaluation import EvaluationResult, Timeline, evaluation_metrics


def make_market(n_bars: int, seed: int = 0, drift: float = 0.0, vol: float = 0.01,
                ar: float = 0.0) -> np.ndarray:
    """Bar returns; ``ar`` > 0 plants momentum (an edge a lookback rule can find)."""
    rng = np.random.default_rng(seed)
    eps = rng.normal(drift, vol, n_bars)
    out = np.empty(n_bars)
    prev = 0.0
    for i in range(n_bars):
        prev = ar * prev + eps[i]
        out[i] = prev
    return out


@dataclass(frozen=True)
class ToyEvaluator:
    market: np.ndarray
    timeline: Timeline
    cost: float = 0.0002

    def __call__(self, params: dict, start_us: int, end_us: int) -> EvaluationResult:
        lookback = int(params.get("lookback", 10))
        threshold = float(params.get("threshold", 0.0))
        a = (start_us - self.timeline.start_us) // self.timeline.bar_us
        b = (end_us - self.timeline.start_us) // self.timeline.bar_us
        m = self.market[:b]  # never beyond the window
        csum = np.concatenate([[0.0], np.cumsum(m)])
        idx = np.arange(a, b)
        past = csum[idx] - csum[np.maximum(idx - lookback, 0)]
        pos = np.where(np.abs(past) > threshold, np.sign(past), 0.0)
        pos[idx < lookback] = 0.0
        prev = np.concatenate([[0.0], pos[:-1]])
        rets = pos * m[a:b] - self.cost * (pos != prev)
        trades = []
        i = 0
        while i < len(pos):
            if pos[i] == 0:
                i += 1
                continue
            j = i
            while j + 1 < len(pos) and pos[j + 1] == pos[i]:
                j += 1
            trades.append(float(np.prod(1 + rets[i:j + 1]) - 1))
            i = j + 1
        t = np.array(trades)
        ppy = 365 * 86_400e6 / self.timeline.bar_us
        return EvaluationResult(rets, t, evaluation_metrics(rets, t, ppy))


def test_toy_evaluator_reads_nothing_at_or_after_the_window_end():
    tl = Timeline(0, 200 * 60_000_000, 60_000_000)
    market = make_market(200, seed=1)
    poisoned = market.copy()
    poisoned[120:] = 0.5
    a = ToyEvaluator(market, tl)({"lookback": 5}, 60 * 60_000_000, 120 * 60_000_000)
    b = ToyEvaluator(poisoned, tl)({"lookback": 5}, 60 * 60_000_000, 120 * 60_000_000)
    np.testing.assert_array_equal(a.returns, b.returns)
    assert len(a.returns) == 60


def test_toy_trades_by_hand():
    # market +1 %, +1 %, -1 %, +2 %; lookback 1, no cost: positions 0, +1, +1, -1
    tl = Timeline(0, 4 * 60_000_000, 60_000_000)
    ev = ToyEvaluator(np.array([0.01, 0.01, -0.01, 0.02]), tl, cost=0.0)
    res = ev({"lookback": 1}, 0, 4 * 60_000_000)
    np.testing.assert_allclose(res.returns, [0.0, 0.01, -0.01, -0.02])
    np.testing.assert_allclose(res.trade_returns, [1.01 * 0.99 - 1, -0.02])
