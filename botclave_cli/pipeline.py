"""The cron sequence: data (fetch or use what is stored) -> footprint -> depth -> backtest ->
validate -> report, configured by one YAML file (``configs/pipeline.yaml``).

``run_pipeline(cfg)`` holds the run lock for the whole sequence, runs each enabled stage through
the other layers' library functions (``botclave_cli.pipeline_stages``), writes the run's report
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from botclave_cli import __version__
from botclave_cli.config import load_model
from botclave_cli.data.store import Store, default_data_dir
from botclave_cli.errors import BotclaveError, ConfigError
from botclave_cli.lock import RunLock
from botclave_cli.logs import get_logger
from botclave_cli.progress import Progress, or_null

if TYPE_CHECKING:  # the report layer (matplotlib) loads only when a pipeline runs
    from botclave_cli.report.charts import ChartGenerator
    from botclave_cli.report.report import ReportFiles, ReportInput

log = get_logger(__name__)
LOCK_NAME = ".pipeline.lock"
PIPELINE_CONFIG = "pipeline.yaml"


class Terminated(BotclaveError):
    """SIGTERM arrived during a run (exit code 143, the shell's code for it)."""

    exit_code = 143


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SynthStage(_Strict):
    """Synthetic market generated when ``exchange: synth`` and the data is missing."""

    seed: int = 7
    trades_per_day: int = Field(400_000, ge=5_000)


FetchKind = Literal["trades", "agg_trades", "ohlcv"]


def _default_fetch_kinds() -> list[FetchKind]:
    return ["agg_trades"]


class FetchStage(_Strict):
    enabled: bool = True
    kinds: list[FetchKind] = Field(
        default_factory=_default_fetch_kinds, description="trades = raw (needs an API key)")
    max_staleness_minutes: float | None = Field(
        None, gt=0, description="exit 3 when the newest trade is older than this at run time")


class FootprintStage(_Strict):
    enabled: bool = True
    bar: str = "1m"
    row_size: int = Field(10, ge=1, description="ticks per price row")
    png_bars: int = Field(30, ge=1, le=500)


class DepthStage(_Strict):
    enabled: bool = True
    interval: str = "1s"


class BacktestStage(_Strict):
    enabled: bool = True
    set: list[str] = Field(default_factory=list, description="key=value overrides")


class ValidateStage(_Strict):
    """Walk-forward, PBO/DSR and Monte Carlo as ``configs/validation.yaml`` says; the overrides
    here keep cron and demo runs small."""

    enabled: bool = True
    folds: int | None = Field(None, ge=1, description="override walk_forward.folds")
    mc_runs: int | None = Field(None, ge=10, description="override monte_carlo.runs")
    jobs: int | Literal["auto"] = Field(
        "auto", description="'auto' (a pool only when the measured work pays its start-up), "
        "0: all cores, 1: serial, N: N processes")

    @field_validator("jobs")
    @classmethod
    def _jobs_not_negative(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("expected auto, 0 (all cores) or a positive number")
        return value


class PipelineConfig(_Strict):
    """``configs/pipeline.yaml``: what one unattended run does."""

    title: str = "botclave run"
    exchange: str = Field("synth", description="'synth' or a ccxt exchange id")
    market: Literal["spot", "usdm", "coinm"] = "spot"
    symbol: str = "BTC/USDT"
    start: dt.date | dt.datetime | None = Field(None, alias="from")
    end: dt.date | dt.datetime | None = Field(None, alias="to")
    last_days: int | None = Field(None, ge=1, description="instead of from/to: last N UTC days")
    data_dir: Path | None = Field(None, description="default: $BOTCLAVE_DATA_DIR or ./datasets")
    reports_dir: Path = Path("reports")
    exchange_config: Path = Path("configs/exchange_config.yaml")
    strategy_config: Path = Path("configs/strategy_params.yaml")
    validation_config: Path = Path("configs/validation.yaml")
    allow_gaps: bool = Field(False, description="report despite gaps in the range (else exit 3)")
    lock_wait_seconds: float = Field(0.0, ge=0, description="wait for a running pipeline")
    synth: SynthStage = Field(default_factory=SynthStage)
    fetch: FetchStage = Field(default_factory=FetchStage)
    footprint: FootprintStage = Field(default_factory=FootprintStage)
    depth: DepthStage = Field(default_factory=DepthStage)
    backtest: BacktestStage = Field(default_factory=BacktestStage)
    validate_: ValidateStage = Field(default_factory=ValidateStage, alias="validate")

    @model_validator(mode="after")
    def _one_window(self) -> PipelineConfig:
        if self.last_days is not None and (self.start is not None or self.end is not None):
            raise ValueError("give either last_days or from/to, not both")
        if self.last_days is None and (self.start is None) != (self.end is None):
            raise ValueError("from and to go together")
        return self

    def window(self, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) in UTC: from/to, the last N whole UTC days, or the synth default day."""
        if self.last_days is not None:
            today = (now or dt.datetime.now(dt.UTC)).date()
            end = _utc(today)
            return end - dt.timedelta(days=self.last_days), end
        if self.start is not None and self.end is not None:
            start, end = _utc(self.start), _utc(self.end)
            if start >= end:
                raise ConfigError(f"pipeline config: from {start} must be before to {end}")
            return start, end
        start = _utc(dt.date(2024, 1, 1))
        return start, start + dt.timedelta(days=1)

    def resolved_data_dir(self) -> Path:
        return self.data_dir if self.data_dir is not None else default_data_dir()


def _utc(value: dt.date | dt.datetime) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def load_pipeline_config(path: Path) -> PipelineConfig:
    return load_model(path, PipelineConfig)


@dataclass
class StageResult:
    name: str
    status: Literal["ok", "skipped", "unavailable"]
    seconds: float = 0.0
    detail: str = ""


@dataclass
class Context:
    """What the stages share: config, store, window, and the report being assembled."""

    cfg: PipelineConfig
    store: Store
    start: dt.datetime
    end: dt.datetime
    progress: Progress
    charts: ChartGenerator
    report: ReportInput
    run_id: str | None = None
    state: dict[str, Any] = field(default_factory=dict)  # stage outputs later stages read


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
        from botclave_cli.report.report import key_metrics

        parts = [f"report {self.report.resolve()}"]
        parts += [f"{k} {_short(v)}" for k, v in key_metrics(self.metrics).items()]
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
    from botclave_cli import pipeline_stages as stages
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
