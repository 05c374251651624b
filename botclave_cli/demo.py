"""``make demo`` (``python -m botclave_cli.demo``): the whole pipeline on the synthetic market,
once with its planted edge and once on the control without it.

Runs ``configs/pipeline.yaml`` (built-in defaults when the file is missing: exchange ``synth``)
twice: on the synthetic market with the absorptions' follow-through (data dir ``./datasets`` or
``$BOTCLAVE_DATA_DIR``), and on the control from the same generator and seed with the
follow-through off (``botclave synth --no-edge``, in ``<data dir>-no-edge``). Each market is
generated when it is not stored yet. Then it checks each run's realised edge per trade against
truth.json's expected edge (``edge_check``), writes both side by side
(``reports/html/demo-<edge run>-<control run>/comparison.html``, listed on reports/index.html)
and prints that page's path as the last line. Stage progress, the entries that traded planted
events, each run's summary line and the edge checks go to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from botclave_cli.errors import BotclaveError
from botclave_cli.pipeline import PipelineConfig, PipelineResult, load_pipeline_config, run_pipeline
from botclave_cli.report.compare import Column

if TYPE_CHECKING:
    from botclave_cli.data.synth import Truth, TruthEvent

DEMO_CONFIG = Path("configs/pipeline.yaml")
#: an entry counts as trading a planted event when it fills from the event's start until this
#: long after its end (the decision is the close of the bar the event ends on, plus latency)
EVENT_WINDOW_S = 60.0
CONTROL_SUFFIX = "-no-edge"
#: the realised edge per trade must lie within this many standard errors of the mean
#: (sample SD / sqrt(trades)) of truth.json's expected edge, plus FILL_SLACK_BPS
EDGE_SE = 3.0
#: fills that differ from the reference trade: a 1-tick spread at entry and exit, trades away
#: from the planted events (about 1 bps per trade at the demo's prices)
FILL_SLACK_BPS = 2.0


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
    """The demo's pipeline: ``configs/pipeline.yaml`` forced onto the synthetic market, with
    its planted edge."""
    cfg = load_pipeline_config(path) if path.exists() else PipelineConfig()
    if cfg.exchange != "synth":
        cfg = cfg.model_copy(update={"exchange": "synth", "last_days": None})
    if not cfg.synth.edge:
        cfg = cfg.model_copy(update={"synth": cfg.synth.model_copy(update={"edge": True})})
    return cfg


def control_config(cfg: PipelineConfig) -> PipelineConfig:
    """The control run of ``cfg``: the same pipeline, generator and seed with the planted
    follow-through off, in its own data dir ``<data dir>-no-edge`` (both markets stay stored)."""
    data_dir = cfg.resolved_data_dir()
    return cfg.model_copy(update={
        "title": f"{cfg.title} - control, no edge",
        "synth": cfg.synth.model_copy(update={"edge": False}),
        "data_dir": data_dir.with_name(data_dir.name + CONTROL_SUFFIX)})


def run_folder(cfg: PipelineConfig, result: PipelineResult) -> Path:
    from botclave_cli.report.sources import runs_dir

    return runs_dir(cfg.reports_dir) / result.run_id


@dataclass
class EdgeCheck:
    """A run's realised edge per trade against its truth file, in bps of the entry notional.

    ``expected_bps`` is truth.json's expected edge of the reference trade; ``reference_bps`` the
    mean reference return of the outcomes actually drawn for the traded events (edge on only),
    beside ``realised_at_events_bps``, the mean realised return of those trades."""

    edge: bool
    trades: int
    at_events: int
    expected_bps: float
    realised_bps: float | None
    sd_bps: float | None
    reference_bps: float | None
    realised_at_events_bps: float | None

    @property
    def tolerance_bps(self) -> float | None:
        """EDGE_SE standard errors of the mean plus FILL_SLACK_BPS (None below 2 trades)."""
        if self.sd_bps is None or self.trades < 2:
            return None
        return EDGE_SE * self.sd_bps / self.trades ** 0.5 + FILL_SLACK_BPS

    @property
    def within(self) -> bool | None:
        tol = self.tolerance_bps
        if tol is None or self.realised_bps is None:
            return None
        return abs(self.realised_bps - self.expected_bps) <= tol

    def line(self) -> str:
        if self.realised_bps is None:
            return f"no trades; truth.json expects {self.expected_bps:+.1f} bps per trade"
        tol = self.tolerance_bps
        verdict = ("within" if self.within else "OUTSIDE") if tol is not None else "n/a:"
        text = (f"realised edge {self.realised_bps:+.1f} bps per trade over {self.trades} "
                f"trade(s), {self.at_events} at planted absorptions; truth.json expects "
                f"{self.expected_bps:+.1f} bps: {verdict} the tolerance of "
                f"{'n/a' if tol is None else f'{tol:.1f}'} bps")
        if self.reference_bps is not None and self.realised_at_events_bps is not None:
            text += (f"; at the events {self.realised_at_events_bps:+.2f} bps against "
                     f"{self.reference_bps:+.2f} bps for their drawn outcomes")
        return text


def events_at(entry_us: Sequence[int], events: Sequence[TruthEvent],
              window_s: float = EVENT_WINDOW_S) -> list[TruthEvent | None]:
    """For each entry time (us since epoch), the first event whose [start_us, end_us +
    window_s] holds it, else None."""
    pad = round(window_s * 1e6)
    return [next((e for e in events if e.start_us <= t <= e.end_us + pad), None)
            for t in entry_us]


def entries_at_events(entry_us: Sequence[int], truth: Truth,
                      window_s: float = EVENT_WINDOW_S) -> list[str | None]:
    """For each entry time (us since epoch), the kind of the planted event it trades (the first
    in truth.json order whose [start_us, end_us + window_s] holds it), else None."""
    return [e.kind if e is not None else None
            for e in events_at(entry_us, truth.events, window_s)]


def edge_check(truth: Truth, trades: pl.DataFrame) -> EdgeCheck:
    """The realised edge of a backtest's ``trades`` (pnl, entry_price, qty, entry_ts) against
    ``truth``: every trade counts (the strategy does not know which entries are planted)."""
    import numpy as np

    edge = truth.edge
    expected = edge.expected_edge_bps if edge else 0.0
    enabled = bool(edge and edge.enabled)
    ret = (trades["pnl"] / (trades["entry_price"] * trades["qty"]) * 1e4).to_numpy()
    at = events_at(trades["entry_ts"].dt.epoch("us").to_list(), truth.events_of("absorption"))
    hit = [i for i, e in enumerate(at) if e is not None]
    refs = [e.detail.get("reference_return_bps") for e in at if e is not None]
    known = [float(r) for r in refs if r is not None]
    reference = float(np.mean(known)) if hit and len(known) == len(refs) else None
    return EdgeCheck(
        edge=enabled, trades=int(ret.size), at_events=len(hit), expected_bps=expected,
        realised_bps=float(ret.mean()) if ret.size else None,
        sd_bps=float(ret.std(ddof=1)) if ret.size > 1 else None,
        reference_bps=reference if enabled else None,
        realised_at_events_bps=float(ret[hit].mean()) if hit and enabled else None)


def run_edge_check(cfg: PipelineConfig, result: PipelineResult) -> EdgeCheck | None:
    """``edge_check`` of a pipeline run, None without its trades or truth file."""
    from botclave_cli.data.store import Store
    from botclave_cli.data.synth import read_truth, truth_path

    trades_file = run_folder(cfg, result) / "trades.parquet"
    truth_file = truth_path(Store(cfg.resolved_data_dir()), cfg.symbol)
    if not trades_file.exists() or not truth_file.exists():
        return None
    return edge_check(read_truth(truth_file), pl.read_parquet(trades_file))


def planted_summary(cfg: PipelineConfig, result: PipelineResult) -> str | None:
    """'N of M entries traded a planted event (kinds)' for the run, or None when the run or the
    truth file is not there (e.g. the backtest stage was switched off)."""
    from botclave_cli.data.store import Store
    from botclave_cli.data.synth import read_truth, truth_path

    trades_file = run_folder(cfg, result) / "trades.parquet"
    truth_file = truth_path(Store(cfg.resolved_data_dir()), cfg.symbol)
    if not trades_file.exists() or not truth_file.exists():
        return None
    entries = pl.read_parquet(trades_file, columns=["entry_ts"])["entry_ts"]
    kinds = entries_at_events(entries.dt.epoch("us").to_list(), read_truth(truth_file))
    hits = [k for k in kinds if k is not None]
    found = ", ".join(f"{k} {hits.count(k)}" for k in dict.fromkeys(hits))
    return (f"{len(hits)} of {len(kinds)} entries traded an event planted in the synthetic "
            f"market ({found or 'none'}; within {EVENT_WINDOW_S:g} s of its end, {truth_file})")


@dataclass
class DemoRun:
    label: str
    cfg: PipelineConfig
    result: PipelineResult
    check: EdgeCheck | None

    def validation(self) -> dict[str, Any]:
        path = run_folder(self.cfg, self.result) / "validation" / "validation.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def verdict_line(self) -> str:
        v = self.validation()
        why = v.get("reasons") or v.get("checks") or []
        return f"verdict {self.result.verdict or 'n/a'}" + (f": {'; '.join(why)}" if why else "")


def _pct(fraction: Any) -> Any:
    return fraction * 100 if isinstance(fraction, int | float) else fraction


def _flagged(value: Any, flag: str | None) -> Any:
    if not isinstance(value, int | float) or not flag:
        return value
    return f"{value:.4g} [{flag}]"


def comparison_column(run: DemoRun) -> Column:
    """The run's column of the side-by-side page."""
    from botclave_cli.report.report import key_metrics, metrics_window
    from botclave_cli.report.sources import oos_window

    v = run.validation()
    folds_file = run_folder(run.cfg, run.result) / "validation" / "walk_forward_folds.parquet"
    folds = pl.read_parquet(folds_file) if folds_file.exists() else None
    figures = v.get("figures") or {}
    key = key_metrics(run.result.metrics)
    flag = metrics_window(run.result.metrics)
    rows: dict[str, Any] = {
        "synthetic market": ("planted edge" if run.cfg.synth.edge
                             else "control: same seed, no follow-through (--no-edge)"),
        "window (UTC)": f"{run.cfg.window()[0]:%Y-%m-%d} .. {run.cfg.window()[1]:%Y-%m-%d}",
        "data dir": str(run.cfg.resolved_data_dir()),
        "backtest trades": key.get("trades"),
        "backtest return %": key.get("return_pct"),
        "backtest win rate %": key.get("win_rate_pct"),
        "backtest sharpe": _flagged(key.get("sharpe"), flag),
        "oos return % (walk-forward)": _pct((v.get("walk_forward") or {}).get("oos", {})
                                            .get("total_return")),
        "oos trades (walk-forward)": (v.get("walk_forward") or {}).get("oos", {}).get("trades"),
        "oos_sharpe (walk-forward)": _flagged(figures.get("oos_sharpe"), oos_window(v, folds)),
        **{name: figures.get(name) for name in ("psr", "dsr", "pbo", "wfe", "stability", "ruin")},
    }
    c = run.check
    if c is not None:
        rows.update({
            "expected edge, truth.json (bps/trade)": c.expected_bps,
            "realised edge (bps/trade)": c.realised_bps,
            "tolerance (bps)": c.tolerance_bps,
            "realised within tolerance": c.within,
            "entries at planted absorptions": f"{c.at_events} of {c.trades}"})
    return Column(label=run.label, run_id=run.result.run_id, report=str(run.result.report),
                  verdict=run.result.verdict, reasons=list(v.get("reasons") or []),
                  checks=list(v.get("checks") or []), rows=rows)


