"""The pipeline's validate stage resumes a killed run (cron's SIGTERM, a reboot): a rerun of the
same window reuses the evaluations saved before the kill, evaluates only the rest, and writes the
same validation files and report; a changed validation setting starts over."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from botclave_cli.backtest import results
from botclave_cli.pipeline import PipelineConfig, Terminated, run_pipeline
from botclave_cli.pipeline.stages import partial_dir
from botclave_cli.validate import backtest_evaluator as be
from tests.test_cron import make_store

ORIGINAL = be.BacktestEvaluator.__call__
# 4 parameter sets, 2 walk-forward folds: the walk-forward's searches (2 x 4) and out-of-sample
# runs (2), the holdout's search (4) and out-of-sample run (1), PBO's whole-range runs (4)
TOTAL = 2 * 4 + 2 + 4 + 1 + 4


#: the code version every run here has: the real one names the git commit, and others commit
#: to this clone while the tests run (a new commit rightly reuses nothing, and is another run id)
CODE = "0.0.0+resume-test"


@pytest.fixture(autouse=True)
def _fixed_code_version(monkeypatch):
    monkeypatch.setattr(results, "code_version", lambda: CODE)


def _count(monkeypatch, limit: int | None = None) -> list[int]:
    """Count the backtest evaluations; the one after ``limit`` of them is killed by SIGTERM
    (the pipeline turns it into ``Terminated``)."""
    calls: list[int] = []

    def counted(self, params, start_us, end_us):
        if limit is not None and len(calls) >= limit:
            raise Terminated("terminated by SIGTERM")
        calls.append(1)
        return ORIGINAL(self, params, start_us, end_us)

    monkeypatch.setattr(be.BacktestEvaluator, "__call__", counted)
    return calls


def _config(tmp: Path, folds: int = 2, mc_runs: int = 20) -> PipelineConfig:
    strategy, validation = tmp / "strategy.yaml", tmp / "validation.yaml"
    strategy.write_text(yaml.safe_dump({"name": "sma_cross",
                                        "risk": {"sizing": "equity_fraction", "fraction": 0.5}}))
    validation.write_text(yaml.safe_dump({
        "parameters": {"sma_cross.fast": [3, 5], "sma_cross.slow": [12, 24]},
        "walk_forward": {"folds": 3, "gap_bars": 2, "min_train_bars": 20, "min_test_bars": 10},
        "monte_carlo": {"runs": 40, "method": "bootstrap", "block_bars": 10},
        "pbo": {"blocks": 4}, "verdict": {"fail": {}, "warn": {}}}))
    return PipelineConfig.model_validate({
        "title": "resume test", "from": "2024-01-01T00:00:00", "to": "2024-01-01T06:00:00",
        "data_dir": str(tmp / "ds"), "reports_dir": str(tmp / "reports"),
        "strategy_config": str(strategy), "validation_config": str(validation),
        "footprint": {"enabled": False}, "depth": {"enabled": False},
        "validate": {"folds": folds, "mc_runs": mc_runs, "jobs": 1}})


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _report(html: Path) -> tuple[str, str]:
    """``report.html`` and ``report.json`` without what differs between any two runs."""
    return _html(html), _html(html.with_name("report.json"))


def _html(path: Path) -> str:
    """The report without what differs between any two runs: when it and the base run (the
    backtest stage writes it each time) were created, the stages' timings, and the validate
    stage's detail (how many evaluations were reused)."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"[\d-]+ [\d:]+ UTC &middot; botclave", "# &middot; botclave", text)
    text = re.sub(r"(created(?:_at)?(?:&#34;|\W)+)[\d:T.+-]+", r"\1#", text)
    text = re.sub(r"(seconds(?:&#34;|\W)+)[0-9.e-]+", r"\1#", text)
    return re.sub(r"\d+ of \d+ evaluation\(s\) reused", "#", text)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted pipeline: (tmp dir, result, validation files, report html)."""
    tmp = tmp_path_factory.mktemp("pipe")
    make_store(tmp / "ds", hours=6, n=6000, seed=3)
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(results, "code_version", lambda: CODE)
        calls = _count(mp)
        result = run_pipeline(_config(tmp))
    finally:
        mp.undo()
    assert len(calls) == TOTAL
    run_folder = tmp / "reports" / "runs" / result.run_id
    validation = _files(run_folder / "validation")
    assert "validation.json" in validation
    assert not partial_dir(run_folder).exists()
    html = _report(result.report)
    shutil.rmtree(tmp / "reports")  # the store stays: the runs below see the same data
    return tmp, result, validation, html


def _validate_detail(result) -> str:
    return next(s.detail for s in result.stages if s.name == "validate")


def test_uninterrupted_run_reuses_nothing_and_leaves_no_checkpoint(reference):
    _, result, _, _ = reference
    assert _validate_detail(result).endswith(f"; 0 of {TOTAL} evaluation(s) reused")


def test_killed_validation_resumes_with_the_same_files(reference, monkeypatch):
    tmp, ref, ref_validation, ref_html = reference
    cfg = _config(tmp)
    run_folder = tmp / "reports" / "runs" / ref.run_id
    try:
        _count(monkeypatch, limit=7)
        with pytest.raises(Terminated):
            run_pipeline(cfg)
        assert not (run_folder / "validation").exists()
        assert len(list(partial_dir(run_folder).glob("*.json"))) == 7
        calls = _count(monkeypatch)
        again = run_pipeline(cfg)
        assert len(calls) == TOTAL - 7
        assert _validate_detail(again).endswith(f"; 7 of {TOTAL} evaluation(s) reused")
        assert again.run_id == ref.run_id
        assert _files(run_folder / "validation") == ref_validation
        assert _report(again.report) == ref_html
        assert not partial_dir(run_folder).exists()
    finally:
        shutil.rmtree(tmp / "reports", ignore_errors=True)


def test_changed_validation_setting_reuses_nothing(reference, monkeypatch):
    """Killed after the walk-forward, the holdout and one PBO run (16): 3 folds instead of 2
    shares the holdout's and PBO's tasks, more Monte Carlo runs shares every task, and still
    none is reused - the pipeline resumes only the validation it was running."""
    tmp, ref, _, _ = reference
    run_folder = tmp / "reports" / "runs" / ref.run_id
    try:
        for limit, changed, total in ((16, _config(tmp, folds=3), 3 * 4 + 3 + 4 + 1 + 4),
                                      (7, _config(tmp, mc_runs=30), TOTAL)):
            _count(monkeypatch, limit=limit)
            with pytest.raises(Terminated):
                run_pipeline(_config(tmp))
            assert len(list(partial_dir(run_folder).glob("*.json"))) == limit
            calls = _count(monkeypatch)
            again = run_pipeline(changed)
            assert len(calls) == total
            assert _validate_detail(again).endswith(f"; 0 of {total} evaluation(s) reused")
            assert not partial_dir(run_folder).exists()
    finally:
        shutil.rmtree(tmp / "reports", ignore_errors=True)


# the CLI as cron runs it, in a child process that gets a real SIGTERM after 5 evaluations
PRELUDE = f"""
from botclave_cli.backtest import results
from botclave_cli.cli.app import main
results.code_version = lambda: {CODE!r}
"""
KILLED = PRELUDE + """
import os, signal
from botclave_cli.validate import backtest_evaluator as be

