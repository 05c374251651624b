"""Monte Carlo: hand-checked percentiles on a tiny trade list, seeds, executors."""

from __future__ import annotations

import numpy as np
import pytest
from polars.testing import assert_frame_equal

from botclave_cli.errors import UsageError
from botclave_cli.validate.executor import ProcessExecutor
from botclave_cli.validate.montecarlo import monte_carlo, path_stats


def test_path_stats_by_hand():
    # equity 1.5, 1.2, 0.96: peak 1.5, drawdown 1 - 0.96 / 1.5 = 0.36; losing streak 2
    # equity 0.8, 1.2, 0.96: the start (1.0) is a peak: drawdowns 0.2, 0, 0.2; streak 1
    stats = path_stats(np.array([[0.5, -0.2, -0.2], [-0.2, 0.5, -0.2]]))
    np.testing.assert_allclose(stats["final_equity"], [0.96, 0.96])
    np.testing.assert_allclose(stats["max_drawdown"], [0.36, 0.2])
    assert stats["longest_losing_streak"].tolist() == [2, 1]
    mean, sd = 0.1 / 3, np.std([0.5, -0.2, -0.2], ddof=1)
    np.testing.assert_allclose(stats["sharpe"], [mean / sd, mean / sd])


def test_reshuffle_percentiles_match_hand_check():
    # trades +50 %, -20 %, -20 %: of the 6 orders, 4 put the gain first or last (drawdown 0.36,
    # streak 2) and 2 put it in the middle (drawdown 0.2, streak 1); final equity is always 0.96
    res = monte_carlo([0.5, -0.2, -0.2], "reshuffle", runs=1000, seed=3, ruin_drawdown=0.3)
    s = res.summary
    for q in ("p5", "p25", "p50", "p75", "p95"):
        assert s["final_equity"][q] == pytest.approx(0.96, abs=1e-12)
    assert s["max_drawdown"]["p5"] == pytest.approx(0.2)
    assert s["max_drawdown"]["p50"] == pytest.approx(0.36)
    assert s["max_drawdown"]["p95"] == pytest.approx(0.36)
    assert s["longest_losing_streak"]["p5"] == 1 and s["longest_losing_streak"]["p95"] == 2
    assert set(np.round(res.runs["max_drawdown"].to_numpy(), 12)) == {0.2, 0.36}
    # probability of ruin (drawdown >= 30 %) is 4/6 in expectation; 1000 draws: +/- 4.5 sd
    assert res.prob_ruin == pytest.approx(2 / 3, abs=0.07)
    share_036 = float(np.mean(np.isclose(res.runs["max_drawdown"].to_numpy(), 0.36)))
    assert res.prob_ruin == share_036


def test_block_bootstrap_with_one_block_is_a_rotation():
    # a single block as long as the series: every path is a rotation of it, so the product is
    # the same and (for this series) every rotation has a 10 % drawdown
    r = [0.1, -0.1, 0.2, 0.0]
    res = monte_carlo(r, "bootstrap", runs=50, seed=1, block_bars=4)
    np.testing.assert_allclose(res.runs["final_equity"].to_numpy(), 1.1 * 0.9 * 1.2)
    np.testing.assert_allclose(res.runs["max_drawdown"].to_numpy(), 0.1)


def test_seeded_runs_are_reproducible_and_seed_dependent():
    rng = np.random.default_rng(0)
    bars = rng.normal(0.0002, 0.01, 500)
    a = monte_carlo(bars, "bootstrap", runs=250, seed=42, block_bars=10, periods_per_year=365)
    b = monte_carlo(bars, "bootstrap", runs=250, seed=42, block_bars=10, periods_per_year=365)
    c = monte_carlo(bars, "bootstrap", runs=250, seed=43, block_bars=10, periods_per_year=365)
    assert_frame_equal(a.runs, b.runs)
    assert a.summary == b.summary
    assert not a.runs["final_equity"].equals(c.runs["final_equity"])


def test_process_pool_gives_the_serial_result():
    bars = np.random.default_rng(5).normal(0.0, 0.01, 300)
    serial = monte_carlo(bars, "bootstrap", runs=230, seed=9, block_bars=7)
    with ProcessExecutor(2) as ex:
        parallel = monte_carlo(bars, "bootstrap", runs=230, seed=9, block_bars=7, executor=ex)
    assert serial.runs.to_arrow().equals(parallel.runs.to_arrow())


def test_bad_input():
    with pytest.raises(UsageError, match="at least 2 trades"):
        monte_carlo([0.1], "reshuffle", runs=10)
    with pytest.raises(UsageError, match="--runs 0"):
        monte_carlo([0.1, 0.2], "reshuffle", runs=0)
