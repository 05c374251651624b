"""Placeholder replaced in the next commit: building a report from a stored run."""

from __future__ import annotations

from pathlib import Path

from botclave_cli.errors import UsageError


def report_for_run(reports_dir: Path, run_id: str | None, latest: bool = False):  # noqa: ANN201
    raise UsageError("report --run/--latest is not available yet; use --pipeline")
