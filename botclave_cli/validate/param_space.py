"""The parameter sets a validation evaluates: a grid, or distinct random draws from it.

Each set is a mapping of dotted strategy keys to values; ``coords`` keeps every set's position
in the grid (index of its value per dimension), which parameter stability needs to find a
set's neighbours.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from botclave_cli.errors import UsageError
from botclave_cli.validate.config import (
    VALIDATION_CONFIG,
    ParamRange,
    ValidationConfig,
)


@dataclass(frozen=True)
class ParameterSpace:
    names: list[str]
    values: list[list[Any]]  # per dimension, in the configured order
    sets: list[dict[str, Any]]
    coords: np.ndarray  # sets x dimensions: index of each value in its dimension


def build_space(
    cfg: ValidationConfig, source: str = VALIDATION_CONFIG,
    check: Callable[[dict[str, Any]], object] | None = None,
) -> ParameterSpace:
    """Expand ``parameters`` into the sets to evaluate; ``check`` validates one set against the
    strategy schema (raising ConfigError) and is called for every set.

    Grid search takes every combination (UsageError when there are more than
    ``search.max_sets``); random search draws ``max_sets`` distinct combinations with
    ``search.seed``, kept in grid order so that the same seed gives the same sets in the same
    order.
    """
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
