"""What the pipeline's stages share (``Context``) and what each returns (``StageResult``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from botclave_cli.data.store import Store
from botclave_cli.pipeline.config import PipelineConfig
from botclave_cli.progress import Progress

if TYPE_CHECKING:  # the report layer (matplotlib) loads only when a pipeline runs
    from botclave_cli.report.charts import ChartGenerator
    from botclave_cli.report.report import ReportInput


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

