"""Two runs side by side: ``make demo``'s planted edge against its control (no edge).

``write_comparison(reports_dir, columns)`` writes ``<reports>/html/<name>/comparison.html``
(self-contained, like a report) and ``comparison.json`` beside it; ``reports/index.html`` lists
every comparison above the runs (``list_comparisons``). A column is one run: its label, run id,
report link, verdict, reasons, the bounds it met and the rows of figures to compare.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from botclave_cli import __version__
from botclave_cli.data import atomic
from botclave_cli.report.report import template_env

COMPARISON_HTML = "comparison.html"
COMPARISON_JSON = "comparison.json"


@dataclass
class Column:
    """One run in a comparison. ``rows`` maps a row label to the value shown (any cell value
    ``fmt`` knows); ``report`` is the path of the run's report.html."""

    label: str
    run_id: str
    report: str
    verdict: str | None
    reasons: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    rows: dict[str, Any] = field(default_factory=dict)


def comparison_dir(reports_dir: Path, name: str) -> Path:
    return reports_dir / "html" / name


def write_comparison(reports_dir: Path, name: str, title: str, columns: list[Column],
                     notes: list[str] | None = None) -> Path:
    """Write the comparison page and its JSON (each atomically); returns the page's path."""
    out = comparison_dir(reports_dir, name)
    page = out / COMPARISON_HTML
    labels = list(dict.fromkeys(k for c in columns for k in c.rows))
    links = [_relative(Path(c.report), out) for c in columns]
    html = template_env().get_template("compare.html.j2").render(
        title=title, columns=columns, labels=labels, links=links, notes=notes or [],
        created=dt.datetime.now(dt.UTC), version=__version__)
    atomic.write_text(page, html)
    entry = {"name": name, "title": title, "created": dt.datetime.now(dt.UTC).isoformat(),
             "page": COMPARISON_HTML, "columns": [asdict(c) for c in columns]}
    atomic.write_text(out / COMPARISON_JSON, json.dumps(entry, indent=2, default=str) + "\n")
    return page


def list_comparisons(reports_dir: Path) -> list[dict[str, Any]]:
    """The comparisons written under ``reports_dir``, newest first; unreadable ones skipped."""
    found = []
    for path in sorted((reports_dir / "html").glob(f"*/{COMPARISON_JSON}")):
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        entry["href"] = f"html/{path.parent.name}/{entry.get('page', COMPARISON_HTML)}"
        found.append(entry)
    found.sort(key=lambda e: str(e.get("created", "")), reverse=True)
    return found


def _relative(target: Path, start: Path) -> str:
    """``target`` relative to the folder ``start`` when both are under one root (a link that
    survives moving the reports folder), else its absolute path."""
    import os

    try:
        return os.path.relpath(target.resolve(), start.resolve())
    except ValueError:  # another drive (Windows)
        return str(target.resolve())
