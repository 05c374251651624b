"""PSR, DSR, PBO (CSCV) and parameter stability against worked examples and hand checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from botclave_cli.errors import UsageError
from botclave_cli.validate.overfitting import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    moments,
    parameter_stability,
    pbo_cscv,
    probabilistic_sharpe_ratio,
    sharpe_per_period,
)


def test_dsr_reproduces_the_papers_worked_example():
    # Bailey & Lopez de Prado (2014): N = 100 trials, V[SR_n] = 1/2 (annualised, 250 days a
    # year), T = 1250 daily returns, skewness -3, kurtosis 10, annualised SR 2.5.
    per_day_variance = 0.5 / 250
    sr0 = expected_max_sharpe(100, per_day_variance)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    sr = 2.5 / math.sqrt(250)
    dsr = deflated_sharpe_ratio(sr, 1250, -3.0, 10.0, 100, per_day_variance)
    assert dsr == pytest.approx(0.9004, abs=5e-4)
    # the same number through PSR against SR0
    assert probabilistic_sharpe_ratio(sr, sr0, 1250, -3.0, 10.0) == pytest.approx(dsr, abs=1e-15)


def test_psr_normal_case_by_hand():
    # normal returns (skew 0, kurtosis 3): z = (0.1 - 0) * sqrt(99) / sqrt(1 + 0.1^2 / 2)
    z = 0.1 * math.sqrt(99) / math.sqrt(1 + 0.005)
    expected = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    assert probabilistic_sharpe_ratio(0.1, 0.0, 100) == pytest.approx(expected, abs=1e-12)
    assert probabilistic_sharpe_ratio(0.0, 0.0, 100) == pytest.approx(0.5)
    assert math.isnan(probabilistic_sharpe_ratio(0.1, 0.0, 1))


def test_expected_max_sharpe_grows_with_trials_and_is_zero_for_one():
    assert expected_max_sharpe(1, 0.01) == 0.0
    values = [expected_max_sharpe(n, 0.01) for n in (2, 10, 100, 1000)]
    assert values == sorted(values)
    # sqrt(V) scaling
    assert expected_max_sharpe(10, 0.04) == pytest.approx(2 * expected_max_sharpe(10, 0.01))


def test_sharpe_and_moments_of_a_known_series():
    r = np.array([1.0, 2.0, 3.0, 4.0])
    assert sharpe_per_period(r) == pytest.approx(2.5 / math.sqrt(5 / 3))
    skew, kurt = moments(r)
    assert skew == pytest.approx(0.0, abs=1e-12)
    # population kurtosis of 1,2,3,4: m4 / m2^2 = 2.5625 / 1.5625
    assert kurt == pytest.approx(2.5625 / 1.5625)


def test_pbo_hand_checked_two_block_example():
    # columns A..D; block 0 = rows 0-1, block 1 = rows 2-3
    m = np.array([
        [0.0, 0.0, 1.0, 0.0],
        [-2.0, 2.0, 2.0, 0.0],
        [2.0, 1.0, 1.0, 0.0],
        [3.0, 3.0, 2.0, 0.0],
    ])
    # block 0 Sharpe: A -0.707, B 0.707, C 2.121, D 0; block 1: A 3.536, B 1.414, C 2.121, D 0
    # IS = block 0 -> best C, OOS rank 3 of 4 -> w = 3/5 -> logit ln(1.5)
    # IS = block 1 -> best A, OOS rank 1 of 4 -> w = 1/5 -> logit ln(0.25)
    res = pbo_cscv(m, blocks=2)
    np.testing.assert_allclose(res.logits, [math.log(1.5), math.log(0.25)], rtol=1e-12)
    assert res.pbo == 0.5
    assert res.n_splits == 2
    np.testing.assert_allclose(res.oos_sharpe, [1.5 / math.sqrt(0.5), -1 / math.sqrt(2)])


def test_pbo_pure_noise_is_near_or_above_half():
    values = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        values.append(pbo_cscv(rng.normal(0, 0.01, size=(800, 20)), blocks=10).pbo)
    assert min(values) > 0.3
    assert 0.4 <= float(np.mean(values)) <= 0.8


def test_pbo_with_a_planted_edge_is_low():
    rng = np.random.default_rng(11)
    m = rng.normal(0, 0.01, size=(800, 20))
    m[:, 7] += 0.003  # a real edge: per-bar Sharpe 0.3
    res = pbo_cscv(m, blocks=10)
    assert res.pbo < 0.05
    assert res.prob_oos_loss < 0.05


def test_pbo_bad_input_is_a_usage_error():
    with pytest.raises(UsageError, match="even number"):
        pbo_cscv(np.zeros((100, 3)), blocks=5)
    with pytest.raises(UsageError, match="at least 2 parameter sets"):
        pbo_cscv(np.zeros((100, 1)), blocks=4)
    with pytest.raises(UsageError, match="needs at least 32 bars"):
        pbo_cscv(np.zeros((20, 3)), blocks=16)


def test_parameter_stability_on_a_grid():
    # 3 x 3 grid, best at the centre (1, 1) with score 2; its four grid neighbours score
    # 1, 1.5, -0.5 and 0.5 -> median 0.75, ratio 0.375, 3 of 4 positive
    coords, scores = [], []
    table = {(1, 1): 2.0, (0, 1): 1.0, (2, 1): 1.5, (1, 0): -0.5, (1, 2): 0.5}
    for i in range(3):
        for j in range(3):
            coords.append((i, j))
            scores.append(table.get((i, j), -1.0))
    res = parameter_stability(np.array(coords), np.array(scores))
    assert res.best == 4
    assert sorted(res.neighbours) == [1, 3, 5, 7]
    assert res.neighbour_median == pytest.approx(0.75)
    assert res.ratio == pytest.approx(0.375)
    assert res.share_positive == pytest.approx(0.75)


def test_moments_agree_with_scipy():
    from scipy import stats

    r = np.random.default_rng(0).standard_t(4, 2000)
    skew, kurt = moments(r)
    assert skew == pytest.approx(float(stats.skew(r)), rel=1e-12)
    assert kurt == pytest.approx(float(stats.kurtosis(r, fisher=False)), rel=1e-12)
    assert moments(np.ones(10)) == (0.0, 3.0)
