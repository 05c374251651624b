"""Exact window boundaries of the in-sample/out-of-sample split and walk-forward folds."""

from __future__ import annotations

import numpy as np
import pytest

from botclave_cli.errors import UsageError
from botclave_cli.validate.splits import (
    Fold,
    Window,
    holdout_split,
    min_bars_for_folds,
    walk_forward_folds,
    window_times,
)


def test_rolling_folds_exact_boundaries():
    # 103 bars, 3 folds, 2 training segments: seg = 103 // 5 = 20, 3 leftover bars at the start
    folds = walk_forward_folds(103, 3, "rolling", train_segments=2, gap_bars=2)
    assert folds == [
        Fold(0, Window(3, 41), Window(43, 63)),
        Fold(1, Window(23, 61), Window(63, 83)),
        Fold(2, Window(43, 81), Window(83, 103)),
    ]


def test_anchored_folds_exact_boundaries():
    folds = walk_forward_folds(103, 3, "anchored", train_segments=2, gap_bars=2)
    assert folds == [
        Fold(0, Window(0, 41), Window(43, 63)),
        Fold(1, Window(0, 61), Window(63, 83)),
        Fold(2, Window(0, 81), Window(83, 103)),
    ]


def test_folds_without_gap_and_one_training_segment():
    folds = walk_forward_folds(60, 5, "rolling", train_segments=1)
    assert [(f.train.start, f.train.end, f.test.start, f.test.end) for f in folds] == [
        (0, 10, 10, 20), (10, 20, 20, 30), (20, 30, 30, 40), (30, 40, 40, 50), (40, 50, 50, 60),
    ]


@pytest.mark.parametrize("mode", ["rolling", "anchored"])
@pytest.mark.parametrize("n_bars", [40, 97, 1000])
@pytest.mark.parametrize("gap", [0, 3])
def test_fold_invariants(mode, n_bars, gap):
    folds = walk_forward_folds(n_bars, 4, mode, train_segments=2, gap_bars=gap)
    assert folds[-1].test.end == n_bars
    for a, b in zip(folds, folds[1:], strict=False):
        assert a.test.end == b.test.start  # OOS windows tile the tail without overlap
    for f in folds:
        assert f.train.end + gap == f.test.start  # purge gap, train strictly before test
        assert f.train.start >= 0 and f.train.bars >= 2 and f.test.bars >= 2


def test_too_few_bars_for_folds_is_one_usage_line():
    need = min_bars_for_folds(6, 2, 5, 2, 2)
    assert need == 32  # seg = max(2, ceil(7 / 2)) = 4 -> 4 x (6 + 2)
    walk_forward_folds(need, 6, gap_bars=5)
    with pytest.raises(UsageError) as err:
        walk_forward_folds(need - 1, 6, gap_bars=5)
    assert "31 bars are fewer than 6 folds need (32 bars" in str(err.value)
    assert "\n" not in str(err.value)


def test_holdout_split_exact():
    fold = holdout_split(100, 0.3, gap_bars=4)
    assert fold.train == Window(0, 66) and fold.test == Window(70, 100)
    with pytest.raises(UsageError, match="too few"):
        holdout_split(5, 0.3, gap_bars=4)


def test_window_times():
    ts = np.arange(10, dtype=np.int64) * 60_000_000
    assert window_times(Window(2, 5), ts, 600_000_000) == (120_000_000, 300_000_000)
    assert window_times(Window(7, 10), ts, 600_000_000) == (420_000_000, 600_000_000)
