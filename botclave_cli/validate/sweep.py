"""A parameter sweep: every set of the validation's parameter space backtested over the whole
range, one row per set, written as one Parquet table (``botclave backtest --sweep``).

The sets are evaluated by the validation's evaluator (``BacktestEvaluator``: the trades of the
range, equity marked at the validation bar) through any executor, so a row is exactly the
``parameter_sets`` row ``validate pbo`` reports for that set, and the table is the same bytes on
every executor. Folder: ``<out-dir>/sweeps/<sweep id>/`` with ``sweep.parquet`` and
``sweep.json``; the id derives from the evaluator's fingerprint (configs and data content), the
sets, the range and the code version.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl

from botclave_cli.data.atomic import atomic_dir, write_parquet, write_text
from botclave_cli.progress import Progress, or_null
from botclave_cli.validate.checkpoint import evaluator_fingerprint, sha256
from botclave_cli.validate.evaluation import METRIC_KEYS, Task, objective_value, run_task
from botclave_cli.validate.executor import Executor, SerialExecutor
from botclave_cli.validate.validator import StrategyValidator, _iso


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def sweep_tasks(validator: StrategyValidator) -> list[Task]:
    """One task per parameter set, over the validator's whole timeline, metrics only."""
    tl = validator.timeline
    return [Task(validator.evaluator, p, tl.start_us, tl.end_us, False)
            for p in validator.space.sets]


def sweep_table(validator: StrategyValidator, executor: Executor | None = None,
                progress: Progress | None = None) -> pl.DataFrame:
    """Columns: ``set`` (grid order), one column per parameter (its dotted key), ``params``
    (JSON), ``objective`` (the validation's), the metrics (``METRIC_KEYS``), ``sr_per_bar``.
    Undefined figures are null."""
    progress = or_null(progress)
    tasks = sweep_tasks(validator)
    progress.start(len(tasks), "parameter sweep")
    outcomes = (executor or SerialExecutor()).map(run_task, tasks, progress.advance)
    objective = validator.config.objective
    rows = [{"set": i, **{f"param.{k}": v for k, v in p.items()},
             "params": json.dumps(p, sort_keys=True),
             "objective": _finite(objective_value(o.metrics, objective)),
             **{k: _finite(o.metrics.get(k)) for k in METRIC_KEYS},
             "sr_per_bar": _finite(o.sr_per_bar)}
            for i, (p, o) in enumerate(zip(validator.space.sets, outcomes, strict=True))]
    return pl.DataFrame(rows, infer_schema_length=None)


def sweep_id(validator: StrategyValidator, code: str) -> str:
    tl = validator.timeline
    return sha256({"evaluator": evaluator_fingerprint(validator.evaluator),
                   "sets": validator.space.sets, "objective": validator.config.objective,
                   "range": [tl.start_us, tl.end_us, tl.bar_us], "code": code})[:16]


def write_sweep(table: pl.DataFrame, validator: StrategyValidator, out_dir: Path, code: str,
                extra: dict[str, Any] | None = None) -> Path:
    """``<out_dir>/sweeps/<id>/`` (sweep.parquet + sweep.json), replaced as a whole."""
    folder = Path(out_dir) / "sweeps" / sweep_id(validator, code)
    tl = validator.timeline
    best = None
    if table.height and table["objective"].drop_nulls().len():
        row = table.sort(["objective", "set"], descending=[True, False],
                         nulls_last=True).row(0, named=True)
        best = {"set": row["set"], "params": json.loads(row["params"]),
                "objective": row["objective"]}
    meta = {"sets": table.height, "objective": validator.config.objective,
            "start": _iso(tl.start_us), "end": _iso(tl.end_us), "bar": validator.config.bar,
            "best": best, "code": code, **(extra or {})}
    with atomic_dir(folder) as tmp:
        write_parquet(tmp / "sweep.parquet", table)
        write_text(tmp / "sweep.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return folder
