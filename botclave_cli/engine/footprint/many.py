"""Footprint builds over many symbols and days as independent tasks for an executor (serial, a
process pool, a Dask cluster): ``footprint --symbol A --symbol B --executor ...``.

A task is one symbol's trades for one UTC day (time bars: every time bar divides a day and is
anchored to the epoch, so a day's bars are complete within that day) or for the whole range
(volume, trade-count and range bars: counting runs on from the anchor, so days are not
independent). A task reads its own Parquet partition from the store path every node sees and
sends back only the bars and levels it built; this process writes them into the store in task
order, so the store's files are the same whatever the executor and the order of completion,
and the same as one ``build_from_store`` over the whole range.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botclave_cli.data.store import DatasetRef, Store, params_hash
from botclave_cli.engine.footprint.builder import FootprintResult, FootprintSpec
from botclave_cli.engine.footprint.store import (
    build_from_store,
    dataset_params,
    footprint_refs,
    part_span,
    write_part,
)
from botclave_cli.errors import DataError
from botclave_cli.progress import Progress, or_null

DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class FootprintJob:
    """Build ``spec`` from ``ref``'s trades in ``[start, end)`` (absolute store path)."""

    data_dir: str
    ref: DatasetRef
    spec: FootprintSpec
    start: dt.datetime | None
    end: dt.datetime | None
    anchor: dt.datetime | None  # the range's --from: names the dataset of non-time bars

    @property
    def weight(self) -> float:
        return 1.0


@dataclass(frozen=True)
class JobResult:
    trades: int
    part: FootprintResult | None  # None: no trade in the job's window


def _day(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)


def footprint_jobs(store: Store, builds: list[tuple[DatasetRef, FootprintSpec]],
                   start: dt.datetime | None, end: dt.datetime | None) -> list[FootprintJob]:
    """The tasks of ``builds`` (one (trades dataset, spec) per symbol) over ``[start, end)``:
    a task per stored day for time bars, one per symbol otherwise."""
    root = str(Path(store.root).resolve())
    jobs = []
    for ref, spec in builds:
        if spec.bar_spec.kind != "time":
            jobs.append(FootprintJob(root, ref, spec, start, end, start))
            continue
        for day in store.partition_files(ref):
            lo, hi = _day(day), _day(day) + DAY
            if (end is not None and lo >= end) or (start is not None and hi <= start):
                continue
            jobs.append(FootprintJob(root, ref, spec, max(lo, start) if start else lo,
                                     min(hi, end) if end else hi, start))
    return jobs


def run_job(job: FootprintJob) -> JobResult:
    """What a worker runs: the job's bars and levels, built from its own partition."""
    try:
        run = build_from_store(Store(job.data_dir), job.ref, job.spec, job.start, job.end,
                               write=False, keep=True)
    except DataError as exc:
        if str(exc).startswith("no trades in"):
            return JobResult(0, None)
        raise
    return JobResult(run.trades, run.result)


def build_many(store: Store, jobs: list[FootprintJob], executor: Any,
               progress: Progress | None = None) -> list[dict[str, Any]]:
    """Run ``jobs`` on ``executor`` and write their results here, in job order; one summary per
    symbol: trades, bars, levels, days built, params hash and the datasets written. DataError
    when a symbol's range holds no trade."""
    progress = or_null(progress)
    progress.start(len(jobs), "footprint tasks")
    results = executor.map(run_job, jobs, progress.advance)
    # one build over a range covers [first bar, last bar end] as one interval, quiet hours
    # between its chunks included: the tasks of a symbol cover the same
    spans: dict[str, tuple[int, int]] = {}
    for job, res in zip(jobs, results, strict=True):
        if res.part is not None and res.part.bars.height:
            a, b = part_span(res.part)
            lo, hi = spans.get(str(job.ref), (a, b))
            spans[str(job.ref)] = (min(lo, a), max(hi, b))
    summary: dict[str, dict[str, Any]] = {}
    for job, res in zip(jobs, results, strict=True):
        params = dataset_params(job.spec, job.anchor)
        h = params_hash(params)
        bars_ref, levels_ref = footprint_refs(job.ref, h)
        s = summary.setdefault(str(job.ref), {
            "symbol": job.ref.symbol, "source": str(job.ref.relpath()), "params_hash": h,
            "trades": 0, "bars": 0, "levels": 0, "tasks": 0,
            "footprint": str(store.path(bars_ref)),
            "footprint_levels": str(store.path(levels_ref))})
        s["tasks"] += 1
        s["trades"] += res.trades
        if res.part is not None:
            s["bars"] += res.part.bars.height
            s["levels"] += res.part.levels.height
            write_part(store, job.ref, job.spec, params, res.part, spans.get(str(job.ref)))
    for s in summary.values():
        if not s["trades"]:
            raise DataError(f"no trades in {store.root / s['source']} for the range")
    return list(summary.values())
