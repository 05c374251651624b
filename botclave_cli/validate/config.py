"""``configs/validation.yaml``: parameter space, search, windows, Monte Carlo, PBO, thresholds.

Every model forbids unknown keys, so a misspelt key is a one-line ConfigError naming it
(``load_model``), not a silently ignored setting.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

WHICH: tuple[str, ...] = ("oos", "walk-forward", "monte-carlo", "pbo", "all")
Objective = Literal["sharpe", "sortino", "profit_factor", "return_dd"]
VALIDATION_CONFIG = "validation.yaml"

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
