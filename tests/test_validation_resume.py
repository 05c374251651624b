"""An interrupted validation resumes: finished evaluations are reused, the output is the same.

The toy evaluator runs the validations; a wrapper counts its evaluations and raises (or kills
its process with SIGKILL) after N of them. A rerun with the same checkpoint must evaluate only
the rest, and write files byte-identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from botclave_cli.validate.checkpoint import Checkpoint, decode, encode, run_key
from botclave_cli.validate.evaluation import Outcome, Timeline
from botclave_cli.validate.executor import ProcessExecutor
from botclave_cli.validate.param_space import build_space
from botclave_cli.validate.validator import StrategyValidator
from tests.conftest import PROJECT_ROOT
from tests.test_validation_toy import ToyEvaluator, make_market
from tests.test_validator import BAR, START, _config

MARKET = make_market(700, seed=5, ar=0.15)
CODE = "test-code-1"


class Interrupted(Exception):
    pass


@dataclass(frozen=True)
class Counting:
    """The toy evaluator, counting its calls (in this process) and raising after ``limit``."""

    inner: ToyEvaluator
    limit: int | None = None
    calls: list[int] = field(default_factory=list)

    def __call__(self, params, start_us, end_us):
        if self.limit is not None and len(self.calls) >= self.limit:
            raise Interrupted(f"stopped after {self.limit} evaluations")
        self.calls.append(1)
        return self.inner(params, start_us, end_us)


def _toy(market=MARKET, cost=0.0002) -> ToyEvaluator:
    return ToyEvaluator(market, Timeline(START, START + len(market) * BAR, BAR), cost)


def _validator(evaluator, checkpoint=None, executor=None, cfg=None) -> StrategyValidator:
    cfg = cfg or _config()
    tl = Timeline(START, START + len(MARKET) * BAR, BAR)
    return StrategyValidator(evaluator, tl, cfg, build_space(cfg), executor,
                             checkpoint=checkpoint)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run without a checkpoint: (files, evaluations it made)."""
    ev = Counting(_toy())
    out = tmp_path_factory.mktemp("ref") / "validation"
    _validator(ev).run("all").write(out)
    return _files(out), len(ev.calls)


def _checkpoint(tmp: Path, evaluator=None, code=CODE, resume=True) -> Checkpoint:
    return Checkpoint(tmp / "partial", run_key(evaluator or _toy(), code), resume=resume)


def test_interrupted_run_resumes_with_only_the_rest_and_identical_output(tmp_path, reference):
    ref_files, total = reference
    assert total == 3 * 6 + 3 + 6 + 1 + 6  # wf search, wf oos, holdout search + oos, pbo
    with pytest.raises(Interrupted):
        _validator(Counting(_toy(), limit=17), _checkpoint(tmp_path)).run("all")
    assert len(list((tmp_path / "partial").glob("*.json"))) == 17
    ev = Counting(_toy())
    ck = _checkpoint(tmp_path)
    _validator(ev, ck).run("all").write(tmp_path / "validation")
    assert len(ev.calls) == total - 17
    assert (ck.reused, ck.evaluated, ck.warnings) == (17, total - 17, [])
    assert _files(tmp_path / "validation") == ref_files
    # a third run has everything: nothing is evaluated
    ev = Counting(_toy())
    _validator(ev, _checkpoint(tmp_path)).run("all").write(tmp_path / "again")
    assert ev.calls == [] and _files(tmp_path / "again") == ref_files


def test_changed_config_data_or_code_reuse_nothing(tmp_path, reference):
    ref_files, total = reference
    _validator(_toy(), _checkpoint(tmp_path)).run("all")
    assert len(list((tmp_path / "partial").glob("*.json"))) == total
    changed = {"cost": _toy(cost=0.0003),
               "data": _toy(market=np.concatenate([MARKET[:-1], [MARKET[-1] + 1e-9]]))}
    for what, toy in changed.items():
        ev = Counting(toy)
        ck = _checkpoint(tmp_path, toy)
        _validator(ev, ck).run("all")
        assert (len(ev.calls), ck.reused) == (total, 0), what
    ev = Counting(_toy())
    ck = _checkpoint(tmp_path, code="test-code-2")
    _validator(ev, ck).run("all")
    assert (len(ev.calls), ck.reused) == (total, 0)


