"""A validation's outcome: figures, sections and tables, and the verdict with its reasons.

The verdict compares the figures (out-of-sample Sharpe, PSR, DSR, PBO, walk-forward efficiency,
parameter stability, probability of ruin) with the ``fail`` and ``warn`` thresholds of the
config: any broken ``fail`` bound fails, else any broken ``warn`` bound or any note the
validations left (a skipped Monte Carlo method, too few sets for PBO) warns, else it passes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from botclave_cli.data.atomic import atomic_dir, write_parquet, write_text
from botclave_cli.validate.config import Thresholds, VerdictConfig


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


@dataclass
class ValidationResult:
    which: str
    verdict: str = "pass"
    reasons: list[str] = field(default_factory=list)
    #: the bounds the figures meet, one line per figure ("pass: psr 0.99 >= 0.95 (warn)")
    checks: list[str] = field(default_factory=list)
    figures: dict[str, float | None] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.verdict == "fail" else 0

    def as_dict(self) -> dict[str, Any]:
        return jsonable({"which": self.which, "verdict": self.verdict, "reasons": self.reasons,
                         "checks": self.checks, "figures": self.figures, **self.sections})

    def write(self, directory: Path) -> list[Path]:
        """Parquet tables and ``validation.json`` into ``directory``, replaced as a whole: the
        files are written into a temporary folder beside it that takes its place only when
        complete, so a reader never sees a mix of two runs or a half-written table."""
        directory = Path(directory)
        with atomic_dir(directory) as tmp:
            for name, frame in sorted(self.tables.items()):
                write_parquet(tmp / f"{name}.parquet", frame)
            data = jsonable(self.as_dict() | {"tables": sorted(f"{n}.parquet"
                                                               for n in self.tables)})
            write_text(tmp / "validation.json", json.dumps(
                data, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n")
        return [directory / f"{n}.parquet" for n in sorted(self.tables)] + [
            directory / "validation.json"]


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


def passed_checks(figures: dict[str, float | None], cfg: VerdictConfig) -> list[str]:
    """One line per figure that meets bounds, naming each bound it meets and its level, e.g.
    'pass: oos_sharpe 1.2 >= 0.5 (warn), >= 0 (fail)'. A figure breaking a bound is a reason
    (``check_thresholds``) and is not listed here."""
    lines = []
    for attr, name, direction in _RULES:
        value = figures.get(name)
        if name not in figures or value is None:
            continue
        held, broken = [], False
        for level, bounds in (("warn", cfg.warn), ("fail", cfg.fail)):
            bound = getattr(bounds, attr)
            if bound is None:
                continue
            ok = value >= bound if direction == "min" else value <= bound
            held.append(f"{'>=' if direction == 'min' else '<='} {bound:g} ({level})")
            broken = broken or not ok
        if held and not broken:
            lines.append(f"pass: {name} {value:.4g} {', '.join(held)}")
    return lines


def apply_verdict(out: ValidationResult, cfg: VerdictConfig) -> None:
    """Set ``out.verdict``; the threshold reasons go before the notes already in ``reasons``,
    and ``checks`` names the bounds that held."""
    fails = check_thresholds(out.figures, cfg.fail, "fail")
    warns = check_thresholds(out.figures, cfg.warn, "warn")
    out.checks = passed_checks(out.figures, cfg)
    out.reasons = fails + warns + out.reasons
    if fails:
        out.verdict = "fail"
    elif out.reasons:
        out.verdict = "warn"
    else:
        out.verdict = "pass"
