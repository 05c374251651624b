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
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from botclave_cli.backtest import overfitting as ovf
from botclave_cli.backtest.executor import Executor, SerialExecutor
from botclave_cli.backtest.metrics import MetricsCalculator
from botclave_cli.backtest.montecarlo import monte_carlo
from botclave_cli.backtest.splits import Window, holdout_split, walk_forward_folds
from botclave_cli.config import ExchangeConfig, validate_data
from botclave_cli.data.atomic import write_parquet, write_text
from botclave_cli.data.store import DatasetRef, Store, from_us, to_us
from botclave_cli.errors import BotclaveError, DataError, UsageError
from botclave_cli.progress import Progress, or_null
from botclave_cli.strategy.params import StrategyParams, apply_overrides, bar_us

Which = Literal["oos", "walk-forward", "monte-carlo", "pbo", "all"]
WHICH: tuple[str, ...] = ("oos", "walk-forward", "monte-carlo", "pbo", "all")
Objective = Literal["sharpe", "sortino", "profit_factor", "return_dd"]
YEAR_US = 365 * 86_400 * 1_000_000
VALIDATION_CONFIG = "validation.yaml"


# configs/validation.yaml ------------------------------------------------------------------------
#: the space used when the file has no ``parameters`` key: 5 x 2 = 10 sets (make demo's size)
DEFAULT_PARAMETERS: dict[str, list[Any]] = {
    "target.r_multiple": [1.5, 2.0, 2.5, 3.0, 4.0], "stop.atr_mult": [1.0, 2.0]}

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
    runs: int = Field(200, ge=1, le=1_000_000, description="runs per method")
    method: Literal["both", "reshuffle", "bootstrap"] = Field(
        "both", description="reshuffle the trades, block-bootstrap bar returns, or both")
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
    parameters: dict[str, list[Any] | ParamRange] = Field(
        default_factory=lambda: dict[str, list[Any] | ParamRange](DEFAULT_PARAMETERS),
        description="dotted strategy keys "
        "-> values or {min, max, step}; an explicitly empty mapping is an error")
    holdout: HoldoutConfig = Field(default_factory=HoldoutConfig)
    walk_forward: WalkForwardConfig = Field(default_factory=WalkForwardConfig)
    monte_carlo: MonteCarloConfig = Field(default_factory=MonteCarloConfig)
    pbo: PBOConfig = Field(default_factory=PBOConfig)
    verdict: VerdictConfig = Field(default_factory=VerdictConfig)


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
    check: Callable[[dict[str, Any]], object] | None = None,
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
    metrics: dict[str, float | None]  # None where a figure is undefined (no trades, no losses)


class Evaluator(Protocol):
    def __call__(self, params: dict[str, Any], start_us: int, end_us: int) -> EvaluationResult:
        ...


METRIC_KEYS = ("sharpe", "sortino", "profit_factor", "return_dd", "total_return",
               "max_drawdown", "trades")


def evaluation_metrics(
    returns: np.ndarray, trade_returns: np.ndarray, periods_per_year: float
) -> dict[str, float | None]:
    """``MetricsCalculator``'s figures for per-bar returns and closed trades' returns, plus
    ``return_dd`` (total return / |max drawdown|). Annualised with ``periods_per_year``;
    ``max_drawdown`` is <= 0 as in MetricsCalculator; undefined values are None, except a
    profit factor or return/drawdown with gains and no loss, which is +inf (shown as null)."""
    r = np.asarray(returns, dtype=np.float64)
    equity = np.cumprod(np.concatenate([[1.0], 1.0 + r]))
    t = np.asarray(trade_returns, dtype=np.float64)
    trades = pl.DataFrame({"pnl": t}) if t.size else None
    calc = MetricsCalculator()
    out: dict[str, Any] = {**calc.returns_stats(equity, periods_per_year),
                           **calc.drawdown_stats(equity, None), **calc.trade_stats(trades)}
    total, dd = out["total_return"], out["max_drawdown"]
    # undefined because nothing was lost: rank such a set first, not last
    out["return_dd"] = total / abs(dd) if dd else (math.inf if total > 0 else None)
    if out["profit_factor"] is None and t.size and bool((t > 0).any()):
        out["profit_factor"] = math.inf
    return out


