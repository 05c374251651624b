"""Strategy validation: holdout, walk-forward, Monte Carlo, PBO/DSR, stability, and a verdict.

The validator never runs a backtest itself. It calls an EVALUATOR, a picklable callable
``evaluate(params, start_us, end_us) -> EvaluationResult`` that trades the parameter set
``params`` (dotted strategy keys -> values, applied over the base strategy config) on the bars
``[start_us, end_us)`` of a regular bar timeline and returns one fractional return per bar, the
closed trades' returns and metrics. The evaluator may read bars BEFORE ``start_us`` (indicator
warm-up: that is the past) but nothing at or after ``end_us``; the validator only asks for
in-sample windows while it optimises, so no out-of-sample bar can reach a parameter choice.

Work runs through an ``Executor`` (serial or a process pool); tasks are deterministic and the
results come back in task order, so ``--jobs 1`` and ``--jobs N`` write identical files.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from botclave_cli.backtest import overfitting as ovf
from botclave_cli.backtest.executor import Executor, SerialExecutor
from botclave_cli.backtest.montecarlo import monte_carlo
from botclave_cli.backtest.splits import Window, holdout_split, walk_forward_folds, window_times
from botclave_cli.data.atomic import write_parquet, write_text
from botclave_cli.errors import BotclaveError, UsageError
from botclave_cli.progress import Progress, or_null

Which = Literal["oos", "walk-forward", "monte-carlo", "pbo", "all"]
WHICH: tuple[str, ...] = ("oos", "walk-forward", "monte-carlo", "pbo", "all")
Objective = Literal["sharpe", "sortino", "profit_factor", "return_dd"]
YEAR_US = 365 * 86_400 * 1_000_000
VALIDATION_CONFIG = "validation.yaml"


# configs/validation.yaml ------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParamRange(_Strict):
    """Evenly spaced values ``min, min + step, ..., max`` (inclusive)."""

    min: float
    max: float
    step: float = Field(..., gt=0)

    @model_validator(mode="after")
    def _order(self) -> ParamRange:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self

    def values(self) -> list[float | int]:
        n = int(math.floor((self.max - self.min) / self.step + 1e-9)) + 1
        out = [round(self.min + i * self.step, 12) for i in range(n)]
        if all(float(v).is_integer() for v in (self.min, self.max, self.step)):
            return [int(v) for v in out]
        return out


class SearchConfig(_Strict):
    method: Literal["grid", "random"] = Field("grid", description="grid: every combination; "
                                              "random: max_sets distinct combinations")
    max_sets: int = Field(10, ge=1, le=100_000, description="most parameter sets evaluated")
    seed: int = Field(7, description="random search draws")


class HoldoutConfig(_Strict):
    oos_fraction: float = Field(0.3, gt=0, lt=1, description="last share of bars out of sample")
    gap_bars: int = Field(5, ge=0, description="bars purged between in and out of sample")


class WalkForwardConfig(_Strict):
    folds: int = Field(3, ge=1, le=100)
    mode: Literal["rolling", "anchored"] = "rolling"
    train_segments: int = Field(2, ge=1, description="in-sample length in out-of-sample windows")
    gap_bars: int = Field(5, ge=0, description="bars purged before every out-of-sample window")
    min_train_bars: int = Field(30, ge=2)
    min_test_bars: int = Field(10, ge=2)


class MonteCarloConfig(_Strict):
    runs: int = Field(200, ge=1, le=1_000_000)
    method: Literal["reshuffle", "bootstrap"] = Field("reshuffle", description="reshuffle the "
                                                      "trades, or block-bootstrap bar returns")
    block_bars: int = Field(60, ge=1, description="bootstrap block length")
    ruin_drawdown: float = Field(0.3, gt=0, le=1, description="drawdown counted as ruin")
    seed: int = 7


class PBOConfig(_Strict):
    blocks: int = Field(8, ge=2, le=24, description="CSCV blocks (even); C(S, S/2) splits")

    @model_validator(mode="after")
    def _even(self) -> PBOConfig:
        if self.blocks % 2:
            raise ValueError(f"blocks must be even, got {self.blocks}")
        return self


class Thresholds(_Strict):
    """Bounds on the validation figures; a missing bound is not checked."""

    oos_sharpe_min: float | None = None
    psr_min: float | None = None
    dsr_min: float | None = None
    pbo_max: float | None = None
    wfe_min: float | None = None
    stability_min: float | None = None
    ruin_max: float | None = None


class VerdictConfig(_Strict):
    fail: Thresholds = Field(default_factory=lambda: Thresholds(oos_sharpe_min=0.0, pbo_max=0.5))
    warn: Thresholds = Field(default_factory=lambda: Thresholds(
        dsr_min=0.95, pbo_max=0.2, psr_min=0.95, wfe_min=0.5, stability_min=0.5, ruin_max=0.05))


class ValidationConfig(_Strict):
    """``configs/validation.yaml``."""

    objective: Objective = "sharpe"
    bar: str = Field("1m", pattern=r"^[1-9][0-9]*(s|m|h|d)$", description="timeline bar")
    search: SearchConfig = Field(default_factory=SearchConfig)
    parameters: dict[str, list[Any] | ParamRange] = Field(default_factory=dict)
    holdout: HoldoutConfig = Field(default_factory=HoldoutConfig)
    walk_forward: WalkForwardConfig = Field(default_factory=WalkForwardConfig)
    monte_carlo: MonteCarloConfig = Field(default_factory=MonteCarloConfig)
    pbo: PBOConfig = Field(default_factory=PBOConfig)
    verdict: VerdictConfig = Field(default_factory=VerdictConfig)


def bar_us(spec: str) -> int:
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86_400}[spec[-1]]
    return int(spec[:-1]) * unit * 1_000_000


# the parameter space ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ParameterSpace:
    names: list[str]
    values: list[list[Any]]  # per dimension, in the configured order
    sets: list[dict[str, Any]]
    coords: np.ndarray  # sets x dimensions: index of each value in its dimension

    def label(self, i: int) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.sets[i].items())


def build_space(
    cfg: ValidationConfig, source: str = VALIDATION_CONFIG,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> ParameterSpace:
    """Expand ``parameters`` into the sets to evaluate; ``check`` validates one set against the
    strategy schema (raising ConfigError) and is called for every set."""
    names = list(cfg.parameters)
    values = [spec.values() if isinstance(spec, ParamRange) else list(spec)
              for spec in cfg.parameters.values()]
    empty = [n for n, v in zip(names, values, strict=True) if not v]
    if not names or empty:
        what = f"parameters.{empty[0]} has no values" if empty else "parameters is empty"
        raise UsageError(f"{source}: {what}: the parameter space needs at least one value for "
                         "at least one parameter")
    sizes = [len(v) for v in values]
    total = math.prod(sizes)
    if cfg.search.method == "grid" or total <= cfg.search.max_sets:
        if total > cfg.search.max_sets:
            raise UsageError(f"{source}: the grid has {total} parameter sets, more than "
                             f"search.max_sets {cfg.search.max_sets}; raise it or use random")
        flat = np.arange(total)
    else:
        rng = np.random.default_rng(cfg.search.seed)
        flat = np.sort(rng.choice(total, size=cfg.search.max_sets, replace=False))
    coords = np.stack(np.unravel_index(flat, sizes), axis=1).astype(np.int64)
    sets = [{n: values[d][int(c[d])] for d, n in enumerate(names)} for c in coords]
    if check is not None:
        for s in sets:
            check(s)
    return ParameterSpace(names, values, sets, coords)


# evaluation interface ---------------------------------------------------------------------------
@dataclass(frozen=True)
class EvaluationResult:
    """One evaluation: per-bar fractional returns over the window (one per timeline bar), the
    closed trades' returns (fraction of equity, net of costs), and metrics (see METRIC_KEYS)."""

    returns: np.ndarray
    trade_returns: np.ndarray
    metrics: dict[str, float]


