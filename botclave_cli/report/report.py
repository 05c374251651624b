"""The self-contained HTML report of one run, with its charts as PNG files beside it.

``ReportInput`` holds everything a report shows; ``render_html`` turns it into one HTML document
whose images are embedded as ``data:`` URIs and whose styles are inline (no network, no scripts,
no external fonts: it opens anywhere, from disk or as a mail attachment). ``write_report`` writes

    <out_dir>/charts/<chart>.png   the same charts, for use elsewhere
    <out_dir>/report.html          the report
    <out_dir>/report.json          the key figures that ``reports/index.html`` lists

each atomically (temp + rename), report.html after its charts and report.json last, so an
interrupted run leaves the previous report whole: the old report.html stays in place until the
new one is complete, and it never depends on the PNG files beside it. PNGs of an earlier version
that the new report no longer has are removed last.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import polars as pl

from botclave_cli import __version__
from botclave_cli.data import atomic
from botclave_cli.report.charts import Chart
from botclave_cli.secrets import mask

TEMPLATES = Path(__file__).parent / "templates"
REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
CHARTS_DIR = "charts"
MAX_TRADE_ROWS = 500
SECTIONS = (
    ("summary", "Summary"), ("config", "Config used"), ("coverage", "Data coverage and gaps"),
    ("metrics", "Metrics"), ("charts", "Charts"), ("trades", "Trades"),
    ("validation", "Validation"), ("manifest", "Run manifest"),
)
#: (label, ((metric key, scale), ...)): the figures a summary line and the index show; the
#: first key present wins; fractions are shown in percent
KEY_METRICS: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = (
    ("return_pct", (("total_return_pct", 1.0), ("total_return", 100.0))),
    ("sharpe", (("sharpe", 1.0), ("sharpe_ratio", 1.0))),
    ("max_dd_pct", (("max_drawdown_pct", 1.0), ("max_drawdown", 100.0))),
    ("trades", (("trades", 1), ("trade_count", 1), ("n_trades", 1))),
    ("win_rate_pct", (("win_rate_pct", 1.0), ("win_rate", 100.0))),
    ("final_equity", (("final_equity", 1.0),)),
)


#: ratios scaled to a year (sqrt or power of periods per year); from a window shorter than
#: MIN_ANNUALISE_DAYS they are shown with a flag and the period count, not silently
ANNUALISED = ("sharpe", "sharpe_ratio", "sortino", "annual_return", "volatility", "calmar",
              "oos_sharpe")
MIN_ANNUALISE_DAYS = 30.0


def short_window(periods: Any, days: float | None) -> str | None:
    """The flag for annualised figures from ``periods`` returns spanning ``days`` days: None
    when the window is long enough (or unknown), else e.g. 'annualised from 7,200 periods
    (5.0 days < 30): too short to annualise'."""
    if not isinstance(periods, int) or days is None or not math.isfinite(days):
        return None
    if days >= MIN_ANNUALISE_DAYS:
        return None
    return (f"annualised from {periods:,} periods ({days:.1f} days < {MIN_ANNUALISE_DAYS:g}): "
            "too short to annualise")


def metrics_window(metrics: dict[str, Any]) -> str | None:
    """``short_window`` of a metrics dict with ``periods`` and ``periods_per_year``
    (backtest/metrics.py; a year is 365 days)."""
    n, per_year = metrics.get("periods"), metrics.get("periods_per_year")
    if not isinstance(per_year, int | float) or per_year <= 0:
        return None
    return short_window(n, n / per_year * 365 if isinstance(n, int) else None)


@dataclass
class Validation:
    """What the validation section shows: verdict (pass/warn/fail), reasons, and tables."""

    verdict: str
    reasons: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    #: the bounds that held (validation.json "checks"), e.g. "pass: psr 0.99 >= 0.95 (warn)"
    checks: list[str] = field(default_factory=list)


@dataclass
class ReportInput:
    """Everything one report shows. Times are UTC; metrics keep the units in their names."""

    run_id: str
    title: str
    summary: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    coverage: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    charts: list[Chart] = field(default_factory=list)
    trades: pl.DataFrame | None = None
    validation: Validation | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    findings: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    pngs: list[Path]
    html_bytes: int


def key_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The handful of figures a summary line and the index show (absent ones omitted)."""
    out: dict[str, Any] = {}
    for label, keys in KEY_METRICS:
        for key, scale in keys:
            value = metrics.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[label] = value * scale if scale != 1 else value
                break
    return out


def fmt(value: Any) -> str:
    """A cell: floats to 6 significant digits, ints with separators, UTC datetimes in ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ", timespec="seconds") + " UTC"
    if isinstance(value, dict | list):
        return mask(json.dumps(value, default=str))
    return mask(str(value))


def template_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    return env


def _trade_rows(trades: pl.DataFrame | None) -> tuple[list[str], list[list[str]], int]:
    if trades is None or trades.height == 0:
        return [], [], 0
    shown = trades.head(MAX_TRADE_ROWS)
    rows = [[fmt(v) for v in row] for row in shown.iter_rows()]
    return shown.columns, rows, trades.height


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _config_text(config: dict[str, Any]) -> str:
    return mask(json.dumps(config, indent=2, sort_keys=True, default=str))


def render_html(report: ReportInput) -> str:
    """The report as one self-contained HTML document (images as data URIs, inline CSS)."""
    columns, rows, total = _trade_rows(report.trades)
    return template_env().get_template("report.html.j2").render(
        r=report,
        sections=SECTIONS,
        key=key_metrics(report.metrics),
        annualised=ANNUALISED, short=metrics_window(report.metrics),
        config_text=_config_text(report.config),
        manifest_text=_config_text(report.manifest),
        charts=[{"name": c.name, "title": c.title, "src": _data_uri(c.png),
                 "file": f"{CHARTS_DIR}/{c.filename}"} for c in report.charts],
        trade_columns=columns, trade_rows=rows, trade_total=total,
        version=__version__,
    )


def index_entry(report: ReportInput, html_path: Path) -> dict[str, Any]:
    """What ``reports/index.html`` lists for this run (also written as report.json)."""
    return {
        "run_id": report.run_id,
        "title": report.title,
        "created": report.created.astimezone(dt.UTC).isoformat(),
        "summary": {k: fmt(v) for k, v in report.summary.items()},
        "key_metrics": key_metrics(report.metrics),
        "short_window": metrics_window(report.metrics),
        "verdict": report.validation.verdict if report.validation else None,
        "report": html_path.name,
    }


def write_report(report: ReportInput, out_dir: Path) -> ReportFiles:
    """Write the PNGs, then report.html, then report.json into ``out_dir``, each atomically."""
    charts_dir = out_dir / CHARTS_DIR
    pngs = []
    for chart in report.charts:
        target = charts_dir / chart.filename
        atomic.write_bytes(target, chart.png)
        pngs.append(target)
    html = render_html(report)
    html_path = out_dir / REPORT_HTML
    atomic.write_text(html_path, html)
    entry = index_entry(report, html_path)
    atomic.write_text(out_dir / REPORT_JSON, json.dumps(entry, indent=2, default=str) + "\n")
    for old in charts_dir.glob("*.png"):  # charts of an earlier version of this report
        if old not in pngs:
            old.unlink(missing_ok=True)
    return ReportFiles(html=html_path, pngs=pngs, html_bytes=len(html.encode("utf-8")))
