"""A book message stream as the flat arrays of ``kernel``: one message per capture ``seq``.

Built from the store's long-form ``book_snapshot`` and ``book_diff`` frames; prices become
integer ticks and quantities integer lots here, once. Times are microseconds since epoch (UTC),
-1 where a message has no exchange time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from botclave_cli.data.schemas import TS
from botclave_cli.engine.book import kernel as K
from botclave_cli.engine.book.tick_grid import infer_step, to_grid
from botclave_cli.errors import DataError


def _ts_us(series: pl.Series) -> np.ndarray:
    return series.cast(TS).dt.epoch("us").fill_null(-1).to_numpy().astype(np.int64)


@dataclass
class BookStream:
    """Snapshots and diffs as kernel arrays, one message per capture ``seq``, in ``seq`` order."""

    kind: np.ndarray
    U: np.ndarray
    u: np.ndarray
    pu: np.ndarray
    ts: np.ndarray
    seq: np.ndarray
    lv_start: np.ndarray
    lv_end: np.ndarray
    lv_side: np.ndarray
    lv_px: np.ndarray
    lv_qty: np.ndarray
    tick_size: float
    lot_size: float

    @property
    def n_messages(self) -> int:
        return int(self.kind.shape[0])

    @property
    def n_levels(self) -> int:
        return int(self.lv_side.shape[0])

    @classmethod
    def from_frames(
        cls,
        book_snapshot: pl.DataFrame | None,
        book_diff: pl.DataFrame | None,
        tick_size: float | None = None,
        lot_size: float | None = None,
    ) -> BookStream:
        """Build from store-schema frames (long form); tick/lot: decimal grids if None."""
        parts = []
        if book_snapshot is not None and book_snapshot.height:
            parts.append(book_snapshot.select(
                "seq", pl.lit(K.SNAPSHOT, pl.Int8).alias("kind"),
                pl.col("last_update_id").alias("U"), pl.col("last_update_id").alias("u"),
                pl.lit(None, pl.Int64).alias("pu"), pl.col("ts").cast(TS), "side", "price", "qty"))
        if book_diff is not None and book_diff.height:
            parts.append(book_diff.select(
                "seq", pl.lit(K.DIFF, pl.Int8).alias("kind"),
                pl.col("first_update_id").alias("U"), pl.col("last_update_id").alias("u"),
                pl.col("prev_update_id").alias("pu"), pl.col("ts").cast(TS), "side", "price",
                "qty"))
        if not parts:
            raise DataError("no book snapshot or diff rows to replay")
        rows = pl.concat(parts).sort("seq", maintain_order=True)
        if rows["U"].null_count() or rows["u"].null_count():
            raise DataError("book rows without update ids (last_update_id) cannot be sequenced")
        seq = rows["seq"].to_numpy()
        n = seq.shape[0]
        cut = np.flatnonzero(np.diff(seq)) + 1
        starts = np.concatenate([[0], cut]).astype(np.int64)
        ends = np.concatenate([cut, [n]]).astype(np.int64)
        price = rows["price"].fill_null(0.0).to_numpy()
        qty = rows["qty"].fill_null(0.0).to_numpy()
        side = rows["side"]
        if tick_size is None:
            tick_size = infer_step(price[side.is_not_null().to_numpy()])
        if lot_size is None:
            lot_size = infer_step(qty[side.is_not_null().to_numpy()])
        side_code = (side.replace_strict({"bid": 0, "ask": 1}, default=None, return_dtype=pl.Int8)
                     .fill_null(-1).to_numpy())
        bad = side.is_not_null().to_numpy() & (side_code < 0)
        if bad.any():
            raise DataError(f"book side {side[int(np.argmax(bad))]!r}: expected bid or ask")
        return cls(
            kind=rows["kind"].to_numpy()[starts].astype(np.int8),
            U=rows["U"].to_numpy()[starts].astype(np.int64),
            u=rows["u"].to_numpy()[starts].astype(np.int64),
            pu=rows["pu"].fill_null(-1).to_numpy()[starts].astype(np.int64),
            ts=_ts_us(rows["ts"])[starts],
            seq=seq[starts].astype(np.int64),
            lv_start=starts, lv_end=ends, lv_side=side_code.astype(np.int8),
            lv_px=to_grid(price, tick_size, "price"), lv_qty=to_grid(qty, lot_size, "quantity"),
            tick_size=float(tick_size), lot_size=float(lot_size),
        )

    def without_message(self, index: int) -> BookStream:
        """A copy with one message removed (to test gap detection)."""
        keep = np.ones(self.n_messages, bool)
        keep[index] = False
        lv_keep = np.ones(self.n_levels, bool)
        lv_keep[self.lv_start[index]:self.lv_end[index]] = False
        width = self.lv_end[index] - self.lv_start[index]
        shift = np.where(np.arange(self.n_messages) > index, width, 0)
        return BookStream(
            self.kind[keep], self.U[keep], self.u[keep], self.pu[keep], self.ts[keep],
            self.seq[keep], (self.lv_start - shift)[keep], (self.lv_end - shift)[keep],
            self.lv_side[lv_keep], self.lv_px[lv_keep], self.lv_qty[lv_keep], self.tick_size,
            self.lot_size)
