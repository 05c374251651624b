"""Report benchmark: one synthetic day through the pipeline, then the report alone.

Figures: the whole pipeline (synth generation excluded), rewriting the report of the stored run
(`botclave report --run`: candles, footprint and depth rebuilt from the store, backtest and
validation read back, the Monte Carlo fan drawn from the run's trades, charts, HTML, index),
and the size of the self-contained HTML files.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

from benchmarks.run import Result

AREA = "report"


def run() -> list[Result]:
    from botclave_cli.data.store import Store
    from botclave_cli.data.synth import SynthConfig, write_synth
    from botclave_cli.pipeline import PipelineConfig, run_pipeline
    from botclave_cli.report.sources import report_for_run

    project = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        root = Path(tmp)
        write_synth(Store(root / "ds"), SynthConfig(start=dt.date(2024, 1, 1), days=1))
        cfg = PipelineConfig.model_validate({
            "from": "2024-01-01", "to": "2024-01-02", "data_dir": str(root / "ds"),
            "reports_dir": str(root / "reports"),
            "strategy_config": str(project / "configs" / "strategy_params.yaml"),
            "validation_config": str(project / "configs" / "validation.yaml"),
            "exchange_config": str(project / "configs" / "exchange_config.yaml"),
            "validate": {"folds": 3, "mc_runs": 200, "jobs": 0}})
        started = time.perf_counter()
        result = run_pipeline(cfg)
        pipeline_s = time.perf_counter() - started
        stages = {s.name: s.seconds for s in result.stages}
        pipeline_html_kib = result.report.stat().st_size / 1024
        started = time.perf_counter()
        written = report_for_run(root / "reports", result.run_id, store=Store(root / "ds"))
        report_s = time.perf_counter() - started
        html_kib = written.report.stat().st_size / 1024
    note = ", ".join(f"{k} {v:.1f}s" for k, v in stages.items())
    return [
        Result(AREA, "pipeline, 1 synthetic day (~450k trades, book at 1 s)", pipeline_s, "s",
               note=note),
        Result(AREA, "report --run (market, footprint, depth, backtest, Monte Carlo, validation)",
               report_s, "s"),
        Result(AREA, "pipeline report HTML size (charts embedded)", pipeline_html_kib, "KiB"),
        Result(AREA, "report --run HTML size", html_kib, "KiB"),
    ]
