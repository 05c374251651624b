"""The cron sequence: data (fetch or use what is stored) -> footprint -> depth -> backtest ->
validate -> report, configured by one YAML file (``configs/pipeline.yaml``).

``run_pipeline(cfg)`` holds the run lock for the whole sequence, runs each enabled stage through
the other layers' library functions (``botclave_cli.pipeline.stages``), writes the run's report
and rebuilds ``reports/index.html``. A validation verdict of ``fail`` does not stop the report:
the result carries the verdict and the CLI turns it into exit code 1 after the report is on disk.
Data problems raise ``DataError`` (exit 3), config problems ``ConfigError`` (exit 2), an
unreachable exchange ``ExchangeUnreachable`` (exit 4). SIGTERM during a run raises ``Terminated``
so temporary files are removed and the previous report stays as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botclave_cli import __version__
from botclave_cli.data.store import Store
from botclave_cli.errors import BotclaveError
from botclave_cli.lock import RunLock
from botclave_cli.logs import get_logger
from botclave_cli.pipeline.config import PipelineConfig
from botclave_cli.pipeline.context import Context, StageResult
from botclave_cli.progress import Progress, or_null

if TYPE_CHECKING:  # the report layer (matplotlib) loads only when a pipeline runs
    from botclave_cli.report.report import ReportFiles

log = get_logger(__name__)
LOCK_NAME = ".pipeline.lock"


class Terminated(BotclaveError):
    """SIGTERM arrived during a run (exit code 143, the shell's code for it)."""

    exit_code = 143


@dataclass
class PipelineResult:
    run_id: str
    report: Path
    index: Path
    files: ReportFiles
    metrics: dict[str, Any]
    verdict: str | None
    stages: list[StageResult]

    def summary_line(self) -> str:
        """The one line cron mail shows: report path, key metrics, verdict."""
        from botclave_cli.report.report import ANNUALISED, key_metrics, metrics_window

        flag = metrics_window(self.metrics)
        parts = [f"report {self.report.resolve()}"]
        parts += [f"{k} {_short(v)}" + (f" [{flag}]" if flag and k in ANNUALISED else "")
                  for k, v in key_metrics(self.metrics).items()]
        parts.append(f"verdict {self.verdict or 'n/a'}")
        missing = [s.name for s in self.stages if s.status == "unavailable"]
        if missing:
            parts.append(f"unavailable: {','.join(missing)}")
        return "; ".join(parts)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def pipeline_run_id(cfg: PipelineConfig, start: dt.datetime, end: dt.datetime,
                    coverage: list[dict[str, Any]]) -> str:
    """Run id from the config hash, data coverage and code version (same inputs -> same id)."""
    payload = json.dumps({"config": cfg.model_dump(mode="json", by_alias=True),
                          "coverage": coverage, "version": __version__},
                         sort_keys=True, default=str)
    digest = hashlib.sha256(payload.encode()).hexdigest()[:10]
    return f"{start:%Y%m%d}-{cfg.symbol.replace('/', '').replace(':', '_').lower()}-{digest}"


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into ``Terminated`` (main thread only) so cleanup code runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated("terminated by SIGTERM; the previous report is left as it was")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _timed(ctx: Context, name: str, stage: Callable[[Context], StageResult]) -> StageResult:
    started = time.perf_counter()
    ctx.progress.start(None, name)
    result = stage(ctx)
    result.seconds = round(time.perf_counter() - started, 3)
    log.info("pipeline stage", extra={"stage": name, "status": result.status,
                                      "seconds": result.seconds, "detail": result.detail})
    return result


def run_pipeline(cfg: PipelineConfig, progress: Progress | None = None,
                 now: dt.datetime | None = None) -> PipelineResult:
    """Run every enabled stage under the run lock and write the report; see the module doc."""
    from botclave_cli.pipeline import stages
    from botclave_cli.report import report as report_mod
    from botclave_cli.report.charts import ChartGenerator
    from botclave_cli.report.index import report_dir, write_index

    start, end = cfg.window(now)
    reports_dir = cfg.reports_dir
    data_dir = cfg.resolved_data_dir()
    # one lock on the outputs and one on the store: runs that share either never overlap
    locks = [RunLock(d / LOCK_NAME, cfg.lock_wait_seconds)
             for d in dict.fromkeys([reports_dir.resolve(), data_dir.resolve()])]
    with sigterm_raises(), contextlib.ExitStack() as held:
        for lock in locks:
            held.enter_context(lock)
        ctx = Context(cfg=cfg, store=Store(data_dir), start=start, end=end,
                      progress=or_null(progress), charts=ChartGenerator(),
                      report=report_mod.ReportInput("", "", {}))
        if now is not None:
            ctx.state["now"] = now
        results = [_timed(ctx, name, fn) for name, fn in stages.STAGES]
        report = ctx.report
        report.title = cfg.title
        report.run_id = ctx.run_id or pipeline_run_id(cfg, start, end, report.coverage)
        report.config = {"pipeline": cfg.model_dump(mode="json", by_alias=True),
                         **ctx.state.get("configs", {})}
        report.summary = {"symbol": cfg.symbol, "exchange": cfg.exchange, "market": cfg.market,
                          "from": start, "to": end, **report.summary}
        report.notes += [f"{r.name}: {r.status}{' - ' + r.detail if r.detail else ''}"
                         for r in results if r.status != "ok"]
        report.manifest = {"run_id": report.run_id, "code_version": __version__,
                           "stages": [vars(r) for r in results], **report.manifest}
        out_dir = report_dir(reports_dir, report.run_id)
        ctx.progress.start(None, "report")
        files = report_mod.write_report(report, out_dir)
        index = write_index(reports_dir)
    verdict = report.validation.verdict if report.validation else None
    log.info("pipeline done", extra={"run_id": report.run_id, "report": str(files.html),
                                     "verdict": verdict, "html_bytes": files.html_bytes,
                                     "key_metrics": report_mod.key_metrics(report.metrics)})
    return PipelineResult(run_id=report.run_id, report=files.html, index=index, files=files,
                          metrics=report.metrics, verdict=verdict, stages=results)
