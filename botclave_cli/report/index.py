"""``reports/index.html``: every run's report with its key metrics, newest first.

Reports live in ``<reports>/html/<run id>/`` (report.html, charts/, report.json), apart from the
backtest's results in ``<reports>/runs/<run id>/``: the backtester replaces its run folder as a
whole, and a report must survive a re-run that is interrupted before the new report is written.
The index is rebuilt from the ``report.json`` files that ``write_report`` leaves beside each
report, so it never drifts from what is on disk and a deleted report simply disappears from it.
Written atomically, like the reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botclave_cli import __version__
from botclave_cli.data import atomic
from botclave_cli.logs import get_logger
from botclave_cli.report.report import ANNUALISED, REPORT_JSON, template_env

INDEX_HTML = "index.html"
HTML_DIR = "html"
log = get_logger(__name__)


def report_dir(reports_dir: Path, run_id: str) -> Path:
    """Where a run's report lives: ``<reports>/html/<run id>/``."""
    return reports_dir / HTML_DIR / run_id


def list_reports(reports_dir: Path) -> list[dict[str, Any]]:
    """Index entries of every written report, newest first (ties: run id)."""
    entries = []
    for path in sorted((reports_dir / HTML_DIR).glob(f"*/{REPORT_JSON}")):
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("unreadable report entry skipped", extra={"path": str(path),
                                                                   "error": str(exc)})
            continue
        entry["href"] = f"{HTML_DIR}/{path.parent.name}/{entry.get('report', 'report.html')}"
        entries.append(entry)
    entries.sort(key=lambda e: (str(e.get("created", "")), str(e.get("run_id", ""))),
                 reverse=True)
    return entries


def latest_report(reports_dir: Path) -> dict[str, Any] | None:
    entries = list_reports(reports_dir)
    return entries[0] if entries else None


def render_index(entries: list[dict[str, Any]],
                 comparisons: list[dict[str, Any]] | None = None) -> str:
    metric_names = list(dict.fromkeys(k for e in entries for k in e.get("key_metrics", {})))
    return template_env().get_template("index.html.j2").render(
        entries=entries, metric_names=metric_names, version=__version__, annualised=ANNUALISED,
        comparisons=comparisons or [],
    )


def write_index(reports_dir: Path) -> Path:
    """Rebuild ``<reports>/index.html`` from the reports (and side-by-side comparisons,
    report/compare.py) on disk; returns its path."""
    from botclave_cli.report.compare import list_comparisons

    target = reports_dir / INDEX_HTML
    atomic.write_text(target, render_index(list_reports(reports_dir),
                                           list_comparisons(reports_dir)))
    return target
