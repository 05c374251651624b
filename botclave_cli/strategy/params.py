"""pydantic schema of ``configs/strategy_params.yaml`` and ``--set key=value`` overrides.

Every field has a default, so an empty file is a valid (default) configuration. Units are in the
field names or descriptions: fractions of equity (0.01 = 1 %), ticks, bars, milliseconds, bps.
A wrong key or value becomes one ``ConfigError`` line naming the key path (``config.py``).
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from botclave_cli.config import validate_data
from botclave_cli.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class BarsParams(_Strict):
    """The bar series the strategy decides on (decisions happen only on completed bars)."""

    timeframe: str = Field("1m", pattern=r"^[1-9][0-9]*(s|m|h|d)$",
                           description="bar length: 30s, 1m, 5m, 1h, 1d")


class StructureParams(_Strict):
    """Market structure (strategy/structure.py)."""

    swing_confirm_bars: int = Field(3, ge=1, le=50, description="bars after a pivot before a "
                                    "swing is known (the confirmation delay)")
    break_on: Literal["close", "wick"] = Field("close", description="a break of structure needs "
                                               "a bar CLOSE beyond the swing, or only a wick")
    ob_max_age_bars: int = Field(240, ge=1, description="an order block not mitigated within "
                                 "this many bars is dropped")
    fvg_min_ticks: int = Field(1, ge=0, description="smallest fair value gap kept, in ticks")
    atr_period: int = Field(14, ge=1, le=500, description="bars in the ATR (simple mean of the "
                            "true range)")


class EntryParams(_Strict):
    """Which setups open positions, and the filters every entry must pass."""

    setups: list[Literal["bos", "bos_ob_retest", "absorption"]] = Field(
        default_factory=lambda: list[Literal["bos", "bos_ob_retest", "absorption"]](["bos"]),
        description="bos: enter on the bar that breaks structure (BOS or CHoCH); bos_ob_retest: a "
                    "limit order at the order block's proximal edge after the break; absorption: "
                    "fade an absorption event on the side that absorbed")
    sides: Literal["both", "long", "short"] = "both"
    order_type: Literal["market", "limit"] = Field("market", description="entry order for the "
                                                   "bos and absorption setups")
    limit_offset_ticks: int = Field(0, ge=0, description="limit entries: ticks better than the "
                                    "decision bar's close")
    limit_expiry_bars: int = Field(10, ge=1, description="unfilled entry limit orders are "
                                   "cancelled after this many bars")
    min_delta_pct: float = Field(0.0, ge=0.0, le=1.0, description="bos: the breaking bar's delta "
                                 "/ volume must agree with the break by at least this much")
    min_displacement_atr: float = Field(0.0, ge=0.0, description="bos: the breaking bar's body "
                                        "must be at least this many ATRs")
    absorption_min_strength: float = Field(0.0, ge=0.0, description="absorption: smallest "
                                           "detector strength (volume in units of a median "
                                           "window) that counts")
    stacked_imbalance: bool = Field(False, description="require a stacked imbalance in the "
                                    "entry's direction on the decision bar (footprint)")
    cvd_divergence_veto: bool = Field(False, description="skip entries against a CVD divergence "
                                      "confirmed within divergence_lookback_bars")
    divergence_lookback_bars: int = Field(30, ge=1)
    cvd_reset: Literal["none", "daily"] = Field("daily", description="CVD restarts at each UTC "
                                                "day (daily) or runs over the whole data")
    book_imbalance_min: float | None = Field(None, ge=-1.0, le=1.0, description="require book "
                                             "imbalance (bid-ask)/(bid+ask) at least this in the "
                                             "entry's direction (long: >= min, short: <= -min), "
                                             "as known at the decision time; null disables "
                                             "(needs book data: backtest --book)")
    book_imbalance_levels: int = Field(10, ge=1, le=100, description="levels per side summed "
                                       "in the book imbalance")


class OrderFlowParams(_Strict):
    """Footprint and detector settings (engine/footprint/, engine/signals/)."""

    row_size_ticks: int = Field(10, ge=1, description="footprint row height in ticks")
    imbalance_ratio: float = Field(3.0, gt=0, description="diagonal volume ratio of an imbalance")
    stacked_min_levels: int = Field(3, ge=1, description="consecutive imbalanced rows that stack")
    absorption_level_ticks: int = Field(1, ge=1, description="absorption: level height in ticks")
    absorption_volume_mult: float = Field(1.0, gt=0, description="absorption: aggressive volume "
                                          "into one level >= this x the median window's volume")
    absorption_max_through_ticks: int = Field(2, ge=0, description="absorption: price may trade "
                                              "at most this many ticks through the level")
    absorption_baseline_bars: int = Field(60, ge=1, description="absorption: the median window "
                                          "is taken over this many bars before the bar judged")
    absorption_min_baseline_bars: int = Field(10, ge=1, description="absorption: no event until "
                                              "this many bars exist to take the median from")


class StopParams(_Strict):
    """Where the protective stop goes."""

    mode: Literal["order_block", "swing", "atr"] = Field("order_block", description="beyond the "
                                                         "order block / last swing / ATR multiple")
    buffer_ticks: int = Field(2, ge=0, description="extra ticks beyond the order block or swing")
    atr_mult: float = Field(1.5, gt=0, description="atr mode (and fallback when no order block "
                            "or swing exists): stop distance in ATRs")


class TargetParams(_Strict):
    """Where profits are taken (a resting limit order, filled only when price trades through)."""

    mode: Literal["r_multiple", "poc", "none"] = Field("r_multiple", description="r_multiple of "
                                                       "the stop distance; poc: the highest "
                                                       "(long) / lowest (short) bar POC of the "
                                                       "last poc_lookback_bars when beyond the "
                                                       "entry, else r_multiple; or no target")
    r_multiple: float = Field(2.0, gt=0)
    poc_lookback_bars: int = Field(60, ge=1, description="poc mode: bars whose POCs are searched")


class TrailingParams(_Strict):
    enabled: bool = False
    atr_mult: float = Field(2.0, gt=0, description="trailing distance from the best price since "
                            "entry, in ATRs at entry")


class ExitParams(_Strict):
    time_stop_bars: int = Field(0, ge=0, description="close after this many bars (0 = never)")
    on_opposite_signal: bool = Field(True, description="an entry signal against open positions "
                                     "closes them first; otherwise it is rejected")


class RiskParams(_Strict):
    """Limits enforced by the backtest engine itself, whatever the strategy asks for."""

    sizing: Literal["risk", "equity_fraction"] = Field("risk", description="risk: size from "
                                                       "per_trade / stop distance; equity_fraction:"
                                                       " notional = fraction x equity")
    per_trade: float = Field(0.01, gt=0, le=0.2, description="share of equity lost at the stop")
    fraction: float = Field(1.0, gt=0, le=10.0, description="equity_fraction sizing")
    max_position: float = Field(1.0, gt=0, le=10.0, description="largest total notional as a "
                                "multiple of equity (1.0 = no leverage)")
    max_concurrent: int = Field(1, ge=1, le=16, description="open positions at once")
    max_daily_loss: float = Field(0.05, gt=0, le=1.0, description="equity drop from the UTC day's "
                                  "start that closes everything and halts entries for the day")
    max_drawdown: float = Field(0.25, gt=0, le=1.0, description="drop from the equity peak that "
                                "closes everything and halts the run")
    cooldown_losses: int = Field(2, ge=0, description="consecutive losing trades that start a "
                                 "cooldown (0 = never)")
    cooldown_minutes: float = Field(30.0, ge=0, description="no new entries for this long")


class ExecutionParams(_Strict):
    """The simulated exchange."""

    initial_equity: float = Field(10_000.0, gt=0, description="quote currency")
    latency_ms: float = Field(50.0, ge=0, description="decision -> order at the exchange")
    slippage_bps: float = Field(1.0, ge=0, le=1000, description="taker fills (market and "
                                "stop orders) are this many bps worse than the trade price")
    participation: float = Field(1.0, gt=0, le=1.0, description="share of each trade's quantity "
                                 "our orders may take (partial fills)")
    limit_fill: Literal["through", "touch"] = Field("through", description="limit orders fill "
                                                    "when price trades through (strict) or "
                                                    "touches the limit")
    bars_path: Literal["ohlc", "olhc", "nearest"] = Field("nearest", description="bars-only mode:"
                                                          " intra-bar path open->high->low->close, "
                                                          "open->low->high->close, or the extreme "
                                                          "nearer the open first")
    book_sample_ms: float = Field(1000.0, ge=1, description="with book data: the rebuilt book "
                                  "is sampled on this grid; an order sees the last sample at "
                                  "or before its arrival (at most this stale)")
    book_depth: int = Field(20, ge=1, le=1000, description="with book data: levels per side a "
                            "market order can walk (and where a limit finds its queue)")
    queue_model: Literal["risk_averse", "prob_power"] = Field(
        "risk_averse", description="with book data: what moves a resting limit up its queue: "
        "risk_averse = only trades at its price (a cancellation is behind us; the queue ahead is "
        "capped at the level's size); "
        "prob_power = also the part of a fall of the level's size (between samples) that "
        "trades do not explain, ahead of us with probability front^n / (front^n + back^n) "
        "(hftbacktest's ProbQueueModel + PowerProbQueueFunc)")
    queue_power: float = Field(2.0, gt=0, le=100, description="with book data and queue_model "
                               "prob_power: the power n (larger = cancellations come more from "
                               "the longer side of our order)")
    equity_interval: str = Field("1m", pattern=r"^[1-9][0-9]*(s|m|h|d)$",
                                 description="equity marked to market at this interval")


class SmaCrossParams(_Strict):
    """The simple moving-average cross (cross-checks and benchmarks), long only."""

    fast: int = Field(10, ge=1)
    slow: int = Field(30, ge=2)

    @model_validator(mode="after")
    def _order(self) -> SmaCrossParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be below slow ({self.slow})")
        return self


class StrategyParams(_Strict):
    """``configs/strategy_params.yaml``."""

    name: str = Field("orderflow", description="orderflow | sma_cross | a user class as "
                      "'package.module:Class' or 'path/to/file.py:Class'")
    bars: BarsParams = Field(default_factory=BarsParams)
    structure: StructureParams = Field(default_factory=StructureParams)
    entry: EntryParams = Field(default_factory=EntryParams)
    orderflow: OrderFlowParams = Field(default_factory=OrderFlowParams)
    stop: StopParams = Field(default_factory=StopParams)
    target: TargetParams = Field(default_factory=TargetParams)
    trailing: TrailingParams = Field(default_factory=TrailingParams)
    exit: ExitParams = Field(default_factory=ExitParams)
    risk: RiskParams = Field(default_factory=RiskParams)
    execution: ExecutionParams = Field(default_factory=ExecutionParams)
    sma_cross: SmaCrossParams = Field(default_factory=SmaCrossParams)
    user: dict[str, Any] = Field(default_factory=dict, description="free-form parameters for a "
                                 "user strategy class")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``["risk.per_trade=0.005", ...]`` applied to a parsed YAML mapping (values parsed as YAML).

    Unknown keys are caught by the schema afterwards; a malformed override is one line here.
    """
    out = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. risk.per_trade=0.005")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML") from None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def params_with_overrides(params: StrategyParams, overrides: list[str]) -> StrategyParams:
    """A validated copy of ``params`` with ``--set`` overrides applied."""
    data = apply_overrides(params.model_dump(mode="json"), overrides)
    return validate_data(data, StrategyParams, "--set")


def bar_us(spec: str) -> int:
    """``"1m"`` -> 60_000_000 (microseconds)."""
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}[spec[-1]]
    return int(spec[:-1]) * unit * 1_000_000
