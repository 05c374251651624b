"""``botclave report``: write a run's HTML report, or run the whole pipeline for cron."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from botclave_cli.cli.common import DEFAULT_DATA_DIR, DataDirOpt, JsonOpt, QuietOpt, run
from botclave_cli.errors import UsageError, ValidationFailed

ReportsDirOpt = Annotated[
    Path,
    typer.Option("--reports-dir", help="Where runs and reports live (runs/<id>/, index.html)."),
]


def report(
    run_id: Annotated[
        str | None, typer.Option("--run", help="Run id under <reports>/runs/.")
    ] = None,
    latest: Annotated[bool, typer.Option("--latest", help="The newest run.")] = False,
    pipeline: Annotated[
        Path | None,
        typer.Option("--pipeline", help="Pipeline YAML: fetch (or use stored data), footprint, "
                     "depth, backtest, validate, then write the report."),
    ] = None,
    reports_dir: ReportsDirOpt = Path("reports"),
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write a run's self-contained HTML report, or run the whole pipeline (the cron command).

    Prints the report path; without a terminal one summary line (report path, key metrics,
    verdict). Exit codes: 0 ok (a warn verdict too), 1 validation fail or another run holds the
    lock, 2 usage/config error, 3 data problem (gap, stale or missing data), 4 exchange
    unreachable.

    Example: botclave report --pipeline configs/pipeline.yaml
    """
    with run(json_, quiet) as out:
        chosen = [name for name, on in (("--run", run_id is not None), ("--latest", latest),
                                        ("--pipeline", pipeline is not None)) if on]
        if len(chosen) != 1:
            raise UsageError("give exactly one of --run <id>, --latest or --pipeline <file>"
                             + (f" (got {' and '.join(chosen)})" if chosen else ""))
        if pipeline is not None:
            from botclave_cli.pipeline import load_pipeline_config, run_pipeline

            cfg = load_pipeline_config(pipeline)
            if reports_dir != Path("reports"):
                cfg.reports_dir = reports_dir
            botclave_log = logging.getLogger("botclave")
            if botclave_log.level > logging.INFO or botclave_log.level == logging.NOTSET:
                botclave_log.setLevel(logging.INFO)  # cron: stage details go to the log file
            result = run_pipeline(cfg, progress=out.progress())
            data = {"run_id": result.run_id, "report": result.report, "index": result.index,
                    "metrics": result.metrics, "verdict": result.verdict,
                    "html_bytes": result.files.html_bytes,
                    "stages": [vars(s) for s in result.stages]}
            rows = [{"stage": s.name, "status": s.status, "seconds": s.seconds,
                     "detail": s.detail} for s in result.stages]
            out.emit(data, result.summary_line(), rows=rows, title="pipeline")
            if result.verdict == "fail":
                raise ValidationFailed(f"validation verdict fail for run {result.run_id}; "
                                       f"see {result.report}")
            return
        from botclave_cli.data.store import Store
        from botclave_cli.pipeline import sigterm_raises
        from botclave_cli.report.sources import report_for_run

        with sigterm_raises():
            written = report_for_run(reports_dir, run_id, latest=latest, store=Store(data_dir))
        out.emit({"run_id": written.run_id, "report": written.report,
                  "metrics": written.metrics, "verdict": written.verdict},
                 written.summary_line())
        if written.verdict == "fail":
            raise ValidationFailed(f"validation verdict fail for run {written.run_id}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)  # `botclave config check` knows pipeline.yaml (config_cmd)
