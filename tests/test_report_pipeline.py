"""The pipeline's report holds what the layers computed: the equity chart ends at the backtest's
final equity, the trade list is the run's trades, and ``report --run/--latest`` rebuilds the
same sections from the stored run."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from botclave_cli.backtest.results import read_results
from botclave_cli.cli.app import app
from botclave_cli.errors import UsageError
from botclave_cli.pipeline import PipelineConfig, run_pipeline
from botclave_cli.report.sources import find_run
from tests.test_cron import make_store


def config(tmp_path: Path, **extra) -> PipelineConfig:
    data = {"title": "pipeline test", "from": "2024-01-01T00:00:00", "to": "2024-01-01T06:00:00",
            "data_dir": str(tmp_path / "ds"), "reports_dir": str(tmp_path / "reports"),
            "footprint": {"enabled": False}, "depth": {"enabled": False},
            "validate": {"enabled": False}}
    data.update(extra)
    return PipelineConfig.model_validate(data)


def capture_report(monkeypatch) -> dict:
    """Have ``write_report`` also hand the Report it was given to the test (key ``report``)."""
    from botclave_cli.report import report as pipeline_mod

    captured = {}
    real = pipeline_mod.write_report

    def capture(report, out_dir):
        captured["report"] = report
        return real(report, out_dir)

    monkeypatch.setattr(pipeline_mod, "write_report", capture)
    return captured


@pytest.fixture()
def piped(tmp_path: Path, monkeypatch):
    """A pipeline run with charts captured as the report got them."""
    make_store(tmp_path / "ds", hours=6, n=6000, seed=3)
    captured = capture_report(monkeypatch)
    result = run_pipeline(config(tmp_path))
    return result, captured["report"], tmp_path


def test_equity_chart_ends_at_final_equity_and_trades_match(piped):
    result, report, tmp_path = piped
    stored = read_results(tmp_path / "reports" / "runs" / result.run_id)
    charts = {c.name: c for c in report.charts}
    assert set(charts) >= {"candlesticks", "equity", "drawdown"}
    line = charts["equity"].figure.axes[0].lines[0].get_ydata()
    assert line[-1] == stored["equity"]["equity"][-1] == stored["metrics"]["final_equity"]
    assert len(line) == stored["equity"].height
    dd = charts["drawdown"].data["max_drawdown_pct"]
    assert dd == pytest.approx(stored["metrics"]["max_drawdown"] * 100, abs=1e-9)
    assert report.trades is not None
    assert report.trades["pnl"].to_list() == stored["trades"]["pnl"].to_list()
    assert result.metrics["trades"] == stored["trades"].height
    assert result.run_id == stored["manifest"]["run_id"]
    html = result.report.read_text(encoding="utf-8")
    assert f"{stored['trades'].height:,} trade(s)" in html
    assert result.report == tmp_path / "reports" / "html" / result.run_id / "report.html"


def test_candles_are_the_trades_bars(piped):
    _, report, tmp_path = piped
    candles = next(c for c in report.charts if c.name == "candlesticks")
    trades = pl.read_parquet(tmp_path / "ds" / "synth/spot/BTC-USDT/trades/**/*.parquet")
    assert candles.data["volume"].sum() == pytest.approx(trades["qty"].sum(), rel=1e-12)
    assert candles.data["high"].max() == trades["price"].max()
    assert candles.data["close"][-1] == trades.sort("ts")["price"][-1]


def test_report_run_and_latest_rebuild_the_report(piped):
    result, _, tmp_path = piped
    reports = tmp_path / "reports"
    before = json.loads((result.report.parent / "report.json").read_text())
    runner = CliRunner()
    by_id = runner.invoke(app, ["report", "--run", result.run_id, "--reports-dir", str(reports),
                                "--data-dir", str(tmp_path / "ds")])
    assert by_id.exit_code == 0, by_id.output
    assert by_id.output.strip().startswith(f"report {result.report}; ")
    html = result.report.read_text(encoding="utf-8")
    for chart in ("candlesticks", "footprint", "volume_profile", "cvd", "equity", "drawdown"):
        assert f'id="chart-{chart}"' in html, chart
    latest = runner.invoke(app, ["report", "--latest", "--reports-dir", str(reports), "--json"])
    assert latest.exit_code == 0, latest.output
    data = json.loads(latest.output)
    assert data["run_id"] == result.run_id
    after = json.loads((result.report.parent / "report.json").read_text())
    assert after["key_metrics"] == before["key_metrics"]
    assert find_run(reports, None, latest=True).name == result.run_id


def test_unknown_run_is_a_usage_error(tmp_path: Path):
    with pytest.raises(UsageError, match="--run nope: no run at"):
        find_run(tmp_path, "nope")
    done = CliRunner().invoke(app, ["report", "--run", "nope", "--reports-dir", str(tmp_path)])
    assert done.exit_code == 2
    latest = CliRunner().invoke(app, ["report", "--latest", "--reports-dir", str(tmp_path)])
    assert latest.exit_code == 3 and "no complete run yet" in latest.output


@pytest.fixture()
def full_run(tmp_path: Path, monkeypatch):
    """Footprint and validation stages on the small dataset (no book: depth says why it skips)."""
    make_store(tmp_path / "ds", hours=6, n=6000, seed=4)
    captured = capture_report(monkeypatch)
    project = Path(__file__).resolve().parents[1]
    cfg = config(tmp_path, footprint={"enabled": True, "row_size": 10, "png_bars": 12},
                 depth={"enabled": True},
                 validate={"enabled": True, "folds": 2, "mc_runs": 50, "jobs": 1},
                 validation_config=str(project / "configs" / "validation.yaml"))
    return run_pipeline(cfg), captured["report"], tmp_path


def test_footprint_profile_cvd_and_validation_sections(full_run):
    from botclave_cli.engine.signals.indicators import cvd_bars

    result, report, tmp_path = full_run
    stages = {s.name: s for s in result.stages}
    assert stages["depth"].status == "skipped" and "no book data" in stages["depth"].detail
    assert stages["footprint"].status == "ok" and stages["validate"].status == "ok"
    charts = {c.name: c for c in report.charts}
    assert {"footprint", "volume_profile", "cvd", "monte_carlo_fan", "walk_forward"
            } <= set(charts)
    # the CVD panel is the running sum of the footprint bars' delta
    bars = charts["footprint"].data["bars"]
    cvd_line = charts["cvd"].figure.axes[1].lines[0].get_ydata()
    trades = pl.read_parquet(tmp_path / "ds" / "synth/spot/BTC-USDT/trades/**/*.parquet")
    signed = trades.select(pl.when(pl.col("side") == "buy").then(pl.col("qty"))
                           .otherwise(-pl.col("qty")).sum()).item()
    assert cvd_line[-1] == pytest.approx(signed, abs=1e-6)
    assert len(cvd_line) == report.summary["footprint bars"]
    assert cvd_bars(bars)["cvd"].len() == bars.height <= 12
    # the profile's bars hold every traded quantity once
    profile = charts["volume_profile"].data
    assert profile["volume"].sum() == pytest.approx(trades["qty"].sum(), rel=1e-9)
    assert profile["val"] <= profile["poc"] <= profile["vah"]
    # validation: the verdict and the walk-forward windows come from the stored validation
    stored = json.loads((tmp_path / "reports" / "runs" / result.run_id / "validation" /
                         "validation.json").read_text())
    assert report.validation is not None and report.validation.verdict == stored["verdict"]
    assert result.verdict == stored["verdict"]
    assert report.validation.reasons == stored["reasons"]
    folds = pl.read_parquet(tmp_path / "reports" / "runs" / result.run_id / "validation" /
                            "walk_forward_folds.parquet")
    assert len(charts["walk_forward"].data["spans"]) == folds.height == 2
    tables = sorted((tmp_path / "reports" / "runs" / result.run_id / "validation"
                     ).glob("monte_carlo_*.parquet"))
    assert tables
    for table in tables:
        dist = charts[f"drawdown_distribution_{table.stem.removeprefix('monte_carlo_')}"].data
        mc = pl.read_parquet(table)
        assert dist["counts"].sum() == mc.height
        assert dist["median"] == pytest.approx(mc["max_drawdown"].median() * 100)
    fan = charts["monte_carlo_fan"].data
    final = json.loads((tmp_path / "reports" / "runs" / result.run_id / "metrics.json"
                        ).read_text())
    assert result.metrics["trades"] >= 2  # else there would be no fan to check
    # reshuffling changes the path, never the sum of P&L
    closed_pnl = pl.read_parquet(tmp_path / "reports" / "runs" / result.run_id /
                                 "trades.parquet")["pnl"].sum()
    assert fan["median"][-1] == pytest.approx(final["start_equity"] + closed_pnl)
    html = result.report.read_text(encoding="utf-8")
    assert f"Verdict: <strong>{stored['verdict'].upper()}</strong>" in html
