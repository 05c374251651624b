"""Depth builds over many symbols as tasks for an executor (serial, a process pool, a Dask
cluster): ``depth -s A -s B --executor ...``.

A task is one symbol's whole range: a book is one sequential state machine from its snapshot,
so its days are not independent (a day started from another snapshot would be another book).
The task reads the symbol's book and trades from the store path every node sees, replays and
analyses them, and writes that symbol's own ``book_snapshot``/``depth_series`` datasets there
(no two tasks share a dataset or a manifest); only the summary comes back. The files are the
ones the single-symbol command writes, whatever the executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botclave_cli.data.store import Store
from botclave_cli.engine.depth.analyzer import DepthParams, analyze_book
from botclave_cli.engine.depth.store import load_book, write_depth
from botclave_cli.errors import DataError
from botclave_cli.progress import Progress, or_null


@dataclass(frozen=True)
class DepthJob:
    data_dir: str  # absolute
    exchange: str
    market: str
    symbol: str
    start_us: int | None
    end_us: int | None
    kind: str | None
    params: DepthParams

    @property
    def weight(self) -> float:
        return 1.0


def depth_jobs(store: Store, exchange: str, market: str, symbols: list[str],
               start_us: int | None, end_us: int | None, kind: str | None,
               params: DepthParams) -> list[DepthJob]:
    root = str(Path(store.root).resolve())
    return [DepthJob(root, exchange, market, s, start_us, end_us, kind, params)
            for s in symbols]


def run_job(job: DepthJob) -> dict[str, Any]:
    """What a worker runs: one symbol's depth series, written to the store; its summary."""
    store = Store(job.data_dir)
    book = load_book(store, job.exchange, job.market, job.symbol, job.start_us, job.end_us,
                     job.kind)
    result = analyze_book(book["book_snapshot"], book["book_diff"], book["trades"], job.market,
                          job.params, book["tick_size"], start_us=job.start_us,
                          end_us=job.end_us)
    if result.series.is_empty():
        raise DataError(f"{job.symbol}: no valid book in the range (counts: {result.counts})")
    written = write_depth(store, job.exchange, job.market, job.symbol, result, job.params,
                          job.exchange)
    return {"symbol": job.symbol, "rows": result.series.height, "counts": result.counts,
            "walls": len(result.walls), "absorption": len(result.zones), "written": written}


def build_many(jobs: list[DepthJob], executor: Any,
               progress: Progress | None = None) -> list[dict[str, Any]]:
    """Run ``jobs`` on ``executor``: one summary per symbol, in job order."""
    progress = or_null(progress)
    progress.start(len(jobs), "depth tasks")
    return list(executor.map(run_job, jobs, progress.advance))
