"""``botclave validate`` resumes an interrupted run: only the rest is evaluated, same files."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from botclave_cli.cli.validate import PARTIAL_DIR
from botclave_cli.validate import backtest_evaluator as be
from tests.test_validate_cli import _validate, data_dir  # noqa: F401 - the fixture

ORIGINAL = be.BacktestEvaluator.__call__
TOTAL = 3 * 4 + 3 + 4 + 1 + 4  # walk-forward search + oos, holdout search + oos, pbo


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _count(monkeypatch, limit: int | None = None) -> list[int]:
    """Count the backtest evaluations; after ``limit`` of them the disk is full."""
    calls: list[int] = []

    def counted(self, params, start_us, end_us):
        if limit is not None and len(calls) >= limit:
            raise OSError(errno.ENOSPC, "No space left on device")
        calls.append(1)
        return ORIGINAL(self, params, start_us, end_us)

    monkeypatch.setattr(be.BacktestEvaluator, "__call__", counted)
    return calls


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir):  # noqa: F811
    tmp = tmp_path_factory.mktemp("ref")
    mp = pytest.MonkeyPatch()
    try:
        calls = _count(mp)
        res = _validate(tmp, data_dir, "all", "--jobs", "1", "--json")
    finally:
        mp.undo()
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert len(calls) == TOTAL
    return data, _files(Path(data["folder"]))


def test_first_run_evaluates_everything_and_leaves_no_checkpoint(reference):
    data, _ = reference
    assert data["resume"]["reused"] == 0 and data["resume"]["evaluated"] == TOTAL
    run_folder = Path(data["folder"]).parent
    assert data["resume"]["checkpoint"] == str(run_folder / PARTIAL_DIR)
    assert not (run_folder / PARTIAL_DIR).exists()


def test_interrupted_command_resumes(tmp_path, data_dir, reference, monkeypatch):  # noqa: F811
    ref, ref_files = reference
    _count(monkeypatch, limit=9)
    res = _validate(tmp_path, data_dir, "all", "--jobs", "1", "--json")
    assert res.exit_code == 1 and "No space left on device" in res.stderr
    run_folder = tmp_path / "reports" / "runs" / ref["run_id"]
    assert not (run_folder / "validation").exists()
    assert len(list((run_folder / PARTIAL_DIR).glob("*.json"))) == 9
    calls = _count(monkeypatch)
    res = _validate(tmp_path, data_dir, "all", "--jobs", "1", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert len(calls) == TOTAL - 9
    assert (data["resume"]["reused"], data["resume"]["evaluated"]) == (9, TOTAL - 9)
    assert _files(run_folder / "validation") == ref_files
    assert not (run_folder / PARTIAL_DIR).exists()
    # interrupted again, then --no-resume: everything is evaluated
    _count(monkeypatch, limit=5)
    assert _validate(tmp_path, data_dir, "all", "--jobs", "1").exit_code == 1
    calls = _count(monkeypatch)
    res = _validate(tmp_path, data_dir, "all", "--jobs", "1", "--json", "--no-resume")
    assert res.exit_code == 0 and len(calls) == TOTAL
    assert json.loads(res.stdout)["resume"]["reused"] == 0
    assert _files(run_folder / "validation") == ref_files


def test_a_corrupt_checkpoint_file_is_a_warning(tmp_path, data_dir, reference,  # noqa: F811
                                                monkeypatch):
    ref, ref_files = reference
    _count(monkeypatch, limit=6)
    assert _validate(tmp_path, data_dir, "all", "--jobs", "1").exit_code == 1
    partial = tmp_path / "reports" / "runs" / ref["run_id"] / PARTIAL_DIR
    victim = sorted(partial.glob("*.json"))[0]
    victim.write_bytes(victim.read_bytes()[:40])
    calls = _count(monkeypatch)
    res = _validate(tmp_path, data_dir, "all", "--jobs", "1")
    assert res.exit_code == 0, res.output
    assert len(calls) == TOTAL - 5
    assert f"warning: checkpoint {victim}: corrupt or truncated" in res.stderr
    assert _files(tmp_path / "reports" / "runs" / ref["run_id"] / "validation") == ref_files