def test_changed_parameter_space_reevaluates_the_new_sets_only(tmp_path, reference):
    _, total = reference
    _validator(_toy(), _checkpoint(tmp_path)).run("pbo")  # 6 sets over the whole range
    cfg = _config(parameters={"lookback": [3, 8, 21], "threshold": [0.0, 0.02]})
    ev = Counting(_toy())
    ck = _checkpoint(tmp_path)
    _validator(ev, ck, cfg=cfg).run("pbo")
    assert (len(ev.calls), ck.reused) == (2, 4)  # lookback 21 with both thresholds is new


def test_no_resume_discards_the_checkpoint(tmp_path, reference):
    _, total = reference
    _validator(_toy(), _checkpoint(tmp_path)).run("all")
    ev = Counting(_toy())
    ck = _checkpoint(tmp_path, resume=False)
    _validator(ev, ck).run("all")
    assert (len(ev.calls), ck.reused) == (total, 0)


def test_corrupt_or_truncated_files_are_warned_and_evaluated_again(tmp_path, reference):
    ref_files, total = reference
    _validator(_toy(), _checkpoint(tmp_path)).run("all")
    files = sorted((tmp_path / "partial").glob("*.json"))
    text = files[0].read_text()
    files[0].write_text(text[: len(text) // 2])  # truncated
    files[1].write_text("not json at all")
    other = json.loads(files[2].read_text())
    other["key"] = "0" * 64  # a file under the wrong name
    files[2].write_text(json.dumps(other))
    bad = json.loads(files[3].read_text())
    bad["returns"] = "AAAA"  # base64, but not a compressed series
    files[3].write_text(json.dumps(bad))
    ev = Counting(_toy())
    ck = _checkpoint(tmp_path)
    _validator(ev, ck).run("all").write(tmp_path / "validation")
    assert len(ev.calls) == 4 and ck.reused == total - 4
    assert len(ck.warnings) == 4
    assert all("corrupt or truncated" in w and "evaluated again" in w for w in ck.warnings)
    assert {Path(w.split()[1].rstrip(":")).name for w in ck.warnings} == \
        {f.name for f in files[:4]}
    assert _files(tmp_path / "validation") == ref_files


def test_encoding_round_trips_exactly():
    out = Outcome({"sharpe": 1 / 3, "trades": 4, "profit_factor": float("inf"),
                   "avg_r": None, "x": float("nan")}, 5, 0.1 + 0.2, float("nan"), -2.5e-300,
                  np.array([0.1, -1 / 7, 5e-324]), np.array([]))
    back = decode(encode("k", out), "k")
    assert back.metrics["sharpe"] == 1 / 3 and type(back.metrics["trades"]) is int
    assert back.metrics["profit_factor"] == float("inf") and back.metrics["avg_r"] is None
    assert np.isnan(back.metrics["x"]) and np.isnan(back.skew)
    assert (back.n_bars, back.sr_per_bar, back.kurtosis) == (5, 0.1 + 0.2, -2.5e-300)
    assert back.returns.tobytes() == out.returns.tobytes() and back.trade_returns.size == 0
    with pytest.raises(ValueError):
        decode(encode("k", out), "other key")


def test_pool_workers_save_their_evaluations(tmp_path, reference):
    ref_files, total = reference
    with ProcessExecutor(2) as pool:
        _validator(_toy(), _checkpoint(tmp_path), executor=pool).run("all")
    assert len(list((tmp_path / "partial").glob("*.json"))) == total
    ev = Counting(_toy())
    _validator(ev, _checkpoint(tmp_path)).run("all").write(tmp_path / "validation")
    assert ev.calls == [] and _files(tmp_path / "validation") == ref_files


KILLED = """
import os, signal, sys
sys.path.insert(0, {root!r})
from tests.test_validation_resume import Counting, _checkpoint, _toy, _validator
from pathlib import Path

class Killer(Counting):
    def __call__(self, params, start_us, end_us):
        if len(self.calls) == {n}:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(params, start_us, end_us)

_validator(Killer(_toy()), _checkpoint(Path({tmp!r}))).run("all")
"""


def test_sigkilled_run_resumes(tmp_path, reference):
    ref_files, total = reference
    code = KILLED.format(root=str(PROJECT_ROOT), n=11, tmp=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert len(list((tmp_path / "partial").glob("*.json"))) == 11
    ev = Counting(_toy())
    ck = _checkpoint(tmp_path)
    _validator(ev, ck).run("all").write(tmp_path / "validation")
    assert len(ev.calls) == total - 11 and ck.reused == 11
    assert _files(tmp_path / "validation") == ref_files
