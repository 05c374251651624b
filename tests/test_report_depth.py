"""``report --run`` rebuilds the depth heatmap and walls when the store has book data for the
run's window (the same code as the pipeline's depth stage), and says why not when it has none."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from botclave_cli.data.store import Store
from botclave_cli.data.synth import read_truth, truth_path
from botclave_cli.pipeline import PipelineConfig, run_pipeline
from botclave_cli.report import sources
from botclave_cli.report.sources import has_book, report_for_run
from tests.test_cron import make_store

WALLS = "Liquidity walls (book)"
NO_BOOK = "depth heatmap, walls and absorption zones: no book data"


def capture(monkeypatch) -> list:
    """Every ReportInput handed to write_report (the pipeline's first, then report --run's)."""
    from botclave_cli.report import report as report_mod

    seen: list = []
    real = report_mod.write_report

    def keep(report, out_dir):
        seen.append(report)
        return real(report, out_dir)

    monkeypatch.setattr(report_mod, "write_report", keep)
    monkeypatch.setattr(sources, "write_report", keep)
    return seen


def pipeline(tmp_path: Path, **extra) -> PipelineConfig:
    data = {"title": "depth report test", "data_dir": str(tmp_path / "ds"),
            "reports_dir": str(tmp_path / "reports"), "footprint": {"enabled": False},
            "validate": {"enabled": False}}
    data.update(extra)
    return PipelineConfig.model_validate(data)


@pytest.fixture(scope="module")
def with_book(tmp_path_factory):
    """The synthetic market (book + trades) from 03:30 to 05:30: both planted bid walls."""
    tmp_path = tmp_path_factory.mktemp("book")
    mp = pytest.MonkeyPatch()
    seen = capture(mp)
    try:
        cfg = pipeline(tmp_path, **{"from": "2024-01-01T03:30:00", "to": "2024-01-01T05:30:00",
                                    "synth": {"trades_per_day": 5_000},
                                    "depth": {"enabled": True, "interval": "1s"}})
        result = run_pipeline(cfg)
        store = Store(tmp_path / "ds")
        written = report_for_run(tmp_path / "reports", result.run_id, store=store)
    finally:
        mp.undo()
    return seen[0], seen[-1], written, store


def findings(report) -> dict:
    return dict(report.findings)


def test_report_run_rebuilds_heatmap_and_walls_from_the_book(with_book):
    piped, rerun, written, store = with_book
    assert rerun is not piped
    names = [c.name for c in rerun.charts]
    assert "depth_heatmap" in names
    assert not any(NO_BOOK in n or "not rebuilt" in n for n in rerun.notes)
    # the planted walls (truth.json) are in the --run report, at their price, on the bid
    truth = read_truth(truth_path(store, "BTC/USDT"))
    walls = findings(rerun)[WALLS]
    for planted in truth.events_of("bid_wall"):
        assert any(w["side"] == "bid" and w["price"] == pytest.approx(planted.price_low)
                   for w in walls), planted
    # ... the same walls the pipeline's own report listed (same code, same book)
    assert walls == findings(piped)[WALLS]
    html = written.report.read_text(encoding="utf-8")
    assert 'id="chart-depth_heatmap"' in html and WALLS in html


def test_book_outside_the_window_is_no_book(with_book):
    _, _, _, store = with_book
    day = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert has_book(store, "synth", "spot", "BTC/USDT", day, day + dt.timedelta(hours=1))
    later = day + dt.timedelta(days=3)
    assert not has_book(store, "synth", "spot", "BTC/USDT", later, later + dt.timedelta(hours=1))
    assert not has_book(store, "synth", "spot", "ETH/USDT", day, day + dt.timedelta(hours=1))


def test_report_run_without_book_data_keeps_the_note(tmp_path: Path, monkeypatch):
    make_store(tmp_path / "ds", hours=6, n=6000, seed=3)  # trades only
    seen = capture(monkeypatch)
    result = run_pipeline(pipeline(tmp_path, **{"from": "2024-01-01T00:00:00",
                                                "to": "2024-01-01T06:00:00",
                                                "depth": {"enabled": True}}))
    written = report_for_run(tmp_path / "reports", result.run_id, store=Store(tmp_path / "ds"))
    rerun = seen[-1]
    assert "candlesticks" in [c.name for c in rerun.charts]
    assert "depth_heatmap" not in [c.name for c in rerun.charts]
    assert WALLS not in findings(rerun)
    assert any(n.startswith(NO_BOOK) for n in rerun.notes), rerun.notes
    assert NO_BOOK in written.report.read_text(encoding="utf-8")
