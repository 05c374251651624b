"""The validation runs: holdout, walk-forward, Monte Carlo, PBO/DSR and stability, one verdict.

The validator never runs a backtest itself. It sends every evaluation (a parameter set on a
window of the timeline) to an evaluator (``evaluation.Evaluator``), and it only asks for
in-sample windows while it optimises, so no out-of-sample bar can reach a parameter choice.

Work runs through an ``Executor`` (serial, a process pool or a Dask cluster); tasks are
deterministic and the results come back in task order, so every executor, ``--jobs 1``,
``--jobs N`` and ``--jobs auto`` write identical files.

With a ``Checkpoint`` every evaluation's outcome is saved as it completes and a rerun of the
same run takes the saved ones instead of evaluating again (``checkpoint.py``); the outcomes are
the same either way, so a resumed run writes the same files as an uninterrupted one.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import numpy as np
import polars as pl

from botclave_cli.errors import BotclaveError, UsageError
from botclave_cli.progress import Progress, or_null
from botclave_cli.validate import overfitting as ovf
from botclave_cli.validate.checkpoint import Checkpoint, run_saved, save
from botclave_cli.validate.cluster import map_each
from botclave_cli.validate.config import WHICH, ValidationConfig
from botclave_cli.validate.evaluation import (
    METRIC_KEYS,
    YEAR_US,
    Evaluator,
    Outcome,
    Task,
    Timeline,
    evaluation_metrics,
    objective_value,
    run_task,
)
from botclave_cli.validate.executor import Executor, SerialExecutor
from botclave_cli.validate.montecarlo import monte_carlo
from botclave_cli.validate.param_space import ParameterSpace
from botclave_cli.validate.splits import Fold, Window, holdout_split, walk_forward_folds
from botclave_cli.validate.verdict import ValidationResult, apply_verdict


def _iso(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, tz=dt.UTC).isoformat()


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def _summary_metrics(m: dict[str, Any]) -> dict[str, float | None]:
    return {k: _finite(m.get(k)) for k in METRIC_KEYS}


class StrategyValidator:
    """Runs the validations of ``ValidationConfig`` for one evaluator over one timeline."""

    def __init__(
        self, evaluator: Evaluator, timeline: Timeline, config: ValidationConfig,
        space: ParameterSpace, executor: Executor | None = None,
        progress: Progress | None = None, checkpoint: Checkpoint | None = None,
    ) -> None:
        self.evaluator = evaluator
        self.checkpoint = checkpoint
        self.timeline = timeline
        self.config = config
        self.space = space
        self.executor = executor or SerialExecutor()
        self.progress = or_null(progress)
        self.periods_per_year = YEAR_US / timeline.bar_us
        self._plan: list[tuple[int, int]] = []  # (tasks, weight) of each batch still to come

    # helpers ------------------------------------------------------------------------------------
    def _evaluate(self, jobs: list[tuple[dict[str, Any], Window]], what: str,
                  keep_series: bool = True) -> list[Outcome]:
        tasks = [Task(self.evaluator, p, *self.timeline.times(w), keep_series) for p, w in jobs]
        if self._plan:
            self._plan.pop(0)  # this batch
        expect = getattr(self.executor, "expect", None)
        if expect is not None:  # the work after this batch, for --jobs auto
            expect(sum(n for n, _ in self._plan), sum(w for _, w in self._plan))
        self.progress.start(len(tasks), what)
        results = self._run(tasks)
        for (_, w), res in zip(jobs, results, strict=True):
            if res.n_bars != w.bars:
                raise BotclaveError(f"the evaluator returned {res.n_bars} bar returns for "
                                    f"a window of {w.bars} bars ({what})")
        return results

    def _run(self, tasks: list[Task]) -> list[Outcome]:
        """The outcomes of ``tasks`` in order: the checkpoint's where it has them, the others
        evaluated by the executor (and saved as each completes)."""
        ck = self.checkpoint
        if ck is None:
            return self.executor.map(run_task, tasks, self.progress.advance)
        found = [ck.lookup(t) for t in tasks]
        todo = [i for i, o in enumerate(found) if o is None]
        ck.reused += len(tasks) - len(todo)
        ck.evaluated += len(todo)
        if len(todo) < len(tasks):
            self.progress.advance(len(tasks) - len(todo))
        pending = [ck.pending(tasks[i]) for i in todo]
        if getattr(self.executor, "remote", False):  # saved here, as each outcome arrives
            new = map_each(self.executor, run_task, [p.task for p in pending],
                           self.progress.advance, lambda j, o: save(pending[j], o))
        else:  # saved by the worker process that computed it
            new = self.executor.map(run_saved, pending, self.progress.advance)
        for i, outcome in zip(todo, new, strict=True):
            found[i] = outcome
        return [o for o in found if o is not None]

    def _score(self, res: Outcome) -> float:
        return objective_value(res.metrics, self.config.objective)

    def _metrics(self, returns: np.ndarray, trades: np.ndarray) -> dict[str, Any]:
        return evaluation_metrics(returns, trades, self.periods_per_year)

    def _selection(self, results: list[Outcome]) -> tuple[int, dict[str, Any]]:
        """Best set by objective, and the DSR of that choice among all sets tried."""
        scores = [self._score(r) for r in results]
        best = int(np.argmax(scores))
        srs = np.array([r.sr_per_bar for r in results])
        chosen = results[best]
        skew, kurt = chosen.skew, chosen.kurtosis
        var = float(srs.var(ddof=1)) if srs.size > 1 else 0.0
        dsr = ovf.deflated_sharpe_ratio(srs[best], chosen.n_bars, skew, kurt, len(results), var)
        return best, {"trials": len(results), "sr_variance": var, "skew": skew, "kurtosis": kurt,
                      "sr_per_bar": float(srs[best]), "dsr": _finite(dsr),
                      "sr0_per_bar": ovf.expected_max_sharpe(len(results), var)}

    def _psr(self, returns: np.ndarray) -> float:
        skew, kurt = ovf.moments(returns)
        return ovf.probabilistic_sharpe_ratio(ovf.sharpe_per_period(returns), 0.0,
                                              len(returns), skew, kurt)

    def _folds(self, folds: int | None, mode: str | None) -> list[Fold]:
        wf = self.config.walk_forward
        return walk_forward_folds(
            self.timeline.n_bars, folds or wf.folds, mode or wf.mode,  # type: ignore[arg-type]
            wf.train_segments, wf.gap_bars, wf.min_train_bars, wf.min_test_bars)

    def _holdout(self) -> Fold:
        cfg, wf = self.config.holdout, self.config.walk_forward
        return holdout_split(self.timeline.n_bars, cfg.oos_fraction, cfg.gap_bars,
                             wf.min_train_bars, wf.min_test_bars)

    def plan(self, which: str, folds: int | None = None, mode: str | None = None
             ) -> list[tuple[int, int]]:
        """The evaluation batches ``run(which)`` submits, in order: (tasks, total window length
        in us). Raises what the runs would raise for windows that do not fit."""
        sets, bar = len(self.space.sets), self.timeline.bar_us
        out: list[tuple[int, int]] = []
        if which in ("walk-forward", "all"):
            fl = self._folds(folds, mode)
            out += [(len(fl) * sets, sets * bar * sum(f.train.bars for f in fl)),
                    (len(fl), bar * sum(f.test.bars for f in fl))]
        if which in ("oos", "all"):
            fold = self._holdout()
            out += [(sets, sets * bar * fold.train.bars), (1, bar * fold.test.bars)]
        if which in ("pbo", "all"):
            out.append((sets, sets * bar * self.timeline.n_bars))
        if which == "monte-carlo":  # the base run; in ``all`` the stitched OOS is reused
            out.append((1, bar * self.timeline.n_bars))
        return out

    def _window_row(self, w_is: Window, w_oos: Window) -> dict[str, str]:
        (a, b), (c, d) = self.timeline.times(w_is), self.timeline.times(w_oos)
        return {"is_start": _iso(a), "is_end": _iso(b), "oos_start": _iso(c), "oos_end": _iso(d)}

    # validations --------------------------------------------------------------------------------
    def holdout(self, out: ValidationResult) -> None:
        fold = self._holdout()
        is_res = self._evaluate([(p, fold.train) for p in self.space.sets], "in-sample search",
                                keep_series=False)
        best, selection = self._selection(is_res)
        (oos,) = self._evaluate([(self.space.sets[best], fold.test)], "out of sample")
        out.sections["oos"] = {
            "windows": self._window_row(fold.train, fold.test),
            "params": self.space.sets[best], "selection": selection,
            "is": _summary_metrics(is_res[best].metrics),
            "oos": _summary_metrics(oos.metrics), "psr": _finite(self._psr(oos.returns)),
        }
        out.figures.setdefault("oos_sharpe", _finite(oos.metrics.get("sharpe")))
        out.figures.setdefault("psr", out.sections["oos"]["psr"])
        out.figures.setdefault("dsr", selection["dsr"])

    def walk_forward(self, out: ValidationResult, folds: int | None = None,
                     mode: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Optimise on each fold's in-sample window only, trade the choice out of sample;
        returns the stitched out-of-sample bar returns and trade returns."""
        wf = self.config.walk_forward
        fold_list = self._folds(folds, mode)
        n = len(self.space.sets)
        jobs = [(p, f.train) for f in fold_list for p in self.space.sets]
        is_res = self._evaluate(jobs, "walk-forward in-sample search", keep_series=False)
        chosen = [int(np.argmax([self._score(r) for r in is_res[i * n:(i + 1) * n]]))
                  for i in range(len(fold_list))]
        oos_res = self._evaluate([(self.space.sets[c], f.test)
                                  for c, f in zip(chosen, fold_list, strict=True)],
                                 "walk-forward out of sample")
        rows, is_scores, oos_scores = [], [], []
        for f, c, res in zip(fold_list, chosen, oos_res, strict=True):
            best_is = is_res[f.index * n + c]
            is_scores.append(self._score(best_is))
            oos_scores.append(self._score(res))
            rows.append({"fold": f.index, **self._window_row(f.train, f.test),
                         "is_bars": f.train.bars, "oos_bars": f.test.bars,
                         "params": json.dumps(self.space.sets[c], sort_keys=True),
                         **{f"is_{k}": v for k, v in _summary_metrics(best_is.metrics).items()},
                         **{f"oos_{k}": v for k, v in _summary_metrics(res.metrics).items()}})
        stitched = np.concatenate([r.returns for r in oos_res])
        trades = np.concatenate([r.trade_returns for r in oos_res])
        metrics = self._metrics(stitched, trades)
        mean_is, mean_oos = float(np.mean(is_scores)), float(np.mean(oos_scores))
        wfe = mean_oos / mean_is if mean_is > 0 and math.isfinite(mean_oos) else math.nan
        start = self.timeline.times(fold_list[0].test)[0]
        ts = start + np.arange(stitched.size, dtype=np.int64) * self.timeline.bar_us
        out.tables["walk_forward_folds"] = pl.DataFrame(rows)
        out.tables["oos_equity"] = pl.DataFrame({
            "ts": pl.Series(ts).cast(pl.Datetime("us", "UTC")), "return": stitched,
            "equity": np.cumprod(1 + stitched)})
        out.sections["walk_forward"] = {
            "mode": mode or wf.mode, "folds": len(fold_list), "objective": self.config.objective,
            "oos": _summary_metrics(metrics), "wfe": _finite(wfe),
            "psr": _finite(self._psr(stitched)),
        }
        out.figures["oos_sharpe"] = _finite(metrics.get("sharpe"))
        out.figures["psr"] = out.sections["walk_forward"]["psr"]
        out.figures["wfe"] = _finite(wfe)
        return stitched, trades

    def overfitting(self, out: ValidationResult) -> None:
        """Every set over the whole timeline: PBO by CSCV, DSR of the best, stability."""
        full = Window(0, self.timeline.n_bars)
        res = self._evaluate([(p, full) for p in self.space.sets], "all parameter sets")
        scores = np.array([self._score(r) for r in res])
        best, selection = self._selection(res)
        section: dict[str, Any] = {"objective": self.config.objective,
                                   "best_params": self.space.sets[best], "selection": selection}
        if len(res) >= 2:
            pbo = ovf.pbo_cscv(np.stack([r.returns for r in res], axis=1), self.config.pbo.blocks)
            section["pbo"] = pbo.as_dict()
            out.figures["pbo"] = pbo.pbo
            out.tables["pbo_logits"] = pl.DataFrame({"split": np.arange(pbo.n_splits),
                                                     "logit": pbo.logits,
                                                     "is_sharpe_per_bar": pbo.is_sharpe,
                                                     "oos_sharpe_per_bar": pbo.oos_sharpe})
            stability = ovf.parameter_stability(self.space.coords, scores)
            section["stability"] = stability.as_dict()
            out.figures["stability"] = _finite(stability.ratio)
        else:
            section["pbo"] = None
            out.reasons.append("warn: PBO and stability need at least 2 parameter sets")
        out.figures["dsr"] = selection["dsr"]
        out.tables["parameter_sets"] = pl.DataFrame([
            {"set": i, "params": json.dumps(p, sort_keys=True), "objective": _finite(scores[i]),
             **_summary_metrics(r.metrics)} for i, (p, r) in enumerate(zip(
                 self.space.sets, res, strict=True))])
        out.sections["pbo"] = section

    def monte_carlo(self, out: ValidationResult, runs: int | None, seed: int | None,
                    source: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Monte Carlo of ``source`` (bar returns, trade returns), or of the base strategy
        parameters (no overrides) over the whole timeline."""
        mc = self.config.monte_carlo
        if source is None:
            (res,) = self._evaluate([({}, Window(0, self.timeline.n_bars))],
                                    "Monte Carlo base run")
            source = (res.returns, res.trade_returns)
            what = "base strategy parameters, whole range"
        else:
            what = "stitched walk-forward out of sample"
        used_seed = mc.seed if seed is None else seed
        # recorded: ``report --run`` redraws its fan with the seed the validation used
        section: dict[str, Any] = {"source": what, "seed": used_seed}
        methods = ("reshuffle", "bootstrap") if mc.method == "both" else (mc.method,)
        for method in methods:
            data = source[1] if method == "reshuffle" else source[0]
            if data.size < 2:
                unit = "trades" if method == "reshuffle" else "bars"
                out.reasons.append(f"warn: Monte Carlo {method} skipped: {data.size} {unit}")
                section[method] = None
                continue
            self.progress.start(None, f"Monte Carlo {method}")
            result = monte_carlo(data, method, runs or mc.runs,  # type: ignore[arg-type]
                                 used_seed, mc.block_bars,
                                 mc.ruin_drawdown, self.periods_per_year, self.executor)
            section[method] = result.as_dict()
            out.tables[f"monte_carlo_{method}"] = result.runs
            out.figures["ruin"] = max(out.figures.get("ruin") or 0.0, result.prob_ruin)
        out.sections["monte_carlo"] = section

    def run(self, which: str = "all", folds: int | None = None, mode: str | None = None,
            runs: int | None = None, seed: int | None = None) -> ValidationResult:
        if which not in WHICH:
            raise UsageError(f"validation {which!r}: expected one of {', '.join(WHICH)}")
        out = ValidationResult(which)
        self._plan = self.plan(which, folds, mode)
        out.sections["config"] = {"objective": self.config.objective, "bar": self.config.bar,
                                  "parameter_sets": len(self.space.sets),
                                  "start": _iso(self.timeline.start_us),
                                  "end": _iso(self.timeline.end_us),
                                  "bars": self.timeline.n_bars}
        stitched = None
        if which in ("walk-forward", "all"):
            stitched = self.walk_forward(out, folds, mode)
        if which in ("oos", "all"):  # in ``all`` the walk-forward figures take precedence
            self.holdout(out)
        if which in ("pbo", "all"):
            self.overfitting(out)
        if which in ("monte-carlo", "all"):
            self.monte_carlo(out, runs, seed, stitched)
        apply_verdict(out, self.config.verdict)
        return out
