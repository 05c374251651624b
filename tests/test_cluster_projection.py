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


def test_projection_with_chunks():
    # 1000 evaluations on 2 nodes x 2 workers, 16 tasks per worker: 64 tasks sent, not 1000
    # 2 s start + 0 + 250 rounds x 0.01 s + 64 x 0.005 s = 4.82 s
    assert projection(0.01, 1000, 0.005, 2.0, 0.0, nodes=2, workers=2,
                      chunks_per_thread=16) == pytest.approx(4.82)
    # a cluster larger than the work: one task per evaluation
    assert projection(0.01, 100, 0.005, 0.0, 0.0, nodes=50, workers=2,
                      chunks_per_thread=16) == pytest.approx(0.01 + 0.5)
