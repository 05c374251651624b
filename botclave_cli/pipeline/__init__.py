"""The cron sequence: fetch -> footprint -> depth -> backtest -> validate -> report.

``config`` holds the models of ``configs/pipeline.yaml``, ``context`` what the stages share,
``stages`` one function per stage over the other layers' libraries, ``run`` the sequence under
the run lock. The names a caller needs are importable from here.
"""

from typing import TYPE_CHECKING

from botclave_cli.lazy import lazy_names

if TYPE_CHECKING:
    from botclave_cli.pipeline.config import PIPELINE_CONFIG, PipelineConfig, load_pipeline_config
    from botclave_cli.pipeline.run import PipelineResult, Terminated, run_pipeline, sigterm_raises

__all__ = ["PIPELINE_CONFIG", "PipelineConfig", "PipelineResult", "Terminated",
           "load_pipeline_config", "run_pipeline", "sigterm_raises"]
__getattr__, __dir__ = lazy_names(__name__, {
    "PIPELINE_CONFIG": "botclave_cli.pipeline.config",
    "PipelineConfig": "botclave_cli.pipeline.config",
    "PipelineResult": "botclave_cli.pipeline.run",
    "Terminated": "botclave_cli.pipeline.run",
    "load_pipeline_config": "botclave_cli.pipeline.config",
    "run_pipeline": "botclave_cli.pipeline.run",
    "sigterm_raises": "botclave_cli.pipeline.run",
})