@dataclass(frozen=True)
class Outcome:
    """What a worker sends back: metrics and the per-bar Sharpe moments always, the series only
    when asked for (shipping hundreds of full series back costs more than computing them)."""

    metrics: dict[str, float | None]
    n_bars: int
    sr_per_bar: float
    skew: float
    kurtosis: float
    returns: np.ndarray = field(default_factory=lambda: np.zeros(0))
    trade_returns: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True)
class _Task:
    evaluator: Evaluator
    params: dict[str, Any]
    start_us: int
    end_us: int
    keep_series: bool


def _run_task(task: _Task) -> Outcome:
    res = task.evaluator(task.params, task.start_us, task.end_us)
    r = np.asarray(res.returns, dtype=np.float64)
    skew, kurt = ovf.moments(r)
    out = Outcome(dict(res.metrics), len(r), ovf.sharpe_per_period(r), skew, kurt)
    if task.keep_series:
        out = Outcome(out.metrics, out.n_bars, out.sr_per_bar, skew, kurt, r,
                      np.asarray(res.trade_returns, dtype=np.float64))
    return out


def objective_value(metrics: dict[str, Any], objective: str) -> float:
    """The objective from a metrics dict; None, NaN and missing values rank last."""
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
        """``[start_us, end_us)`` of a window (as ``splits.window_times``, without the array)."""
        return self.start_us + w.start * self.bar_us, self.start_us + w.end * self.bar_us


def _iso(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, tz=dt.UTC).isoformat()


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


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


