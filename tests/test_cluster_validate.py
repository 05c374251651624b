"""``--executor dask=ADDRESS`` on a real local cluster (a ``dask scheduler`` and two ``dask
worker`` processes started here): every validation mode writes the same bytes as a serial run,
a worker killed mid-run costs nothing but time, an unreachable scheduler is one line and exit
code 4 with the saved evaluations kept, and a run resumes across executors both ways."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from botclave_cli.cli.validate import PARTIAL_DIR
from botclave_cli.errors import ClusterUnreachable
from botclave_cli.validate import cluster as cl
from botclave_cli.validate.cluster import DaskExecutor, parse_executor, worker_host
from tests.cluster import free_port, local_cluster, slow_echo
from tests.test_validate_cli import _configs, _validate, data_dir  # noqa: F401 - the fixture
from tests.test_validation_resume_cli import _count, _files

MODES = ("oos", "walk-forward", "monte-carlo", "pbo", "all")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_cluster(tmp_path_factory.mktemp("cluster"), workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def serial(tmp_path_factory, data_dir):  # noqa: F811
    """Each mode's validation files from a serial run."""
    out = {}
    for which in MODES:
        res = _validate(tmp_path_factory.mktemp(which), data_dir, which, "--executor",
                        "serial", "--json")
        assert res.exit_code == 0, res.output
        out[which] = _files(Path(json.loads(res.stdout)["folder"]))
    return out


def test_executor_option_parsing(monkeypatch):
    assert parse_executor("dask=tcp://h:8786") == cl.ExecutorSpec("dask", "tcp://h:8786")
    assert parse_executor("processes") == cl.ExecutorSpec("processes")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://x:1")
    assert parse_executor("dask") == cl.ExecutorSpec("dask", "tcp://x:1")
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
    for bad in ("dask", "ray=x", "serial=3"):
        with pytest.raises(Exception, match="--executor"):
            parse_executor(bad)


def test_bad_executor_is_a_usage_error(tmp_path, data_dir):  # noqa: F811
    res = _validate(tmp_path, data_dir, "oos", "--executor", "ray=tcp://h:1")
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        "error: --executor 'ray=tcp://h:1': expected auto, serial, processes or dask=ADDRESS "
        "(e.g. dask=tcp://head:8786)"]


def test_results_come_back_in_item_order_whatever_the_completion(cluster):
    # the first items take longest: they complete last, the results are still in item order
    items = [(i, 0.05 * (8 - i)) for i in range(8)]
    arrived: list[int] = []
    with DaskExecutor(cluster.address) as ex:
        assert ex.map(slow_echo, items, on_item=lambda i, r: arrived.append(i)) == list(range(8))
        hosts = set(ex.map(worker_host, list(range(20))))
    assert sorted(arrived) == list(range(8)) and arrived != list(range(8))
    assert len(hosts) == 2  # both workers took tasks


def test_chunk_sizes_by_hand():
    assert cl.chunk_size(1206, 2, 16) == 38  # ceil(1206 / 32): 32 tasks
    assert cl.chunk_size(1206, 128, 16) == 1  # a big cluster: a task per item
    assert cl.chunk_size(33, 2, 16) == 2 and cl.chunk_size(32, 2, 16) == 1
    assert cl.chunk_size(1000, 2, None) == 1  # chunking off


def test_chunked_batches_come_back_whole_and_in_order(cluster):
    items = [(i, 0.002 * ((i * 7) % 5)) for i in range(100)]  # 2 threads: 25 tasks of 4
    arrived: list[int] = []
    with DaskExecutor(cluster.address) as ex:
        assert ex.map(slow_echo, items, on_item=lambda i, r: arrived.append(i)) == list(
            range(100))
        assert ex.report()["tasks"] == 100
    assert sorted(arrived) == list(range(100))


@pytest.mark.parametrize("which", MODES)
def test_every_mode_on_the_cluster_is_byte_identical(tmp_path, data_dir, cluster,  # noqa: F811
                                                     serial, which):
    res = _validate(tmp_path, data_dir, which, "--executor", f"dask={cluster.address}", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["jobs"]["executor"] == "dask" and data["jobs"]["workers"] == 2
    assert data["jobs"]["tasks"] > 0  # the work went to the cluster
    assert _files(Path(data["folder"])) == serial[which]


@dataclass(frozen=True)
class SlowEvaluator:
    """The backtest evaluator, a little slower (so a test can act mid-run); same outcomes and
    the same checkpoint keys (its fingerprint is the inner one's)."""

    inner: Any
    delay_s: float

    def fingerprint(self) -> Any:
        return self.inner.fingerprint()

    def __call__(self, params, start_us, end_us):
        time.sleep(self.delay_s)
        return self.inner(params, start_us, end_us)


def _validator(tmp: Path, data_dir: Path, executor):  # noqa: F811
    """The library validator of ``_validate``'s configs, its evaluator slowed down."""
    import datetime as dt

    from botclave_cli.backtest.results import code_version
    from botclave_cli.config import load_exchange_config, load_model
    from botclave_cli.data.store import Store, find_trades
    from botclave_cli.strategy.params import StrategyParams
    from botclave_cli.validate.backtest_evaluator import backtest_validator
    from botclave_cli.validate.checkpoint import Checkpoint, run_key
    from botclave_cli.validate.config import ValidationConfig

    strategy, validation = _configs(tmp)
    store = Store(data_dir)
    v = backtest_validator(
        store, find_trades(store, "synth", "spot", "BTC/USDT", None),
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 1, 1, 6, tzinfo=dt.UTC),
        load_model(strategy, StrategyParams), load_exchange_config(None),
        load_model(validation, ValidationConfig), executor=executor)
    v.checkpoint = Checkpoint(tmp / PARTIAL_DIR, run_key(v.evaluator, code_version()))
    v.evaluator = SlowEvaluator(v.evaluator, 0.15)
    return v


