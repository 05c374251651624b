"""The scaling projection of ``benchmarks/bench_cluster.py``, against hand-worked figures."""

from __future__ import annotations

import pytest

from benchmarks.bench_cluster import projection


def test_projection_by_hand():
    # 2 s start + 125 MB at 125 MB/s (1 s) + ceil(100 / (5 x 2)) = 10 rounds x 0.1 s
    # + 100 tasks x 1 ms of scheduler overhead = 4.1 s
    assert projection(0.1, 100, 0.001, 2.0, 125.0, nodes=5, workers=2) == pytest.approx(4.1)
    # 101 tasks need one more round: 11 x 0.1 s
    assert projection(0.1, 101, 0.0, 0.0, 0.0, nodes=5, workers=2) == pytest.approx(1.1)
    # one node, one worker, no overheads: the serial time
    assert projection(0.25, 40, 0.0, 0.0, 0.0, nodes=1, workers=1) == pytest.approx(10.0)