def write_demo_comparison(runs: list[DemoRun]) -> Path:
    """The side-by-side page of the demo's runs (and the index rebuilt to list it)."""
    from botclave_cli.report.compare import write_comparison
    from botclave_cli.report.index import write_index

    reports_dir = runs[0].cfg.reports_dir
    name = "demo-" + "-".join(r.result.run_id for r in runs)
    notes = [f"{r.label}: {r.check.line()}" for r in runs if r.check is not None]
    page = write_comparison(reports_dir, name, f"{runs[0].cfg.title}: planted edge and control",
                            [comparison_column(r) for r in runs], notes)
    write_index(reports_dir)
    return page


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    config = Path(args[0]) if args else DEMO_CONFIG
    progress = StderrProgress()
    started = time.perf_counter()
    runs: list[DemoRun] = []
    try:
        edge_cfg = demo_config(config)
        for label, cfg in (("edge", edge_cfg), ("control", control_config(edge_cfg))):
            print(f"demo: {label} run ({'planted edge' if cfg.synth.edge else 'no edge'}, "
                  f"data {cfg.resolved_data_dir()})", file=sys.stderr, flush=True)
            result = run_pipeline(cfg, progress=progress)
            runs.append(DemoRun(label, cfg, result, run_edge_check(cfg, result)))
        page = write_demo_comparison(runs)
    except BotclaveError as exc:
        print(f"demo: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    for run in runs:
        planted = planted_summary(run.cfg, run.result)
        if planted:
            print(f"demo: {run.label}: {planted}", file=sys.stderr)
        print(f"demo: {run.label}: {run.result.summary_line()}", file=sys.stderr)
        print(f"demo: {run.label}: {run.verdict_line()}", file=sys.stderr)
        if run.check is not None:
            print(f"demo: {run.label}: {run.check.line()}", file=sys.stderr)
    print(f"demo: finished in {time.perf_counter() - started:.0f} s; open the comparison in a "
          f"browser (all runs: {runs[0].result.index})", file=sys.stderr)
    print(page.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
