"""``report --run`` draws the Monte Carlo section the pipeline's report has: the fan of the run's
trades in random orders (same code, runs and seed as the pipeline's validate stage) and the
drawdown distributions of the stored validation; without them, a note says why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from botclave_cli.backtest.results import read_results, write_results
from botclave_cli.data.store import Store
from botclave_cli.pipeline import run_pipeline
from botclave_cli.report.sources import monte_carlo_fan_settings, report_for_run
from botclave_cli.validate.config import MonteCarloConfig
from botclave_cli.validate.verdict import ValidationResult
from tests.test_backtest_run import random_trades, run
from tests.test_cron import make_store
from tests.test_report_depth import capture
from tests.test_report_pipeline import config

FAN_NOTE = "Monte Carlo fan: the run has"
DIST_NOTE = "Monte Carlo drawdown distribution: no Monte Carlo results in"
BANDS = ("p5", "p25", "median", "p75", "p95")


def charts(report) -> dict:
    return {c.name: c for c in report.charts}


def check_fan_bounds(fan: dict, pnl: np.ndarray, start: float) -> None:
    """Every band lies between the k worst and the k best trades added to the start, and all
    end at start + total P&L (a reshuffle changes the order, never the sum)."""
    worst = start + np.concatenate([[0.0], np.cumsum(np.sort(pnl))])
    best = start + np.concatenate([[0.0], np.cumsum(np.sort(pnl)[::-1])])
    for band in BANDS:
        assert len(fan[band]) == pnl.size + 1
        assert np.all(fan[band] >= worst - 1e-9) and np.all(fan[band] <= best + 1e-9), band
        assert fan[band][0] == start
        assert fan[band][-1] == pytest.approx(start + pnl.sum(), abs=1e-6)


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    """A pipeline run with validation (50 Monte Carlo runs, not the default 200), then
    ``report --run`` of it."""
    tmp_path = tmp_path_factory.mktemp("mc")
    make_store(tmp_path / "ds", hours=6, n=6000, seed=4)
    mp = pytest.MonkeyPatch()
    seen = capture(mp)
    project = Path(__file__).resolve().parents[1]
    try:
        cfg = config(tmp_path, validate={"enabled": True, "folds": 2, "mc_runs": 50, "jobs": 1},
                     validation_config=str(project / "configs" / "validation.yaml"))
        result = run_pipeline(cfg)
        written = report_for_run(tmp_path / "reports", result.run_id)
    finally:
        mp.undo()
    return seen[0], seen[-1], written, tmp_path / "reports" / "runs" / result.run_id


def test_report_run_draws_the_pipelines_monte_carlo_section(validated):
    piped, rerun, written, folder = validated
    assert rerun is not piped
    fan, piped_fan = charts(rerun)["monte_carlo_fan"], charts(piped)["monte_carlo_fan"]
    assert fan.data["runs"] == piped_fan.data["runs"] == 50  # the validation's runs
    for band in BANDS:
        np.testing.assert_array_equal(fan.data[band], piped_fan.data[band])
    assert fan.title == piped_fan.title
    stored = read_results(folder)
    pnl = stored["trades"]["pnl"].drop_nulls().to_numpy()
    assert pnl.size >= 2
    check_fan_bounds(fan.data, pnl, stored["metrics"]["start_equity"])
    # the drawdown distributions: the same charts, from the stored validation tables
    dists = sorted(n for n in charts(piped) if n.startswith("drawdown_distribution_"))
    assert dists == sorted(n for n in charts(rerun) if n.startswith("drawdown_distribution_"))
    assert dists == ["drawdown_distribution_bootstrap", "drawdown_distribution_reshuffle"]
    for name in dists:
        np.testing.assert_array_equal(charts(rerun)[name].data["counts"],
                                      charts(piped)[name].data["counts"])
    # the Monte Carlo charts stand in the same order as in the pipeline's report
    order = [c.name for c in piped.charts if c.name in charts(rerun)]
    assert order == [c.name for c in rerun.charts if c.name in charts(piped)]
    assert not any(n.startswith((FAN_NOTE, DIST_NOTE)) for n in rerun.notes), rerun.notes
    html = written.report.read_text(encoding="utf-8")
    assert 'id="chart-monte_carlo_fan"' in html and 'id="chart-drawdown_distribution_reshuffle"' \
        in html


def test_fan_settings_come_from_the_validation_or_the_defaults(validated, tmp_path: Path):
    *_, folder = validated
    assert monte_carlo_fan_settings(folder / "validation") == (50, MonteCarloConfig().seed)
    assert monte_carlo_fan_settings(tmp_path) == (MonteCarloConfig().runs,
                                                  MonteCarloConfig().seed)
    skipped = tmp_path / "skipped"
    ValidationResult("monte-carlo", sections={"monte_carlo": {"reshuffle": None}}).write(skipped)
    assert monte_carlo_fan_settings(skipped) == (MonteCarloConfig().runs,
                                                 MonteCarloConfig().seed)


def test_report_run_without_validation_draws_the_fan_and_says_why_no_distribution(
        tmp_path: Path, monkeypatch):
    make_store(tmp_path / "ds", hours=6, n=6000, seed=4)
    seen = capture(monkeypatch)
    result = run_pipeline(config(tmp_path))  # validate disabled: no validation folder
    piped = seen[-1]
    assert "monte_carlo_fan" not in charts(piped)
    written = report_for_run(tmp_path / "reports", result.run_id, store=Store(tmp_path / "ds"))
    rerun = seen[-1]
    fan = charts(rerun)["monte_carlo_fan"]
    assert fan.data["runs"] == MonteCarloConfig().runs
    folder = tmp_path / "reports" / "runs" / result.run_id
    stored = read_results(folder)
    check_fan_bounds(fan.data, stored["trades"]["pnl"].drop_nulls().to_numpy(),
                     stored["metrics"]["start_equity"])
    assert not [n for n in charts(rerun) if n.startswith("drawdown_distribution")]
    note = f"{DIST_NOTE} {folder / 'validation'}"
    assert any(n.startswith(note) for n in rerun.notes), rerun.notes
    assert not any(n.startswith(FAN_NOTE) for n in rerun.notes)
    assert DIST_NOTE in written.report.read_text(encoding="utf-8")


def test_report_run_with_one_trade_says_why_there_is_no_monte_carlo(tmp_path: Path,
                                                                   monkeypatch):
    res = run(trades=random_trades(n=2000, hours=1))
    assert res.trades["pnl"].drop_nulls().len() == 1
    rid, folder = write_results(res, tmp_path)
    # a validation whose Monte Carlo was skipped (too few trades): no tables either
    ValidationResult("monte-carlo", verdict="warn",
                     reasons=["warn: Monte Carlo reshuffle skipped: 1 trades"],
                     sections={"monte_carlo": {"reshuffle": None}}).write(folder / "validation")
    seen = capture(monkeypatch)
    written = report_for_run(tmp_path, rid)
    report = seen[-1]
    assert not [n for n in charts(report) if n.startswith(("monte_carlo", "drawdown_distrib"))]
    fan_notes = [n for n in report.notes if n.startswith(FAN_NOTE)]
    assert fan_notes == ["Monte Carlo fan: the run has 1 closed trade(s); reshuffling their "
                         "order needs at least 2"]
    assert any(n.startswith(DIST_NOTE) for n in report.notes)
    assert report.validation is not None and report.validation.verdict == "warn"
    html = written.report.read_text(encoding="utf-8")
    assert "reshuffling their order needs at least 2" in html
    assert json.loads((folder / "validation" / "validation.json").read_text())["verdict"] == \
        "warn"