class Evaluator(Protocol):
    def __call__(self, params: dict[str, Any], start_us: int, end_us: int) -> EvaluationResult:
        ...


METRIC_KEYS = ("sharpe", "sortino", "profit_factor", "return_dd", "total_return",
               "max_drawdown", "trades")


def basic_metrics(
    returns: np.ndarray, trade_returns: np.ndarray, periods_per_year: float
) -> dict[str, float]:
    """The figures the validator ranks and reports by (annualised with ``periods_per_year``).

    Minimal stand-in until ``backtest.metrics.MetricsCalculator`` is available.
    """
    r = np.asarray(returns, dtype=np.float64)
    t = np.asarray(trade_returns, dtype=np.float64)
    ann = math.sqrt(periods_per_year)
    equity = np.cumprod(1 + r) if r.size else np.ones(1)
    peaks = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    max_dd = float(np.max(1 - equity / peaks)) if r.size else 0.0
    total = float(equity[-1] - 1)
    downside = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)) if r.size else 0.0
    gains, losses = float(t[t > 0].sum()), float(-t[t < 0].sum())
    return {
        "sharpe": ovf.sharpe_per_period(r) * ann,
        "sortino": float(r.mean() / downside * ann) if downside > 0 else 0.0,
        "profit_factor": gains / losses if losses > 0 else (math.inf if gains > 0 else 0.0),
        "return_dd": total / max_dd if max_dd > 0 else (math.inf if total > 0 else 0.0),
        "total_return": total,
        "max_drawdown": max_dd,
        "trades": float(t.size),
    }


