"""``make demo`` (``python -m botclave_cli.demo``): the whole pipeline on the synthetic market.

Generates one day of the synthetic market into the data dir (``./datasets`` or
``$BOTCLAVE_DATA_DIR``) when it is not there yet, runs ``configs/pipeline.yaml`` (built-in
defaults when the file is missing: exchange ``synth``, small validation settings) and prints the
path of the HTML report as the last line. Stage progress goes to stderr.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from botclave_cli.errors import BotclaveError
from botclave_cli.pipeline import PipelineConfig, load_pipeline_config, run_pipeline

DEMO_CONFIG = Path("configs/pipeline.yaml")


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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    config = Path(args[0]) if args else DEMO_CONFIG
    progress = StderrProgress()
    started = time.perf_counter()
    try:
        result = run_pipeline(demo_config(config), progress=progress)
    except BotclaveError as exc:
        print(f"demo: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    print(f"demo: {result.summary_line()}", file=sys.stderr)
    print(f"demo: finished in {time.perf_counter() - started:.0f} s; open the report in a "
          f"browser (all runs: {result.index})", file=sys.stderr)
    print(result.report.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
