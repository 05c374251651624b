"""Floats <-> integer multiples of a decimal step (prices in ticks, quantities in lots).

The book kernel works on integers so that levels compare exactly; conversion happens once at
the edges, and ``from_grid`` gives back the floats the exchange's decimal text parses to.
"""

from __future__ import annotations

import numpy as np

from botclave_cli.errors import DataError


def infer_step(values: np.ndarray, max_decimals: int = 10) -> float:
    """Coarsest decimal step (1, 0.1, ...) on which every value lies: a grid, not the true tick."""
    values = values[np.isfinite(values)]
    for d in range(max_decimals + 1):
        x = values * 10.0**d
        if np.all(np.abs(x - np.rint(x)) <= 1e-6 + 1e-14 * np.abs(x)):
            return 10.0**-d
    raise DataError(f"values need more than {max_decimals} decimals; give the tick/lot size")


def to_grid(values: np.ndarray, step: float, what: str) -> np.ndarray:
    """Floats -> integer multiples of ``step``; DataError if a value is off the grid."""
    x = values / step
    r = np.rint(x)
    off = np.abs(x - r) > 1e-6 + 1e-14 * np.abs(x)
    if off.any():
        raise DataError(f"{what} {float(values[np.argmax(off)])!r} is not a multiple of {step!r}")
    return r.astype(np.int64)


def from_grid(values: np.ndarray, step: float) -> np.ndarray:
    """Integer multiples of a decimal ``step`` -> the floats their decimal text parses to
    (4200470 x 0.01 -> 42004.7, not 42004.700000000004), so prices compare and join exactly."""
    digits = max(0, int(np.ceil(-np.log10(step) - 1e-9)))
    return np.round(values * step, digits)


def polars_steps(values: np.ndarray, step: float) -> np.ndarray:
    """``(pl.col(x) / step).round().cast(pl.Int64)`` in numpy, bit for bit (prices -> ticks,
    quantities -> lots, without a frame: the live path converts one bar at a time). Polars
    divides by a scalar through its reciprocal, which rounds differently from ``values / step``
    on about one value in ten near a half; both round half to even."""
    return np.round(np.asarray(values, dtype=np.float64) * (1.0 / step)).astype(np.int64)