@dataclass(frozen=True)
class _Task:
    evaluator: Evaluator
    params: dict[str, Any]
    start_us: int
    end_us: int


def _run_task(task: _Task) -> EvaluationResult:
    return task.evaluator(task.params, task.start_us, task.end_us)


def objective_value(metrics: dict[str, float], objective: str) -> float:
    """The objective from a metrics dict; NaN and missing values rank last."""
    value = metrics.get(objective)
    if value is None or not isinstance(value, int | float) or math.isnan(value):
        return -math.inf
    return float(value)


# the validator ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timeline:
    """Regular bars ``start_us, start_us + bar_us, ...`` up to ``end_us`` (exclusive)."""

    start_us: int
    end_us: int
    bar_us: int

    @property
    def n_bars(self) -> int:
        return (self.end_us - self.start_us) // self.bar_us

    def bar_ts(self) -> np.ndarray:
        return self.start_us + np.arange(self.n_bars, dtype=np.int64) * self.bar_us

    def times(self, w: Window) -> tuple[int, int]:
        return window_times(w, self.bar_ts(), self.start_us + self.n_bars * self.bar_us)


def _iso(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, tz=dt.UTC).isoformat()


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _summary_metrics(m: dict[str, float]) -> dict[str, float | None]:
    return {k: _finite(m.get(k, math.nan)) for k in METRIC_KEYS}


@dataclass
class ValidationResult:
    which: str
    verdict: str = "pass"
    reasons: list[str] = field(default_factory=list)
    figures: dict[str, float | None] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.verdict == "fail" else 0

    def as_dict(self) -> dict[str, Any]:
        return jsonable({"which": self.which, "verdict": self.verdict, "reasons": self.reasons,
                         "figures": self.figures, **self.sections})

    def write(self, directory: Path) -> list[Path]:
        """Parquet tables first, ``validation.json`` last (each atomic): a reader that finds
        the JSON finds every table it names."""
        written = []
        for name, frame in sorted(self.tables.items()):
            target = directory / f"{name}.parquet"
            write_parquet(target, frame)
            written.append(target)
        data = jsonable(self.as_dict() | {"tables": sorted(f"{n}.parquet" for n in self.tables)})
        target = directory / "validation.json"
        write_text(target, json.dumps(data, indent=2, sort_keys=True, default=str,
                                      allow_nan=False) + "\n")
        return [*written, target]


