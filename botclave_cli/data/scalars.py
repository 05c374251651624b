"""Typed scalars out of Polars aggregates.

``Series.min()/max()/median()`` are typed as any Python literal or None; these narrow them to the
number or datetime the caller works with, and say which column was empty (or not of that type)
instead of failing later with a TypeError.
"""

from __future__ import annotations

import datetime as dt

from botclave_cli.errors import DataError


def as_float(value: object, what: str) -> float:
    """An int/float aggregate as float; DataError naming ``what`` when null or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"{what}: expected a number, got {value!r}")
    return float(value)


def as_datetime(value: object, what: str) -> dt.datetime:
    """A datetime aggregate; DataError naming ``what`` when null or not a datetime."""
    if not isinstance(value, dt.datetime):
        raise DataError(f"{what}: expected a datetime, got {value!r}")
    return value
