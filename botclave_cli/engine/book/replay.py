"""What one replay of a book stream produced: per-message outcome, top of book, samples.

``Replay`` is returned by ``DOMBuilder.replay``. Its views: ``counts`` (messages, updates,
gaps, resyncs), ``invalidations``, ``events`` (the top of book after each applied message, for
OFI), ``samples_frame`` (the valid top-N samples as ``book_snapshot`` rows) and
``check_quotes`` (bookTickers against the rebuilt book). Arrays hold ticks and lots; frames
hold floats; times in us.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from botclave_cli.data.schemas import TS
from botclave_cli.engine.book import kernel as K
from botclave_cli.engine.book.stream import BookStream
from botclave_cli.engine.book.tick_grid import from_grid, to_grid
from botclave_cli.errors import UsageError

REASONS = {K.ST_GAP: "gap", K.ST_STALE: "stale snapshot", K.ST_CROSSED: "crossed book"}


@dataclass
class Replay:
    """What a replay did, per message and overall (counts), plus its samples (ticks/lots)."""

    stream: BookStream
    status: np.ndarray  # per message, kernel.ST_* (final label)
    event: np.ndarray  # per message: ST_GAP / ST_STALE / ST_CROSSED where the book broke, else -1
    segment: np.ndarray  # per message: sync segment after it (-1 when not applied)
    top: np.ndarray  # (n_messages, 4): best bid px, qty, best ask px, qty after the message
    meta: np.ndarray
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    sample_interval_us: int = 0

    @property
    def counts(self) -> dict[str, int]:
        m = self.meta
        return {
            "messages": self.stream.n_messages,
            "snapshots": int((self.stream.kind == K.SNAPSHOT).sum()),
            "diffs": int((self.stream.kind == K.DIFF).sum()),
            "diffs_applied": int(m[K.DIFFS_APPLIED]),
            "level_updates_applied": int(m[K.LEVELS_APPLIED]),
            "gaps": int(m[K.GAPS]),
            "crossed": int(m[K.CROSSED]),
            "stale_snapshots": int(m[K.STALE]),
            "resyncs_requested": int(m[K.RESYNCS]),
            "syncs": int(m[K.SYNCS]),
            "valid_at_end": bool(m[K.STATUS] != K.WAIT_SNAPSHOT),
        }

    def invalidations(self) -> list[tuple[str, int]]:
        """(reason, seq) of each point where the book became invalid, in stream order."""
        idx = np.flatnonzero(self.event >= 0)
        return [(REASONS[int(self.event[i])], int(self.stream.seq[i])) for i in idx]

    def events(self) -> pl.DataFrame:
        """Top of book after every applied message (for OFI): seq, ts, segment, best bid/ask."""
        ok = np.isin(self.status, [K.ST_APPLIED, K.ST_SNAPSHOT])
        s = self.stream
        ts = s.ts[ok]
        return pl.DataFrame({
            "seq": s.seq[ok], "ts_us": ts, "segment": self.segment[ok],
            "bid_price": from_grid(self.top[ok, 0], s.tick_size),
            "bid_qty": from_grid(self.top[ok, 1], s.lot_size),
            "ask_price": from_grid(self.top[ok, 2], s.tick_size),
            "ask_qty": from_grid(self.top[ok, 3], s.lot_size),
        }).with_columns(
            pl.when(pl.col("ts_us") >= 0).then(pl.col("ts_us")).forward_fill().cast(TS).alias("ts")
        ).drop("ts_us")

    def samples_frame(self) -> pl.DataFrame:
        """Valid samples as ``book_snapshot`` rows (long form; ``seq`` = the sample time in us).

        Rows come out in the kind's order (ts, side "ask" before "bid", level) without a sort.
        """
        smp = self.samples
        if not smp:
            raise UsageError("this replay took no samples (sample_interval_us = 0)")
        s = self.stream
        keep = smp["valid"].astype(bool)
        n, depth = int(keep.sum()), smp["bid_px"].shape[1]
        # (sample, side, level) with side 0 = ask, 1 = bid
        px = np.stack([smp["ask_px"][keep], smp["bid_px"][keep]], axis=1).ravel()
        qty = np.stack([smp["ask_qty"][keep], smp["bid_qty"][keep]], axis=1).ravel()
        ts = np.repeat(smp["ts"][keep], 2 * depth)
        msg = np.repeat(smp["msg"][keep], 2 * depth)
        side = np.tile(np.repeat(np.arange(2, dtype=np.uint32), depth), n)
        level = np.tile(np.arange(depth, dtype=np.int32), 2 * n)
        ok = qty > 0
        last_u = np.where(msg[ok] >= 0, s.u[np.maximum(msg[ok], 0)], -1)
        return pl.DataFrame({
            "ts": ts[ok], "ts_local": np.zeros(int(ok.sum()), np.int64), "seq": ts[ok],
            "last_update_id": last_u,
            "side": pl.Series(["ask", "bid"]).gather(pl.Series(side[ok])),
            "level": level[ok], "price": from_grid(px[ok], s.tick_size),
            "qty": from_grid(qty[ok], s.lot_size),
        }).with_columns(pl.col("ts").cast(TS), pl.lit(None, TS).alias("ts_local"))

    def check_quotes(self, quotes: pl.DataFrame) -> QuoteCheck:
        """Compare bookTickers with the rebuilt book where they can be checked (README rule)."""
        return check_quotes(self, quotes)


@dataclass
class QuoteCheck:
    total: int
    checkable: int
    matched: int
    mismatches: list[dict] = field(default_factory=list)

    @property
    def share(self) -> float | None:
        return self.matched / self.checkable if self.checkable else None


def check_quotes(replay: Replay, quotes: pl.DataFrame) -> QuoteCheck:
    """A ticker with update id t is checkable when an applied diff has ``u <= t`` and the next
    diff of the same synced stretch has ``U > t``; the book after that diff must show exactly
    the ticker's best bid/ask prices and sizes. Other tickers are unchecked."""
    s = replay.stream
    ok = (replay.status == K.ST_APPLIED)
    idx = np.flatnonzero(ok)
    order = np.lexsort((s.u[idx], replay.segment[idx]))
    idx = idx[order]
    u_state = s.u[idx]
    seg = replay.segment[idx]
    next_U = np.full(idx.shape, np.iinfo(np.int64).min, np.int64)
    same = seg[1:] == seg[:-1]
    next_U[:-1] = np.where(same, s.U[idx[1:]], np.iinfo(np.int64).min)
    q = quotes.filter(pl.col("update_id").is_not_null())
    t = q["update_id"].to_numpy().astype(np.int64)
    pos = np.searchsorted(u_state, t, side="right") - 1
    has = pos >= 0
    pos_c = np.maximum(pos, 0)
    checkable = has & (t < next_U[pos_c]) if idx.size else np.zeros(t.shape, bool)
    want = np.column_stack([
        to_grid(q["bid_price"].to_numpy(), s.tick_size, "bookTicker bid price"),
        to_grid(q["bid_qty"].to_numpy(), s.lot_size, "bookTicker bid qty"),
        to_grid(q["ask_price"].to_numpy(), s.tick_size, "bookTicker ask price"),
        to_grid(q["ask_qty"].to_numpy(), s.lot_size, "bookTicker ask qty"),
    ]) if q.height else np.zeros((0, 4), np.int64)
    got = replay.top[idx[pos_c]] if idx.size else np.zeros((t.size, 4), np.int64)
    match = checkable & np.all(want == got, axis=1)
    bad = np.flatnonzero(checkable & ~match)[:5]
    scale = np.array([s.tick_size, s.lot_size, s.tick_size, s.lot_size])
    mismatches = [{"seq": int(q["seq"][i]), "update_id": int(t[i]),
                   "ticker": (want[i] * scale).tolist(), "book": (got[i] * scale).tolist()}
                  for i in bad]
    return QuoteCheck(int(t.size), int(checkable.sum()), int(match.sum()), mismatches)