class StrategyValidator:
    """Runs the validations of ``ValidationConfig`` for one evaluator over one timeline."""

    def __init__(
        self, evaluator: Evaluator, timeline: Timeline, config: ValidationConfig,
        space: ParameterSpace, executor: Executor | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.evaluator = evaluator
        self.timeline = timeline
        self.config = config
        self.space = space
        self.executor = executor or SerialExecutor()
        self.progress = or_null(progress)
        self.periods_per_year = YEAR_US / timeline.bar_us

    # helpers ------------------------------------------------------------------------------------
    def _evaluate(self, jobs: list[tuple[dict[str, Any], Window]], what: str
                  ) -> list[EvaluationResult]:
        tasks = [_Task(self.evaluator, p, *self.timeline.times(w)) for p, w in jobs]
        self.progress.start(len(tasks), what)
        results = self.executor.map(_run_task, tasks)
        self.progress.advance(len(tasks))
        for (_, w), res in zip(jobs, results, strict=True):
            if len(res.returns) != w.bars:
                raise BotclaveError(f"the evaluator returned {len(res.returns)} bar returns for "
                                    f"a window of {w.bars} bars ({what})")
        return results

    def _score(self, res: EvaluationResult) -> float:
        return objective_value(res.metrics, self.config.objective)

    def _metrics(self, returns: np.ndarray, trades: np.ndarray) -> dict[str, float]:
        return basic_metrics(returns, trades, self.periods_per_year)

    def _selection(self, results: list[EvaluationResult]) -> tuple[int, dict[str, Any]]:
        """Best set by objective, and the DSR of that choice among all sets tried."""
        scores = [self._score(r) for r in results]
        best = int(np.argmax(scores))
        srs = np.array([ovf.sharpe_per_period(r.returns) for r in results])
        chosen = results[best].returns
        skew, kurt = ovf.moments(chosen)
        var = float(srs.var(ddof=1)) if srs.size > 1 else 0.0
        dsr = ovf.deflated_sharpe_ratio(srs[best], len(chosen), skew, kurt, len(results), var)
        return best, {"trials": len(results), "sr_variance": var, "skew": skew, "kurtosis": kurt,
                      "sr_per_bar": float(srs[best]), "dsr": _finite(dsr),
                      "sr0_per_bar": ovf.expected_max_sharpe(len(results), var)}

    def _psr(self, returns: np.ndarray) -> float:
        skew, kurt = ovf.moments(returns)
        return ovf.probabilistic_sharpe_ratio(ovf.sharpe_per_period(returns), 0.0,
                                              len(returns), skew, kurt)

    def _window_row(self, w_is: Window, w_oos: Window) -> dict[str, str]:
        (a, b), (c, d) = self.timeline.times(w_is), self.timeline.times(w_oos)
        return {"is_start": _iso(a), "is_end": _iso(b), "oos_start": _iso(c), "oos_end": _iso(d)}

    # validations --------------------------------------------------------------------------------
    def holdout(self, out: ValidationResult) -> None:
        cfg, wf = self.config.holdout, self.config.walk_forward
        fold = holdout_split(self.timeline.n_bars, cfg.oos_fraction, cfg.gap_bars,
                             wf.min_train_bars, wf.min_test_bars)
        is_res = self._evaluate([(p, fold.train) for p in self.space.sets], "in-sample search")
        best, selection = self._selection(is_res)
        (oos,) = self._evaluate([(self.space.sets[best], fold.test)], "out of sample")
        out.sections["oos"] = {
            "windows": self._window_row(fold.train, fold.test),
            "params": self.space.sets[best], "selection": selection,
            "is": _summary_metrics(is_res[best].metrics),
            "oos": _summary_metrics(oos.metrics), "psr": _finite(self._psr(oos.returns)),
        }
        out.figures.setdefault("oos_sharpe", _finite(oos.metrics.get("sharpe", math.nan)))
        out.figures.setdefault("psr", out.sections["oos"]["psr"])
        out.figures.setdefault("dsr", selection["dsr"])

    def walk_forward(self, out: ValidationResult, folds: int | None = None,
                     mode: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Optimise on each fold's in-sample window only, trade the choice out of sample;
        returns the stitched out-of-sample bar returns and trade returns."""
        wf = self.config.walk_forward
        fold_list = walk_forward_folds(
            self.timeline.n_bars, folds or wf.folds, mode or wf.mode,  # type: ignore[arg-type]
            wf.train_segments, wf.gap_bars, wf.min_train_bars, wf.min_test_bars)
        n = len(self.space.sets)
        jobs = [(p, f.train) for f in fold_list for p in self.space.sets]
        is_res = self._evaluate(jobs, "walk-forward in-sample search")
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
        out.figures["oos_sharpe"] = _finite(metrics["sharpe"])
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
        """Monte Carlo of ``source`` (bar returns, trade returns), or of the first parameter
        set over the whole timeline."""
        mc = self.config.monte_carlo
        if source is None:
            (res,) = self._evaluate([(self.space.sets[0], Window(0, self.timeline.n_bars))],
                                    "Monte Carlo base run")
            source = (res.returns, res.trade_returns)
            what = "first parameter set, whole range"
        else:
            what = "stitched walk-forward out of sample"
        data = source[1] if mc.method == "reshuffle" else source[0]
        if data.size < 2:
            unit = "trades" if mc.method == "reshuffle" else "bars"
            out.reasons.append(f"warn: Monte Carlo skipped: {data.size} {unit} to resample")
            out.sections["monte_carlo"] = None
            return
        result = monte_carlo(data, mc.method, runs or mc.runs, mc.seed if seed is None else seed,
                             mc.block_bars, mc.ruin_drawdown, self.periods_per_year,
                             self.executor)
        out.sections["monte_carlo"] = {"source": what, **result.as_dict()}
        out.tables["monte_carlo_runs"] = result.runs
        out.figures["ruin"] = result.prob_ruin

    def run(self, which: str = "all", folds: int | None = None, mode: str | None = None,
            runs: int | None = None, seed: int | None = None) -> ValidationResult:
        if which not in WHICH:
            raise UsageError(f"validation {which!r}: expected one of {', '.join(WHICH)}")
        out = ValidationResult(which)
        out.sections["config"] = {"objective": self.config.objective, "bar": self.config.bar,
                                  "parameter_sets": len(self.space.sets),
                                  "start": _iso(self.timeline.start_us),
                                  "end": _iso(self.timeline.end_us),
                                  "bars": self.timeline.n_bars}
        stitched = None
        if which in ("walk-forward", "all"):
            stitched = self.walk_forward(out, folds, mode)
        if which == "oos":
            self.holdout(out)
        if which in ("pbo", "all"):
            self.overfitting(out)
        if which in ("monte-carlo", "all"):
            self.monte_carlo(out, runs, seed, stitched)
        apply_verdict(out, self.config.verdict)
        return out


# verdict ----------------------------------------------------------------------------------------
_RULES = (  # threshold field, figure, direction
    ("oos_sharpe_min", "oos_sharpe", "min"), ("psr_min", "psr", "min"),
    ("dsr_min", "dsr", "min"), ("pbo_max", "pbo", "max"), ("wfe_min", "wfe", "min"),
    ("stability_min", "stability", "min"), ("ruin_max", "ruin", "max"),
)


def check_thresholds(figures: dict[str, float | None], bounds: Thresholds, level: str
                     ) -> list[str]:
    """One reason per broken bound; figures that were not computed are skipped, figures that
    were computed but are undefined (None) break their bound."""
    reasons = []
    for attr, name, direction in _RULES:
        bound = getattr(bounds, attr)
        if bound is None or name not in figures:
            continue
        value = figures[name]
        if value is None:
            reasons.append(f"{level}: {name} is undefined (too few returns or trades)")
        elif direction == "min" and value < bound:
            reasons.append(f"{level}: {name} {value:.4g} < {bound:g}")
        elif direction == "max" and value > bound:
            reasons.append(f"{level}: {name} {value:.4g} > {bound:g}")
    return reasons


def apply_verdict(out: ValidationResult, cfg: VerdictConfig) -> None:
    fails = check_thresholds(out.figures, cfg.fail, "fail")
    warns = check_thresholds(out.figures, cfg.warn, "warn")
    out.reasons = fails + warns + out.reasons
    if fails:
        out.verdict = "fail"
    elif out.reasons:
        out.verdict = "warn"
    else:
        out.verdict = "pass"
