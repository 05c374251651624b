"""``make demo`` (``python -m botclave_cli.demo``): the whole pipeline on the synthetic market.

Generates one day of the synthetic market into the data dir (``./datasets`` or
``$BOTCLAVE_DATA_DIR``) when it is not there yet, runs ``configs/pipeline.yaml`` (built-in
defaults when the file is missing: exchange ``synth``, small validation settings) and prints the
path of the HTML report as the last line. Stage progress goes to stderr, and so does how many
of the backtest's entries landed on an event planted in the synthetic market (its truth.json):
the demo's strategy (``backtest.set`` in ``configs/pipeline.yaml``) trades those events.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from botclave_cli.errors import BotclaveError
from botclave_cli.pipeline import PipelineConfig, PipelineResult, load_pipeline_config, run_pipeline

if TYPE_CHECKING:
    from botclave_cli.data.synth import Truth

DEMO_CONFIG = Path("configs/pipeline.yaml")
#: an entry counts as trading a planted event when it fills from the event's start until this
#: long after its end (the decision is the close of the bar the event ends on, plus latency)
EVENT_WINDOW_S = 60.0


class StderrProgress:
    """One line per phase with the time since the demo started (no bars: readable in any log)."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    def start(self, total: float | None, description: str) -> None:
        print(f"demo: [{time.perf_counter() - self._t0:6.1f} s] {description}", file=sys.stderr,
              flush=True)

    def advance(self, amount: float = 1) -> None:
        return None


def demo_config(path: Path = DEMO_CONFIG) -> PipelineConfig:
    """The demo's pipeline: ``configs/pipeline.yaml`` forced onto the synthetic market."""
    cfg = load_pipeline_config(path) if path.exists() else PipelineConfig()
    if cfg.exchange != "synth":
        cfg = cfg.model_copy(update={"exchange": "synth", "last_days": None})
    return cfg


def entries_at_events(entry_us: Sequence[int], truth: Truth,
                      window_s: float = EVENT_WINDOW_S) -> list[str | None]:
    """For each entry time (us since epoch), the kind of the planted event it trades (the first
    in truth.json order whose [start_us, end_us + window_s] holds it), else None."""
    spans = [(e.start_us, e.end_us + round(window_s * 1e6), e.kind) for e in truth.events]
    return [next((kind for lo, hi, kind in spans if lo <= t <= hi), None) for t in entry_us]


def planted_summary(cfg: PipelineConfig, result: PipelineResult) -> str | None:
    """'N of M entries traded a planted event (kinds)' for the run, or None when the run or the
    truth file is not there (e.g. the backtest stage was switched off)."""
    import polars as pl

    from botclave_cli.data.store import Store
    from botclave_cli.data.synth import read_truth, truth_path
    from botclave_cli.report.sources import runs_dir

    trades_file = runs_dir(cfg.reports_dir) / result.run_id / "trades.parquet"
    truth_file = truth_path(Store(cfg.resolved_data_dir()), cfg.symbol)
    if not trades_file.exists() or not truth_file.exists():
        return None
    entries = pl.read_parquet(trades_file, columns=["entry_ts"])["entry_ts"]
    kinds = entries_at_events(entries.dt.epoch("us").to_list(), read_truth(truth_file))
    hits = [k for k in kinds if k is not None]
    found = ", ".join(f"{k} {hits.count(k)}" for k in dict.fromkeys(hits))
    return (f"{len(hits)} of {len(kinds)} entries traded an event planted in the synthetic "
            f"market ({found or 'none'}; within {EVENT_WINDOW_S:g} s of its end, {truth_file})")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    config = Path(args[0]) if args else DEMO_CONFIG
    progress = StderrProgress()
    started = time.perf_counter()
    try:
        cfg = demo_config(config)
        result = run_pipeline(cfg, progress=progress)
        planted = planted_summary(cfg, result)
    except BotclaveError as exc:
        print(f"demo: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    if planted:
        print(f"demo: {planted}", file=sys.stderr)
    print(f"demo: {result.summary_line()}", file=sys.stderr)
    print(f"demo: finished in {time.perf_counter() - started:.0f} s; open the report in a "
          f"browser (all runs: {result.index})", file=sys.stderr)
    print(result.report.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
