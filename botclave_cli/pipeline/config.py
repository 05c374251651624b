"""``configs/pipeline.yaml``: what one unattended run does, as pydantic models.

Dates are UTC; ``from`` is inclusive and ``to`` exclusive (DECISIONS.md), or ``last_days`` whole
UTC days before the run.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from botclave_cli.config import load_model
from botclave_cli.data.store import default_data_dir
from botclave_cli.errors import ConfigError

PIPELINE_CONFIG = "pipeline.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SynthStage(_Strict):
    """Synthetic market generated when ``exchange: synth`` and the stored one is missing or
    was generated with other settings."""

    seed: int = 7
    trades_per_day: int = Field(400_000, ge=5_000)
    book_interval_ms: int = Field(250, ge=100, le=1_000, description="depth diff cadence")
    edge: bool = Field(True, description="false: the control market (botclave synth --no-edge)")


FetchKind = Literal["trades", "agg_trades", "ohlcv"]


def _default_fetch_kinds() -> list[FetchKind]:
    return ["agg_trades"]


class FetchStage(_Strict):
    enabled: bool = True
    kinds: list[FetchKind] = Field(
        default_factory=_default_fetch_kinds, description="trades = raw (needs an API key)")
    max_staleness_minutes: float | None = Field(
        None, gt=0, description="exit 3 when the newest trade is older than this at run time")


class FootprintStage(_Strict):
    enabled: bool = True
    bar: str = "1m"
    row_size: int = Field(10, ge=1, description="ticks per price row")
    png_bars: int = Field(30, ge=1, le=500)


class DepthStage(_Strict):
    enabled: bool = True
    interval: str = "1s"


class BacktestStage(_Strict):
    enabled: bool = True
    set: list[str] = Field(default_factory=list, description="key=value overrides")


class ValidateStage(_Strict):
    """Walk-forward, PBO/DSR and Monte Carlo as ``configs/validation.yaml`` says; the overrides
    here keep cron and demo runs small."""

    enabled: bool = True
    folds: int | None = Field(None, ge=1, description="override walk_forward.folds")
    mc_runs: int | None = Field(None, ge=10, description="override monte_carlo.runs")
    parameters: dict[str, list[Any]] | None = Field(
        None, description="override the validation config's parameter space (dotted strategy "
        "keys -> values)")
    jobs: int | Literal["auto"] = Field(
        "auto", description="'auto' (a pool only when the measured work pays its start-up), "
        "0: all cores, 1: serial, N: N processes")

    @field_validator("jobs")
    @classmethod
    def _jobs_not_negative(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("expected auto, 0 (all cores) or a positive number")
        return value


class PipelineConfig(_Strict):
    """``configs/pipeline.yaml``: what one unattended run does."""

    title: str = "botclave run"
    exchange: str = Field("synth", description="'synth' or a ccxt exchange id")
    market: Literal["spot", "usdm", "coinm"] = "spot"
    symbol: str = "BTC/USDT"
    start: dt.date | dt.datetime | None = Field(None, alias="from")
    end: dt.date | dt.datetime | None = Field(None, alias="to")
    last_days: int | None = Field(None, ge=1, description="instead of from/to: last N UTC days")
    data_dir: Path | None = Field(None, description="default: $BOTCLAVE_DATA_DIR or ./datasets")
    reports_dir: Path = Path("reports")
    exchange_config: Path = Path("configs/exchange_config.yaml")
    strategy_config: Path = Path("configs/strategy_params.yaml")
    validation_config: Path = Path("configs/validation.yaml")
    allow_gaps: bool = Field(False, description="report despite gaps in the range (else exit 3)")
    lock_wait_seconds: float = Field(0.0, ge=0, description="wait for a running pipeline")
    synth: SynthStage = Field(default_factory=SynthStage)
    fetch: FetchStage = Field(default_factory=FetchStage)
    footprint: FootprintStage = Field(default_factory=FootprintStage)
    depth: DepthStage = Field(default_factory=DepthStage)
    backtest: BacktestStage = Field(default_factory=BacktestStage)
    validate_: ValidateStage = Field(default_factory=ValidateStage, alias="validate")

    @model_validator(mode="after")
    def _one_window(self) -> PipelineConfig:
        if self.last_days is not None and (self.start is not None or self.end is not None):
            raise ValueError("give either last_days or from/to, not both")
        if self.last_days is None and (self.start is None) != (self.end is None):
            raise ValueError("from and to go together")
        return self

    def window(self, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) in UTC: from/to, the last N whole UTC days, or the synth default day."""
        if self.last_days is not None:
            today = (now or dt.datetime.now(dt.UTC)).date()
            end = _utc(today)
            return end - dt.timedelta(days=self.last_days), end
        if self.start is not None and self.end is not None:
            start, end = _utc(self.start), _utc(self.end)
            if start >= end:
                raise ConfigError(f"pipeline config: from {start} must be before to {end}")
            return start, end
        start = _utc(dt.date(2024, 1, 1))
        return start, start + dt.timedelta(days=1)

    def resolved_data_dir(self) -> Path:
        return self.data_dir if self.data_dir is not None else default_data_dir()


def _utc(value: dt.date | dt.datetime) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def load_pipeline_config(path: Path) -> PipelineConfig:
    return load_model(path, PipelineConfig)

