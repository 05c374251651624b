"""``--jobs auto``: the pool decision from hand-given costs; AutoExecutor on a scripted clock."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from botclave_cli.errors import UsageError
from botclave_cli.validate.executor import (
    POOL_START_S,
    AutoExecutor,
    ProcessExecutor,
    SerialExecutor,
    available_cores,
    choose_workers,
    make_executor,
    parse_jobs,
)


def test_small_job_stays_serial():
    # demo scale: 27 evaluations of 0.05 s = 1.35 s; 2 workers would run 14 rounds = 0.7 s,
    # saving 0.65 s, less than a 2.5 s pool start
    choice = choose_workers(0.05, 27, 2, 2.5)
    assert choice.workers == 1
    assert choice.serial_s == pytest.approx(1.35)
    assert choice.reason == ("est. serial 1.35 s (27 evaluations x 0.05 s): 2 workers would "
                             "save 0.65 s < pool start 2.5 s")


def test_large_job_uses_every_core():
    # 6 folds x 50 sets over a year: 300 x 0.044 s = 13.2 s; 2 workers: 150 rounds = 6.6 s
    choice = choose_workers(0.044, 300, 2, 2.5)
    assert choice.workers == 2
    assert choice.reason == ("est. serial 13.2 s (300 evaluations x 0.044 s): 2 workers save "
                             "6.6 s > pool start 2.5 s")
    assert choose_workers(1.0, 100, 8, 2.5).workers == 8


def test_one_core_is_serial_whatever_the_work():
    choice = choose_workers(100.0, 1000, 1, 2.5)
    assert choice.workers == 1 and choice.reason.endswith("; 1 core available")


def test_pool_size_edges():
    # no more workers than tasks: 3 tasks of 10 s on 8 cores -> 3 workers (10 + 2.5 < 30)
    assert choose_workers(10.0, 3, 8, 2.5).workers == 3
    # 4 tasks of 1 s on 3 cores: 2 and 3 workers both need 2 rounds -> the smaller pool
    assert choose_workers(1.0, 4, 3, 0.5).workers == 2
    # a saving equal to the start-up is no saving: 6 x 1 s, 2 workers save 3 s = pool start
    assert choose_workers(1.0, 6, 2, 3.0).workers == 1
    assert choose_workers(1.0, 6, 2, 2.9).workers == 2
    assert choose_workers(100.0, 1, 2, 2.5).workers == 1  # one task is not shared


def scripted_clock(durations: list[float]):
    """A clock under which the i-th task takes ``durations[i]`` seconds (two reads per task)."""
    reads: list[float] = []
    t = 0.0
    for d in durations:
        reads += [t, t + d]
        t += d + 1.0
    it = iter(reads)
    return lambda: next(it)


def test_auto_times_the_first_tasks_and_stays_serial_for_small_work():
    # the first task pays this process's warm-up (30 s, e.g. numba compiling): not an estimate
    ex = AutoExecutor(cores=2, pool_start_s=2.5, clock=scripted_clock([30.0] + [0.05] * 29))
    calls: list[int] = []
    assert ex.map(abs, list(range(-30, 0)), lambda: calls.append(1)) == list(range(30, 0, -1))
    assert len(calls) == 30
    # judged after the warm-up task and two timed ones: 27 left x 0.05 s
    assert ex.report() == {"requested": "auto", "used": 1, "cores": 2, "reason": (
        "est. serial 1.35 s (27 evaluations x 0.05 s): 2 workers would save 0.65 s < pool "
        "start 2.5 s")}
    # warm now: a later batch is judged after two tasks; 2 tasks only -> never judged
    ex._clock = scripted_clock([0.05] * 2)
    assert ex.map(abs, [-1, -2]) == [1, 2] and ex.jobs == 1


def test_auto_starts_a_pool_when_the_work_pays_and_keeps_the_order():
    with AutoExecutor(cores=2, pool_start_s=2.5, clock=scripted_clock([1.0] * 3)) as ex:
        calls: list[int] = []
        out = ex.map(abs, list(range(-40, 0)), lambda: calls.append(1))
        assert out == list(range(40, 0, -1)) and len(calls) == 40
        assert ex.jobs == 2 and isinstance(ex._pool, ProcessExecutor)
        assert ex.report()["reason"] == ("est. serial 37 s (37 evaluations x 1 s): 2 workers "
                                         "save 18 s > pool start 2.5 s")
        # later batches of 2+ tasks go to the same pool (the clock is not read any more)
        assert ex.map(abs, [-5, -6, -7]) == [5, 6, 7]
    assert ex._pool is not None and ex._pool._pool is None  # closed


def test_auto_judges_again_when_later_tasks_are_slower():
    # warm-up, then 3 quick tasks and slow ones (an anchored walk-forward's later folds):
    # after 2 timed tasks, 37 left x 0.1 s would save 1.8 s < 2.5 s; after 4 timed tasks
    # (0.1, 0.1, 0.1, 2.0: mean 0.575 s), 35 left would save 35 x 0.575 - 18 x 0.575 = 9.78 s
    clock = scripted_clock([1.0, 0.1, 0.1, 0.1, 2.0])
    with AutoExecutor(cores=2, pool_start_s=2.5, clock=clock) as ex:
        assert ex.map(abs, list(range(-40, 0))) == list(range(40, 0, -1))
        assert ex.jobs == 2
        assert ex.report()["reason"] == ("est. serial 20.1 s (35 evaluations x 0.575 s): "
                                         "2 workers save 9.78 s > pool start 2.5 s")
        assert [c.workers for c in ex._judged] == [1, 2]


@dataclass(frozen=True)
class Weighed:
    weight: float
    value: int


def value_of(item: Weighed) -> int:
    return item.value


def test_auto_weighs_the_rest_of_the_batch_and_the_announced_work():
    # 5 tasks: warm-up, 2 timed of 0.5 s; 2 left = 1 s: serial on its own
    ex = AutoExecutor(cores=2, pool_start_s=2.5, clock=scripted_clock([1.0] + [0.5] * 4))
    assert ex.map(abs, [-1, -2, -3, -4, -5]) == [1, 2, 3, 4, 5] and ex.jobs == 1
    assert ex.report()["reason"].startswith("est. serial 1 s (2 evaluations x 0.5 s)")
    # the same batch with 20 tasks of weight 20 announced to follow: 22 x 0.5 = 11 s, 2
    # workers save 11 - 11 x 0.5 = 5.5 s
    with AutoExecutor(cores=2, pool_start_s=2.5, clock=scripted_clock([1.0, 0.5, 0.5])) as ex:
        ex.expect(20, 20.0)
        assert ex.map(abs, [-1, -2, -3, -4, -5]) == [1, 2, 3, 4, 5] and ex.jobs == 2
        assert ex.report()["reason"] == ("est. serial 11 s (22 evaluations x 0.5 s): 2 workers "
                                         "save 5.5 s > pool start 2.5 s")
    # weights: 2 timed tasks of weight 1 take 0.5 s each; the 3 left weigh 8 each: 3 x 4 s
    # (counted as tasks they would be 3 x 0.5 s = 1.5 s: serial)
    items = [Weighed(1.0, i) for i in range(3)] + [Weighed(8.0, i) for i in range(3, 6)]
    with AutoExecutor(cores=2, pool_start_s=2.5, clock=scripted_clock([1.0, 0.5, 0.5])) as ex:
        assert ex.map(value_of, items) == list(range(6)) and ex.jobs == 2
        assert ex.report()["reason"] == ("est. serial 12 s (3 evaluations x 4 s): 2 workers "
                                         "save 4 s > pool start 2.5 s")


def test_auto_on_one_core_and_a_huge_first_timed_task():
    ex = AutoExecutor(cores=1, clock=scripted_clock([5.0] * 10))
    assert ex.map(abs, list(range(10))) == list(range(10))
    assert ex.report()["used"] == 1 and ex.report()["reason"].endswith("1 core available")
    # a timed task that alone outlasts the pool start is judged at once (no second one)
    ex = AutoExecutor(cores=2, pool_start_s=2.5, clock=scripted_clock([9.0, 100.0, 1.0, 1.0]))
    with ex:
        assert ex.map(abs, [-1, -2, -3, -4]) == [1, 2, 3, 4]
        assert ex.report()["reason"].startswith("est. serial 200 s (2 evaluations x 100 s)")


def test_make_executor_and_parse_jobs():
    assert isinstance(make_executor("auto"), AutoExecutor)
    assert isinstance(make_executor(" AUTO "), AutoExecutor)
    assert isinstance(make_executor("1"), SerialExecutor)
    assert make_executor("3").jobs == 3
    assert make_executor(0).report()["requested"] == 0
    assert make_executor(1).report() == {"requested": 1, "used": 1, "reason": "--jobs 1: serial"}
    assert parse_jobs("0") == 0 and parse_jobs("auto") == "auto"
    for bad in ("many", "-2", "1.5", ""):
        with pytest.raises(UsageError, match=r"--jobs .*: expected auto, 0 \(all cores\) or a "
                                             r"positive number"):
            parse_jobs(bad)
    assert 1 <= available_cores() <= (os.cpu_count() or 1)
    assert POOL_START_S > 0
