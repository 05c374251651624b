"""Honest figures: ratios annualised from fewer than 30 days carry a flag with their period
count (summary line, report, index), and a verdict names every bound its figures met."""

from __future__ import annotations

from pathlib import Path

import pytest

from botclave_cli.pipeline.run import PipelineResult
from botclave_cli.report.index import render_index
from botclave_cli.report.report import metrics_window, short_window
from botclave_cli.validate.config import Thresholds, VerdictConfig
from botclave_cli.validate.verdict import ValidationResult, apply_verdict, passed_checks

FLAG = "annualised from 1,440 periods (1.0 days < 30): too short to annualise"


def test_short_window_by_hand():
    assert short_window(1_440, 1.0) == FLAG
    assert short_window(43_200, 30.0) is None  # 30 days of 1m bars: long enough
    assert short_window(43_199, 29.999) is not None
    assert short_window(None, 1.0) is None and short_window(10, None) is None
    # a year of 1m periods is 525,600 (365 days): 1,440 of them span one day
    assert metrics_window({"periods": 1_440, "periods_per_year": 525_600}) == FLAG
    assert metrics_window({"periods": 120, "periods_per_year": 8_760}) == (
        "annualised from 120 periods (5.0 days < 30): too short to annualise")
    assert metrics_window({"periods": 1_440}) is None


def test_summary_line_and_index_flag_annualised_figures_only():
    metrics = {"total_return": 0.01, "sharpe": 12.5, "trades": 3, "periods": 1_440,
               "periods_per_year": 525_600.0}
    result = PipelineResult(run_id="r", report=Path("r/report.html"), index=Path("i"),
                            files=None, metrics=metrics, verdict="fail",  # type: ignore[arg-type]
                            stages=[])
    line = result.summary_line()
    assert f"sharpe 12.5 [{FLAG}]" in line
    assert "return_pct 1;" in line and "trades 3;" in line  # not annualised: no flag
    html = render_index([{"run_id": "r", "title": "t", "created": "2024-01-01T00:00:00",
                          "key_metrics": {"sharpe": 12.5, "trades": 3}, "short_window": FLAG,
                          "verdict": "fail", "href": "x"}])
    assert html.count("too short to annualise") == 2  # the title attribute and the text
    long = dict(metrics, periods=100_000)
    assert "[" not in PipelineResult(run_id="r", report=Path("r"), index=Path("i"),
                                     files=None, metrics=long, verdict=None,  # type: ignore
                                     stages=[]).summary_line().split("; ", 1)[1]


def test_checks_name_every_bound_met():
    cfg = VerdictConfig(fail=Thresholds(oos_sharpe_min=0.0, pbo_max=0.5),
                        warn=Thresholds(oos_sharpe_min=0.5, psr_min=0.95, pbo_max=0.2))
    figures = {"oos_sharpe": 1.25, "psr": 0.97, "pbo": 0.3, "dsr": 0.5}
    assert passed_checks(figures, cfg) == [
        "pass: oos_sharpe 1.25 >= 0.5 (warn), >= 0 (fail)", "pass: psr 0.97 >= 0.95 (warn)"]
    out = ValidationResult("all", figures=figures)
    apply_verdict(out, cfg)
    assert out.verdict == "warn" and out.reasons == ["warn: pbo 0.3 > 0.2"]
    assert out.checks == passed_checks(figures, cfg)  # dsr has no bound: not listed
    assert out.as_dict()["checks"] == out.checks
    assert passed_checks({"psr": None}, cfg) == []  # undefined: a reason, never a pass


@pytest.mark.parametrize("value, listed", [(0.5, True), (0.4999, False)])
def test_a_bound_met_exactly_is_a_pass(value, listed):
    cfg = VerdictConfig(fail=Thresholds(), warn=Thresholds(oos_sharpe_min=0.5))
    assert bool(passed_checks({"oos_sharpe": value}, cfg)) is listed
