"""Confirmed swing highs and lows on a bar series, with an explicit confirmation delay.

A swing high at bar ``i`` (``k`` = confirmation bars, ``k >= 1``) means ``high[i]`` is the maximum
of bars ``i-k .. i+k`` and strictly above every one of the ``k`` bars before it (so a flat top of
equal highs gives one swing, at its first bar). It is only KNOWN once bar ``i+k`` has closed:
``confirmed_at = i + k``. Anything that trades on swings must use ``confirmed_at`` (or the
``confirmed_*`` expressions, which are shifted by ``k``), never the pivot bar, or it looks ahead.
Swing lows mirror this with ``low``. A bar needs a full window on both sides (the first and last
``k`` bars are never pivots).

Bars are rows in order (row number = bar index). Output of :func:`swing_points`, one row per swing
sorted by ``confirmed_at`` then ``kind``:

- ``bar_index`` (Int64): pivot bar's row number; ``confirmed_at`` (Int64): ``bar_index + k``
- ``price`` (Float64): the pivot's high (kind ``"high"``) or low (kind ``"low"``)
- ``kind`` (String): ``"high"`` or ``"low"``
- ``time`` / ``confirmed_time``: the ``time_col`` values of those bars when a time column is given
"""

from __future__ import annotations

import polars as pl

from botclave_cli.errors import UsageError

SWING_SCHEMA: dict[str, pl.DataType] = {
    "bar_index": pl.Int64(),
    "confirmed_at": pl.Int64(),
    "price": pl.Float64(),
    "kind": pl.String(),
}


def _check_k(k: int) -> None:
    if not isinstance(k, int) or k < 1:
        raise UsageError(f"swing confirmation bars must be an integer >= 1, got {k!r}")


def swing_high_flag(k: int, high: str = "high") -> pl.Expr:
    """True at the PIVOT bar of a swing high. Uses the next ``k`` bars: analysis only (look-ahead).

    Null-safe: false where the window is incomplete (first/last ``k`` bars).
    """
    _check_k(k)
    h = pl.col(high)
    window_max = h.rolling_max(window_size=2 * k + 1, center=True)
    left_max = h.shift(1).rolling_max(window_size=k)
    return ((h >= window_max) & (h > left_max)).fill_null(False)


def swing_low_flag(k: int, low: str = "low") -> pl.Expr:
    """True at the PIVOT bar of a swing low (mirror of :func:`swing_high_flag`; look-ahead)."""
    _check_k(k)
    lo = pl.col(low)
    window_min = lo.rolling_min(window_size=2 * k + 1, center=True)
    left_min = lo.shift(1).rolling_min(window_size=k)
    return ((lo <= window_min) & (lo < left_min)).fill_null(False)


def confirmed_swing_high(k: int, high: str = "high") -> pl.Expr:
    """True at the bar where a swing high becomes known (pivot + ``k``). No look-ahead: the
    value at bar ``j`` depends only on bars ``<= j``."""
    return swing_high_flag(k, high).shift(k).fill_null(False)


def confirmed_swing_low(k: int, low: str = "low") -> pl.Expr:
    """True at the bar where a swing low becomes known (pivot + ``k``). No look-ahead."""
    return swing_low_flag(k, low).shift(k).fill_null(False)


def confirmed_swing_high_price(k: int, high: str = "high") -> pl.Expr:
    """At the confirming bar, the swing high's price (null elsewhere)."""
    return pl.when(confirmed_swing_high(k, high)).then(pl.col(high).shift(k)).otherwise(None)


def confirmed_swing_low_price(k: int, low: str = "low") -> pl.Expr:
    """At the confirming bar, the swing low's price (null elsewhere)."""
    return pl.when(confirmed_swing_low(k, low)).then(pl.col(low).shift(k)).otherwise(None)


def last_confirmed_swing_high(k: int, high: str = "high") -> pl.Expr:
    """At every bar, the price of the most recent swing high known at that bar (forward-filled)."""
    return confirmed_swing_high_price(k, high).forward_fill()


def last_confirmed_swing_low(k: int, low: str = "low") -> pl.Expr:
    """At every bar, the price of the most recent swing low known at that bar (forward-filled)."""
    return confirmed_swing_low_price(k, low).forward_fill()


def swing_points(
    bars: pl.DataFrame | pl.LazyFrame,
    k: int,
    *,
    high: str = "high",
    low: str = "low",
    time_col: str | None = None,
) -> pl.DataFrame:
    """Every confirmed swing of ``bars`` (rows in bar order) as a long table (module docstring).

    ``time_col`` (e.g. ``"bar_start"``) adds ``time`` (pivot bar) and ``confirmed_time``
    (the bar from which the swing is known).
    """
    _check_k(k)
    lf = bars.lazy() if isinstance(bars, pl.DataFrame) else bars
    cols = [high, low] + ([time_col] if time_col else [])
    base = lf.select(cols).with_row_index("bar_index").with_columns(
        pl.col("bar_index").cast(pl.Int64),
        swing_high_flag(k, high).alias("_sh"),
        swing_low_flag(k, low).alias("_sl"),
    )
    if time_col:
        base = base.with_columns(pl.col(time_col).shift(-k).alias("_ctime"))

    def side(flag: str, price: str, kind: str) -> pl.LazyFrame:
        out = base.filter(pl.col(flag)).select(
            "bar_index",
            (pl.col("bar_index") + k).alias("confirmed_at"),
            pl.col(price).cast(pl.Float64).alias("price"),
            pl.lit(kind).alias("kind"),
            *([pl.col(time_col).alias("time"), pl.col("_ctime").alias("confirmed_time")]
              if time_col else []),
        )
        return out

    out = pl.concat([side("_sh", high, "high"), side("_sl", low, "low")])
    return out.sort(["confirmed_at", "kind"]).collect()


def known_swings(swings: pl.DataFrame, at_bar: int) -> pl.DataFrame:
    """The swings known when bar ``at_bar`` has closed (``confirmed_at <= at_bar``)."""
    return swings.filter(pl.col("confirmed_at") <= at_bar)
