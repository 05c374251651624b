"""Time splits over a bar timeline: one in-sample/out-of-sample split, walk-forward folds.

Windows are half-open ranges of bar INDICES ``[start, end)`` on the validation timeline (the
sorted bar open times, microseconds). A gap of ``gap_bars`` is purged from the END of every
training window, so no position or indicator state that starts in sample can run into the test
window's first bars, and the optimiser never evaluates a bar that lies within ``gap_bars`` of
the test window. Test windows never overlap and always come after their training window.

Walk-forward layout: the bars are cut into ``folds + train_segments`` equal segments of
``seg = n_bars // (folds + train_segments)`` bars; the ``n_bars % (folds + train_segments)``
leftover bars go to the very beginning, so the last test window ends on the last bar. Fold ``i``
(0-based) tests on segment ``train_segments + i``; its training window is the
``train_segments`` segments just before it (``rolling``) or everything from bar 0 (``anchored``),
minus the gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from botclave_cli.errors import UsageError

Mode = Literal["rolling", "anchored"]


@dataclass(frozen=True)
class Window:
    """Bars ``[start, end)`` by index on the timeline."""

    start: int
    end: int

    @property
    def bars(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Fold:
    index: int
    train: Window
    test: Window


def holdout_split(
    n_bars: int, oos_fraction: float, gap_bars: int = 0, min_train_bars: int = 2,
    min_test_bars: int = 2,
) -> Fold:
    """The last ``floor(n_bars * oos_fraction)`` bars out of sample, the rest (minus the gap)
    in sample."""
    if not 0 < oos_fraction < 1:
        raise UsageError(f"holdout.oos_fraction {oos_fraction}: expected a value in (0, 1)")
    test_bars = int(math.floor(n_bars * oos_fraction))
    train_end = n_bars - test_bars - gap_bars
    if test_bars < min_test_bars or train_end < min_train_bars:
        need = max(
            math.ceil(min_test_bars / oos_fraction),
            math.ceil((min_train_bars + gap_bars) / (1 - oos_fraction)) + 1,
        )
        raise UsageError(
            f"out-of-sample split: {n_bars} bars are too few (need at least about {need} for "
            f"oos_fraction {oos_fraction}, gap {gap_bars}, at least {min_train_bars} in-sample "
            f"and {min_test_bars} out-of-sample bars)"
        )
    return Fold(0, Window(0, train_end), Window(n_bars - test_bars, n_bars))


def min_bars_for_folds(
    folds: int, train_segments: int, gap_bars: int, min_train_bars: int, min_test_bars: int
) -> int:
    """Smallest timeline that yields ``folds`` folds with the given minimum window sizes."""
    seg = max(min_test_bars, math.ceil((min_train_bars + gap_bars) / train_segments), 1)
    return seg * (folds + train_segments)


def walk_forward_folds(
    n_bars: int, folds: int, mode: Mode = "rolling", train_segments: int = 2, gap_bars: int = 0,
    min_train_bars: int = 2, min_test_bars: int = 2,
) -> list[Fold]:
    """Walk-forward folds with exact boundaries (see the module docstring for the layout)."""
    if folds < 1:
        raise UsageError(f"--folds {folds}: expected at least 1")
    if train_segments < 1:
        raise UsageError(f"walk_forward.train_segments {train_segments}: expected at least 1")
    if mode not in ("rolling", "anchored"):
        raise UsageError(f"--mode {mode!r}: expected rolling or anchored")
    need = min_bars_for_folds(folds, train_segments, gap_bars, min_train_bars, min_test_bars)
    if n_bars < need:
        raise UsageError(
            f"walk-forward: {n_bars} bars are fewer than {folds} folds need ({need} bars with "
            f"train_segments {train_segments}, gap {gap_bars}, at least {min_train_bars} "
            f"in-sample and {min_test_bars} out-of-sample bars per fold)"
        )
    k = train_segments
    seg = n_bars // (folds + k)
    offset = n_bars - seg * (folds + k)
    out = []
    for i in range(folds):
        test_start = offset + (k + i) * seg
        train_start = 0 if mode == "anchored" else offset + i * seg
        out.append(Fold(i, Window(train_start, test_start - gap_bars),
                        Window(test_start, test_start + seg)))
    return out


def window_times(window: Window, bar_ts_us: np.ndarray, end_us: int) -> tuple[int, int]:
    """``[start_us, end_us)`` of a window: the open time of its first bar to the open time of the
    first bar after it (``end_us`` of the whole timeline for the last bar)."""
    start = int(bar_ts_us[window.start])
    end = int(bar_ts_us[window.end]) if window.end < len(bar_ts_us) else int(end_us)
    return start, end