def _when(predicate, action) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + 120
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.02)
        action()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_worker_killed_mid_run_changes_nothing(tmp_path, data_dir, serial):  # noqa: F811
    with local_cluster(tmp_path / "c", workers=2) as c, DaskExecutor(c.address) as ex:
        v = _validator(tmp_path / "v", data_dir, ex)
        saved = v.checkpoint.directory
        victim = c.workers[0]
        watcher = _when(lambda: len(list(saved.glob("*.json"))) >= 4, lambda: c.kill(victim))
        result = v.run("walk-forward")
        watcher.join()
        assert victim.poll() is not None  # it died mid-run, with work left
        assert v.checkpoint.evaluated == 3 * 4 + 3
        assert c.worker_names() == ["w1"]  # the survivor did the dead one's share
    result.write(tmp_path / "out")
    assert _files(tmp_path / "out") == serial["walk-forward"]


def test_scheduler_lost_mid_run_exit_4_keeps_the_saved_and_resumes_serially(
        tmp_path, data_dir, serial):  # noqa: F811
    with local_cluster(tmp_path / "c", workers=2) as c, DaskExecutor(c.address) as ex:
        v = _validator(tmp_path / "v", data_dir, ex)
        saved = v.checkpoint.directory
        watcher = _when(lambda: len(list(saved.glob("*.json"))) >= 3,
                        lambda: c.kill(c.scheduler))
        with pytest.raises(ClusterUnreachable, match=f"dask={c.address}: the Dask scheduler "
                           "cannot be reached") as err:
            v.run("walk-forward")
        watcher.join()
        assert err.value.exit_code == 4
    kept = len(list(saved.glob("*.json")))
    assert 3 <= kept < 3 * 4 + 3
    # the laptop: the same validation, serially, takes the saved evaluations
    from botclave_cli.validate.executor import SerialExecutor

    again = _validator(tmp_path / "v", data_dir, SerialExecutor())
    result = again.run("walk-forward")
    assert again.checkpoint.reused == kept
    result.write(tmp_path / "out")
    assert _files(tmp_path / "out") == serial["walk-forward"]


def test_unreachable_scheduler_is_one_line_and_exit_4(tmp_path, data_dir, monkeypatch):  # noqa: F811
    monkeypatch.setattr(cl, "CONNECT_TIMEOUT_S", 1.0)
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    res = _validate(tmp_path, data_dir, "walk-forward", "--executor", f"dask={address}")
    assert res.exit_code == 4
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: --executor dask={address}: the Dask scheduler cannot be reached")


def test_a_serial_run_cut_short_resumes_on_the_cluster(tmp_path, data_dir, cluster,  # noqa: F811
                                                       serial, monkeypatch):
    _count(monkeypatch, limit=7)  # the disk fills after 7 evaluations, in this process
    res = _validate(tmp_path, data_dir, "all", "--executor", "serial", "--json")
    assert res.exit_code == 1 and "No space left on device" in res.stderr
    calls = _count(monkeypatch)
    res = _validate(tmp_path, data_dir, "all", "--executor", f"dask={cluster.address}",
                    "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["resume"]["reused"] == 7
    assert calls == []  # none evaluated in this process: the rest ran on the workers
    assert _files(Path(data["folder"])) == serial["all"]
    assert not (Path(data["folder"]).parent / PARTIAL_DIR).exists()


def test_a_scheduler_without_workers_is_exit_4(tmp_path, data_dir, monkeypatch):  # noqa: F811
    monkeypatch.setattr(cl, "CONNECT_TIMEOUT_S", 1.0)
    with local_cluster(tmp_path / "c", workers=0) as c:
        res = _validate(tmp_path, data_dir, "oos", "--executor", f"dask={c.address}")
    assert res.exit_code == 4
    assert res.stderr.strip().splitlines() == [
        f"error: --executor dask={c.address}: the scheduler answers but no worker joined it "
        f"within 1 s; start workers with `dask worker {c.address}`"]