def _summary_metrics(m: dict[str, Any]) -> dict[str, float | None]:
    return {k: _finite(m.get(k)) for k in METRIC_KEYS}


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
        """Parquet tables and ``validation.json`` into ``directory``, replaced as a whole: the
        files are written into a temporary folder beside it that takes its place only when
        complete, so a reader never sees a mix of two runs or a half-written table."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
        old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            for name, frame in sorted(self.tables.items()):
                write_parquet(tmp / f"{name}.parquet", frame)
            data = jsonable(self.as_dict() | {"tables": sorted(f"{n}.parquet"
                                                               for n in self.tables)})
            write_text(tmp / "validation.json", json.dumps(
                data, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n")
            if directory.exists():
                os.replace(directory, old)
            os.replace(tmp, directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
        return [directory / f"{n}.parquet" for n in sorted(self.tables)] + [
            directory / "validation.json"]


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
    def _evaluate(self, jobs: list[tuple[dict[str, Any], Window]], what: str,
                  keep_series: bool = True) -> list[Outcome]:
        tasks = [_Task(self.evaluator, p, *self.timeline.times(w), keep_series) for p, w in jobs]
        self.progress.start(len(tasks), what)
        results = self.executor.map(_run_task, tasks, self.progress.advance)
        for (_, w), res in zip(jobs, results, strict=True):
            if res.n_bars != w.bars:
                raise BotclaveError(f"the evaluator returned {res.n_bars} bar returns for "
                                    f"a window of {w.bars} bars ({what})")
        return results

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

    def _window_row(self, w_is: Window, w_oos: Window) -> dict[str, str]:
        (a, b), (c, d) = self.timeline.times(w_is), self.timeline.times(w_oos)
        return {"is_start": _iso(a), "is_end": _iso(b), "oos_start": _iso(c), "oos_end": _iso(d)}

    # validations --------------------------------------------------------------------------------
    def holdout(self, out: ValidationResult) -> None:
        cfg, wf = self.config.holdout, self.config.walk_forward
        fold = holdout_split(self.timeline.n_bars, cfg.oos_fraction, cfg.gap_bars,
                             wf.min_train_bars, wf.min_test_bars)
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
        fold_list = walk_forward_folds(
            self.timeline.n_bars, folds or wf.folds, mode or wf.mode,  # type: ignore[arg-type]
            wf.train_segments, wf.gap_bars, wf.min_train_bars, wf.min_test_bars)
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
        section: dict[str, Any] = {"source": what}
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
                                 mc.seed if seed is None else seed, mc.block_bars,
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


# verdict ----------------------------------------------------------------------------------------
_RULES = (  # threshold field, figure, direction
    ("oos_sharpe_min", "oos_sharpe", "min"), ("psr_min", "psr", "min"),
    ("dsr_min", "dsr", "min"), ("pbo_max", "pbo", "max"), ("wfe_min", "wfe", "min"),
    ("stability_min", "stability", "min"), ("ruin_max", "ruin", "max"),
)


_UNDEFINED = {
    "oos_sharpe": "flat out-of-sample returns", "psr": "too few out-of-sample returns",
    "dsr": "too few returns", "pbo": "too few bars or parameter sets",
    "wfe": "the chosen sets' mean in-sample objective is not positive",
    "stability": "the best objective is not positive", "ruin": "no Monte Carlo runs",
}


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
            reasons.append(f"{level}: {name} is undefined ({_UNDEFINED[name]})")
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


# the real backtester as an evaluator ------------------------------------------------------------
_TRADES: dict[tuple[str, str, int, int], tuple[pl.DataFrame, np.ndarray]] = {}


@dataclass(frozen=True)
class TradeSource:
    """A trades dataset and range in the store, read once per process (workers included)."""

    data_dir: str
    ref: DatasetRef
    start_us: int
    end_us: int

    def load(self) -> tuple[pl.DataFrame, np.ndarray]:
        """(trades sorted by ts, their ts in us)."""
        key = (self.data_dir, str(self.ref), self.start_us, self.end_us)
        if key not in _TRADES:
            _TRADES.clear()
            df = (Store(self.data_dir).scan(self.ref, from_us(self.start_us), from_us(self.end_us))
                  .select("ts", "price", "qty", "side").collect().sort("ts", maintain_order=True))
            _TRADES[key] = (df, df["ts"].dt.epoch("us").to_numpy())
        return _TRADES[key]


@dataclass(frozen=True)
class BacktestEvaluator:
    """``Backtester`` on the trades of ``[start_us, end_us)`` with ``params`` applied over the
    base strategy config as ``--set`` overrides would be.

    Each window is backtested on its own trades only (no warm-up from earlier trades), with the
    equity marked at the validation bar, so its bar returns are the equity curve's; trade
    returns are each closed trade's net PnL over the equity before it (closed-trade equity).
    """

    trades: TradeSource
    base_params: dict[str, Any]  # StrategyParams.model_dump(mode="json")
    exchange_config: dict[str, Any]  # ExchangeConfig.model_dump(mode="json")
    symbol: str
    tick_size: float | None
    lot_size: float | None
    bar: str
    source: str = VALIDATION_CONFIG

    def strategy_params(self, params: dict[str, Any]) -> StrategyParams:
        """The validated strategy config for one parameter set (ConfigError names the key)."""
        data = apply_overrides(self.base_params,
                               [f"{k}={json.dumps(v)}" for k, v in params.items()])
        model = validate_data(data, StrategyParams, f"{self.source}: parameters")
        model.execution.equity_interval = self.bar
        return model

    def __call__(self, params: dict[str, Any], start_us: int, end_us: int) -> EvaluationResult:
        from botclave_cli.backtest.backtester import Backtester  # heavy: only where it runs

        sp = self.strategy_params(params)
        step = bar_us(self.bar)
        n = (end_us - start_us) // step
        init = sp.execution.initial_equity
        df, ts = self.trades.load()
        i0, i1 = np.searchsorted(ts, [start_us, end_us], side="left")
        ppy = YEAR_US / step
        if i1 - i0 < 2:
            flat = np.zeros(n)
            return EvaluationResult(flat, np.zeros(0), evaluation_metrics(flat, np.zeros(0), ppy))
        tester = Backtester(sp, ExchangeConfig.model_validate(self.exchange_config),
                            symbol=self.symbol, tick_size=self.tick_size,
                            lot_size=self.lot_size)
        res = tester.run(df.slice(int(i0), int(i1 - i0)))
        mark_ts = res.equity["ts"].dt.epoch("us").to_numpy()
        mark_eq = res.equity["equity"].to_numpy()
        bar_end = start_us + (np.arange(n, dtype=np.int64) + 1) * step
        idx = np.searchsorted(mark_ts, bar_end, side="right") - 1  # marks: state before ts
        equity = np.where(idx >= 0, mark_eq[np.maximum(idx, 0)], init)
        rets = equity / np.concatenate([[init], equity[:-1]]) - 1.0
        pnl = res.trades.sort("exit_ts", maintain_order=True)["pnl"].to_numpy()
        before = init + np.concatenate([[0.0], np.cumsum(pnl)[:-1]])
        trade_rets = pnl / before
        return EvaluationResult(rets, trade_rets, evaluation_metrics(rets, trade_rets, ppy))


def find_trades(store: Store, exchange: str, market: str, symbol: str,
                kind: str | None = None) -> DatasetRef:
    """The trades dataset to validate on: ``kind``, else ``trades`` where present, else
    ``agg_trades``; DataError when there is none."""
    kinds = [kind] if kind else ["trades", "agg_trades"]
    for k in kinds:
        ref = DatasetRef(exchange, market, symbol, k)
        if store.exists(ref):
            return ref
    raise DataError(f"no trades dataset for {exchange}/{market}/{symbol} (looked for "
                    f"{', '.join(kinds)}); fetch, import or synth trades first")


def backtest_validator(
    store: Store, ref: DatasetRef, start: dt.datetime, end: dt.datetime,
    strategy: StrategyParams, exchange_config: ExchangeConfig, config: ValidationConfig, *,
    source: str = VALIDATION_CONFIG, executor: Executor | None = None,
    progress: Progress | None = None,
) -> StrategyValidator:
    """A validator of the real backtester on a stored trades dataset over ``[start, end)``.

    Every parameter set is checked against the strategy schema here, before any work runs.
    """
    manifest = store.manifest(ref)
    start_us, end_us = to_us(start), to_us(end)
    trades = TradeSource(str(store.root), ref, start_us, end_us)
    if trades.load()[0].height < 2:
        raise DataError(f"{ref}: fewer than 2 trades in [{start.isoformat()}, {end.isoformat()})")
    timeline = Timeline(start_us, end_us, bar_us(config.bar))
    if timeline.n_bars < 1:
        raise UsageError(f"--from/--to: the range is shorter than one {config.bar} bar")
    evaluator = BacktestEvaluator(
        trades, strategy.model_dump(mode="json"),
        exchange_config.model_dump(mode="json"), ref.symbol,
        manifest.tick_size if manifest else None, manifest.lot_size if manifest else None,
        config.bar, source)
    space = build_space(config, source, check=evaluator.strategy_params)
    return StrategyValidator(evaluator, timeline, config, space, executor, progress)


def base_backtest(validator: StrategyValidator, strategy: StrategyParams, out_dir: Path
                  ) -> tuple[str, Path]:
    """The base strategy's backtest over the whole range, as ``botclave backtest`` writes it:
    (run id, run folder). An existing complete run folder of that id is kept as it is."""
    from botclave_cli.backtest.backtester import Backtester
    from botclave_cli.backtest.results import run_id, write_results

    ev = validator.evaluator
    if not isinstance(ev, BacktestEvaluator):
        raise UsageError("a run folder needs the backtest evaluator (backtest_validator)")
    trades, _ = ev.trades.load()
    tester = Backtester(strategy, ExchangeConfig.model_validate(ev.exchange_config),
                        symbol=ev.symbol, tick_size=ev.tick_size, lot_size=ev.lot_size)
    result = tester.run(trades)
    rid = run_id(result)
    folder = Path(out_dir) / "runs" / rid
    if not (folder / "manifest.json").exists():
        ref = ev.trades.ref
        rid, folder = write_results(result, Path(out_dir), extra={
            "dataset": str(ref), "exchange": ref.exchange, "market": ref.market})
    return rid, folder
