"""The HTML report and the index: self-contained, every section present, atomic, newest first."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from pathlib import Path

import polars as pl
import pytest

from botclave_cli.report import report as report_mod
from botclave_cli.report.charts import ChartGenerator
from botclave_cli.report.index import list_reports, report_dir, write_index
from botclave_cli.report.report import (
    SECTIONS,
    ReportInput,
    Validation,
    fmt,
    key_metrics,
    render_html,
    write_report,
)

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def sample(run_id: str = "run-a", created: dt.datetime = T0, **changes) -> ReportInput:
    gen = ChartGenerator(dpi=30, width_in=6)
    ts = [T0 + dt.timedelta(minutes=i) for i in range(4)]
    charts = [gen.equity(ts, [100.0, 101.0, 99.0, 102.0]),
              gen.drawdown(ts, [100.0, 101.0, 99.0, 102.0])]
    trades = pl.DataFrame({"entry_ts": ts[:2], "exit_ts": ts[1:3], "side": ["long", "short"],
                           "pnl": [1.0, -2.0]})
    values = dict(
        run_id=run_id, title="BTC/USDT <demo>", created=created,
        summary={"symbol": "BTC/USDT", "from": T0},
        config={"symbol": "BTC/USDT", "api_key": "abcd1234secret"},
        coverage=[{"dataset": "synth/spot/BTC-USDT/trades", "rows": 1200, "gaps": 0}],
        metrics={"total_return_pct": 2.0, "sharpe": 1.25, "trades": 2, "max_drawdown_pct": -1.98},
        charts=charts, trades=trades,
        validation=Validation("warn", ["DSR 0.80 < 0.95"], [("folds", [{"fold": 1, "oos": 0.5}])]),
        manifest={"run_id": run_id, "code_version": "0.1.0"},
    )
    values.update(changes)
    return ReportInput(**values)


def test_html_is_self_contained_with_every_section():
    html = render_html(sample())
    for anchor, _ in SECTIONS:
        assert f'<section id="{anchor}">' in html
        assert f'href="#{anchor}"' in html
    # no network: no external URL in any src/href, no scripts, no external fonts or stylesheets
    assert not re.search(r'(src|href)="(?!#|data:image/png;base64,|charts/)', html)
    assert "<script" not in html and "@import" not in html and "<link" not in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 2
    assert base64.b64decode(images[0])[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_content_escaped_masked_and_tables():
    html = render_html(sample())
    assert "BTC/USDT &lt;demo&gt;" in html and "<demo>" not in html
    assert "abcd1234secret" not in html and "***" in html
    assert "Verdict: <strong>WARN</strong>" in html
    assert "DSR 0.80 &lt; 0.95" in html
    assert "2024-01-01 00:01:00 UTC" in html  # trade times in UTC
    assert html.count("<td>long</td>") == 1 and html.count("<td>short</td>") == 1
    assert "2 trade(s)." in html


def test_trade_list_is_capped_and_says_so(monkeypatch):
    monkeypatch.setattr(report_mod, "MAX_TRADE_ROWS", 3)
    trades = pl.DataFrame({"pnl": [i + 0.25 for i in range(10)]})
    html = render_html(sample(trades=trades))
    assert "10 trade(s); the first 3 are listed" in html
    assert "<td>2.25</td>" in html and "<td>3.25</td>" not in html


def test_empty_run_still_renders_every_section():
    html = render_html(ReportInput(run_id="x", title="empty", summary={}))
    for anchor, _ in SECTIONS:
        assert f'id="{anchor}"' in html
    assert "No trades in this run." in html and "This run was not validated." in html


def test_key_metrics_and_fmt():
    assert key_metrics({"total_return": 0.1, "sharpe_ratio": 2.0, "n_trades": 4,
                        "max_drawdown": -0.25, "win_rate": None}) == {
        "return_pct": 10.0, "sharpe": 2.0, "max_dd_pct": -25.0, "trades": 4}
    assert fmt(1234567) == "1,234,567"
    assert fmt(1 / 3) == "0.333333"
    assert fmt(float("nan")) == "n/a"
    assert fmt(dt.datetime(2024, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))) == (
        "2024-01-01 00:00:00 UTC")


def test_write_report_files_and_index_newest_first(tmp_path: Path):
    reports = tmp_path / "reports"
    older = write_report(sample("run-old", T0), report_dir(reports, "run-old"))
    newer = write_report(sample("run-new", T0 + dt.timedelta(hours=1)),
                         report_dir(reports, "run-new"))
    assert newer.html.read_text(encoding="utf-8") == render_html(
        sample("run-new", T0 + dt.timedelta(hours=1)))
    assert sorted(p.name for p in older.pngs) == ["drawdown.png", "equity.png"]
    assert all(p.stat().st_size > 0 for p in older.pngs)
    entry = json.loads((older.html.parent / "report.json").read_text())
    assert entry["key_metrics"] == {"return_pct": 2.0, "sharpe": 1.25, "max_dd_pct": -1.98,
                                   "trades": 2}
    assert entry["verdict"] == "warn"
    index = write_index(reports)
    assert [e["run_id"] for e in list_reports(reports)] == ["run-new", "run-old"]
    text = index.read_text(encoding="utf-8")
    assert text.index("run-new") < text.index("run-old")
    assert 'href="html/run-new/report.html"' in text
    assert not list(reports.rglob("*.tmp-*"))


def test_failed_render_leaves_previous_report_intact(tmp_path: Path, monkeypatch):
    out = report_dir(tmp_path, "run-a")
    first = write_report(sample(), out)
    before = first.html.read_bytes()

    def boom(_report):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report_mod, "render_html", boom)
    with pytest.raises(RuntimeError):
        write_report(sample(metrics={"sharpe": 9.0}), out)
    assert first.html.read_bytes() == before
    assert json.loads((out / "report.json").read_text())["key_metrics"]["sharpe"] == 1.25
    assert not list(out.rglob("*.tmp-*"))


def test_rewrite_drops_charts_the_new_report_does_not_have(tmp_path: Path):
    out = report_dir(tmp_path, "run-a")
    first = write_report(sample(), out)
    assert sorted(p.name for p in first.pngs) == ["drawdown.png", "equity.png"]
    fewer = sample()
    fewer.charts = fewer.charts[:1]
    write_report(fewer, out)
    assert sorted(p.name for p in (out / "charts").iterdir()) == ["equity.png"]
