"""Book data for the backtester: the rebuilt L2 book as arrays the execution core can index.

Why arrays on a grid: the execution core (execution/kernel.py) must not call Python per event, so
the book is replayed once by the engine's ``DOMBuilder`` and sampled every
``execution.book_sample_ms`` (the sample at grid time t is the book after every message with
exchange ``ts <= t``, engine rule). The kernel then looks up, for an order reaching the exchange at
time a, the last sample with ``ts <= a``: never a book from after the order's arrival, at most one
interval stale. Samples taken while the book was not synced (before the first snapshot, after a
sequence gap) are flagged invalid and the kernel falls back to the trade-price rules for that order.

Units: prices in integer ticks and quantities in integer lots of the BACKTESTER's tick/lot
(the stream is converted with them, so a book off that grid is a DataError), times in us.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from botclave_cli.engine.book.dom_builder import DOMBuilder
from botclave_cli.engine.book.stream import BookStream
from botclave_cli.errors import DataError, UsageError

BookInput = Mapping[str, pl.DataFrame | None] | tuple


@dataclass
class BookArrays:
    """Sampled book: ``ts`` (n,), ``valid`` (n,) int64, levels (n, depth) best first, 0-padded."""

    ts: np.ndarray
    valid: np.ndarray
    bid_px: np.ndarray
    bid_qty: np.ndarray
    ask_px: np.ndarray
    ask_qty: np.ndarray
    interval_us: int
    tick_size: float = 1.0
    lot_size: float = 1.0

    @classmethod
    def empty(cls) -> BookArrays:
        z1 = np.zeros(0, np.int64)
        z2 = np.zeros((0, 1), np.int64)
        return cls(z1, z1, z2, z2, z2, z2, 0)

    @property
    def n(self) -> int:
        return int(self.ts.shape[0])


def book_frames(book: BookInput) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """``{"book_snapshot": df, "book_diff": df}`` or ``(snapshot, diff)`` -> the two frames."""
    if isinstance(book, Mapping):
        unknown = set(book) - {"book_snapshot", "book_diff"}
        if unknown:
            raise UsageError(f"book: unexpected key(s) {sorted(unknown)}; expected book_snapshot "
                             "and book_diff")
        return book.get("book_snapshot"), book.get("book_diff")
    if isinstance(book, tuple) and len(book) == 2:
        return book[0], book[1]
    raise UsageError("book: expected {'book_snapshot': df, 'book_diff': df} or (snapshot, diff)")


def book_arrays(book: BookInput, tick_size: float, lot_size: float, *, market: str = "spot",
                interval_us: int, depth: int) -> BookArrays:
    """Replay snapshots + diffs (seq order) and sample the top ``depth`` levels per side."""
    snap, diff = book_frames(book)
    stream = BookStream.from_frames(snap, diff, tick_size, lot_size)
    builder = DOMBuilder(market)
    rep = builder.replay(stream, sample_interval_us=interval_us, sample_depth=depth)
    s = rep.samples or {"ts": np.zeros(0, np.int64), "valid": np.zeros(0, np.int64),
                        **{k: np.zeros((0, depth), np.int64)
                           for k in ("bid_px", "bid_qty", "ask_px", "ask_qty")}}
    timed = stream.ts[stream.ts >= 0]
    if timed.size == 0:
        raise DataError("book: no book message has an exchange time (ts)")
    # grid samples stop at the last grid time before the last message: add the book after the
    # last message at its time, then an invalid marker one interval later (after the book data
    # ends, orders are not matched against a book nobody has seen)
    last_ts = int(timed.max())
    state = builder.state(depth)
    end = [np.zeros(depth, np.int64) for _ in range(4)]
    for out, vals, step in zip(end, (state.bid_price, state.bid_qty, state.ask_price,
                                     state.ask_qty), (tick_size, lot_size, tick_size, lot_size),
                               strict=True):
        out[:len(vals)] = np.rint(np.asarray(vals, np.float64) / step).astype(np.int64)
    zero = np.zeros((1, depth), np.int64)

    def cat(name: str, i: int) -> np.ndarray:
        return np.ascontiguousarray(np.concatenate([s[name], end[i][None, :], zero]))

    return BookArrays(
        np.concatenate([s["ts"], [last_ts, last_ts + interval_us]]).astype(np.int64),
        np.concatenate([s["valid"], [1 if state.valid else 0, 0]]).astype(np.int64),
        cat("bid_px", 0), cat("bid_qty", 1), cat("ask_px", 2), cat("ask_qty", 3),
        interval_us, tick_size, lot_size)


def imbalance_asof(arrays: BookArrays, times: pl.Series, levels: int) -> pl.Series:
    """Book imbalance (bid - ask) / (bid + ask) of the quantity resting in ``levels`` levels per
    side, as known at each of ``times``: the last VALID sample at or before the time and at most
    one sample interval old, else null (no look-ahead, no stale value across a gap or after the
    book data ends). The definition is the engine's ``DepthAnalyzer.series`` ``imbalance``
    (tests check they agree); computed here on the sample arrays, which is ~20x faster than
    going through the long-form frame."""
    keep = arrays.valid == 1
    bid = arrays.bid_qty[keep, :levels].sum(axis=1).astype(np.float64)
    ask = arrays.ask_qty[keep, :levels].sum(axis=1).astype(np.float64)
    tot = bid + ask
    with np.errstate(divide="ignore", invalid="ignore"):
        imb = np.where(tot > 0, (bid - ask) / np.where(tot > 0, tot, 1.0), np.nan)
    right = pl.DataFrame({
        "_book_ts": pl.Series(arrays.ts[keep]).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        "imbalance": imb}).with_columns(pl.col("imbalance").fill_nan(None))
    left = pl.DataFrame({"_t": times.cast(pl.Datetime("us", "UTC"))}).with_row_index("_i")
    joined = left.sort("_t").join_asof(right, left_on="_t", right_on="_book_ts",
                                       strategy="backward",
                                       tolerance=f"{max(arrays.interval_us - 1, 0)}us")
    return joined.sort("_i")["imbalance"]