original, calls = be.BacktestEvaluator.__call__, []

def counted(self, params, start_us, end_us):
    if len(calls) == 5:
        os.kill(os.getpid(), signal.SIGTERM)  # cron's timeout
    calls.append(1)
    return original(self, params, start_us, end_us)

be.BacktestEvaluator.__call__ = counted
main()
"""


def test_sigterm_during_validation_then_cli_rerun(reference, tmp_path):
    tmp, ref, ref_validation, _ = reference
    cfg = _config(tmp)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", by_alias=True)), encoding="utf-8")
    args = ["--log-file", str(tmp_path / "botclave.log"), "report", "--pipeline", str(path)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    run_folder = tmp / "reports" / "runs" / ref.run_id
    try:
        killed = subprocess.run([sys.executable, "-c", KILLED, *args], capture_output=True,
                                text=True, env=env, timeout=300)
        assert killed.returncode == 143, killed.stderr
        assert "terminated by SIGTERM" in killed.stderr
        assert not (run_folder / "validation").exists()
        assert len(list(partial_dir(run_folder).glob("*.json"))) == 5
        again = subprocess.run([sys.executable, "-c", PRELUDE + "main()", *args, "--json"],
                               capture_output=True, text=True, env=env, timeout=300)
        assert again.returncode == 0, again.stderr
        stages = {s["name"]: s for s in json.loads(again.stdout)["stages"]}
        assert stages["validate"]["detail"].endswith(f"; 5 of {TOTAL} evaluation(s) reused")
        assert _files(run_folder / "validation") == ref_validation
        assert not partial_dir(run_folder).exists()
    finally:
        shutil.rmtree(tmp / "reports", ignore_errors=True)
