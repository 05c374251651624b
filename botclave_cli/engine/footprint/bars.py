"""Bar assignment for footprints: time, volume, trade-count and range bars.

Every function here works on a *prepared* trade frame (see ``footprint.prepare_trades``): rows in
trade order with ``ts_us`` (Int64, microseconds UTC), ``px`` (Int64, price in ticks), ``lots``
(Int64, quantity in integer quantity steps) and ``buy`` (UInt8, 1 = aggressor bought). It adds an
Int64 ``bar_id``:

- ``time`` (``"1s"``, ``"5s"``, ``"1m"``, ``"1h"``, ``"1d"``...): ``ts_us // interval_us``, so bars
  are aligned to the UTC epoch (a ``1d`` bar starts at 00:00 UTC).
- ``trades`` (``"trades:500"``): every N trades; ``bar_id = trade number // N``. Never splits.
- ``volume`` (``"vol:50"``, N in base units): every bar holds exactly N; the trade that crosses a
  boundary is split into pieces (one row per piece, ``lots`` = the piece's share).
- ``range`` (``"range:20"``, N ticks): a bar takes trades while its high - low stays <= N ticks;
  the trade that would stretch it further opens the next bar. Never splits. Sequential: numba.

Chunked builds carry a :class:`BarState` (the id of the last, possibly unfinished bar); the
footprint builder re-feeds that bar's rows with the next chunk, so chunked == one pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numba
import numpy as np
import polars as pl

from botclave_cli.errors import UsageError

_UNIT_US = {"s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
_TIME_RE = re.compile(r"^(\d+)([smhd])$")
_SIZED_RE = re.compile(r"^(vol|trades|range):(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class BarSpec:
    """A parsed bar spec. ``size`` is microseconds (time), base units (volume), trades or ticks."""

    text: str
    kind: str  # "time" | "volume" | "trades" | "range"
    size: float

    @property
    def interval_us(self) -> int:
        return int(self.size)


def parse_bar_spec(text: str) -> BarSpec:
    """``"1m"``, ``"5s"``, ``"1h"``, ``"1d"``, ``"vol:50"``, ``"trades:500"``, ``"range:20"``.

    Raises UsageError (exit 2) naming the spec and the accepted forms.
    """
    raw = str(text).strip().lower()
    m = _TIME_RE.match(raw)
    if m:
        n = int(m.group(1))
        interval = n * _UNIT_US[m.group(2)]
        if n < 1 or interval > _UNIT_US["d"] or _UNIT_US["d"] % interval:
            raise UsageError(f"bar spec {text!r}: a time bar must divide one day (1s..1d)")
        return BarSpec(raw, "time", float(interval))
    m = _SIZED_RE.match(raw)
    if m:
        kind = {"vol": "volume", "trades": "trades", "range": "range"}[m.group(1)]
        size = float(m.group(2))
        if size <= 0 or (kind != "volume" and size != int(size)):
            raise UsageError(f"bar spec {text!r}: size must be a positive "
                             f"{'number' if kind == 'volume' else 'integer'}")
        return BarSpec(raw, kind, size)
    raise UsageError(f"unknown bar spec {text!r}; expected e.g. 1m, 5s, 1h, 1d, vol:50, "
                     "trades:500 or range:20")


@dataclass(frozen=True)
class BarState:
    """Where the next chunk's bars start: the id of the re-fed unfinished bar (for volume bars
    its cumulative lots start at ``next_bar_id * size_lots``; for trade bars at trade number
    ``next_bar_id * N``)."""

    next_bar_id: int = 0


def assign_bars(df: pl.DataFrame, spec: BarSpec, qty_step: float,
                state: BarState | None = None) -> pl.DataFrame:
    """Add ``bar_id`` to a prepared trade frame (module docstring). ``state`` continues a
    previous chunk: its rows must start with the re-fed rows of the unfinished bar."""
    state = state or BarState()
    if spec.kind == "time":
        return df.with_columns((pl.col("ts_us") // spec.interval_us).alias("bar_id"))
    if spec.kind == "trades":
        n = int(spec.size)
        return df.with_columns(
            ((pl.int_range(pl.len(), dtype=pl.Int64) + state.next_bar_id * n) // n).alias("bar_id")
        )
    if spec.kind == "volume":
        return _split_volume(df, volume_lots(spec, qty_step), state.next_bar_id)
    if spec.kind == "range":
        ids = _range_bar_ids(df["px"].to_numpy(), int(spec.size), state.next_bar_id)
        return df.with_columns(pl.Series("bar_id", ids, dtype=pl.Int64))
    raise UsageError(f"unknown bar kind {spec.kind!r}")


def volume_lots(spec: BarSpec, qty_step: float) -> int:
    lots = int(round(spec.size / qty_step))
    if lots < 1:
        raise UsageError(f"bar spec {spec.text!r}: volume is below the quantity step {qty_step}")
    return lots


def _split_volume(df: pl.DataFrame, n: int, first_bar: int) -> pl.DataFrame:
    """Split trades at every multiple of ``n`` lots of cumulative volume (vectorised).

    A trade covering cumulative lots [c0, c1) falls in bars c0 // n .. (c1 - 1) // n; each piece
    takes min(c1, (b + 1) n) - max(c0, b n) lots. Zero-quantity trades keep one row in bar c0 // n.
    """
    c1 = pl.col("lots").cum_sum() + first_bar * n
    c0 = c1 - pl.col("lots")
    out = df.with_columns(c0.alias("_c0"), c1.alias("_c1"))
    first = pl.col("_c0") // n
    last = pl.max_horizontal(first, (pl.col("_c1") - 1) // n)
    out = out.with_columns(pl.int_ranges(first, last + 1, dtype=pl.Int64).alias("bar_id"))
    out = out.explode("bar_id")
    piece = (pl.min_horizontal(pl.col("_c1"), (pl.col("bar_id") + 1) * n)
             - pl.max_horizontal(pl.col("_c0"), pl.col("bar_id") * n))
    return out.with_columns(pl.max_horizontal(piece, 0).alias("lots")).drop("_c0", "_c1")


@numba.njit(cache=True)
def _range_bar_ids(px: np.ndarray, n_ticks: int, first_bar: int) -> np.ndarray:
    out = np.empty(px.shape[0], dtype=np.int64)
    bar = first_bar
    hi = 0
    lo = 0
    for i in range(px.shape[0]):
        p = px[i]
        if i == 0:
            hi = p
            lo = p
        else:
            new_hi = max(hi, p)
            new_lo = min(lo, p)
            if new_hi - new_lo > n_ticks:
                bar += 1
                hi = p
                lo = p
            else:
                hi = new_hi
                lo = new_lo
        out[i] = bar
    return out
