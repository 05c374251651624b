"""DOM builder: the exact L2 book from REST snapshots and depth diffs, replayed or live.

``BookStream`` turns the store's long-form ``book_snapshot`` and ``book_diff`` frames into the
flat integer arrays of ``book_kernel`` (prices in ticks, quantities in lots, converted once);
``DOMBuilder`` runs the kernel over a whole stream (``replay``) or message by message (``on_diff``
/ ``on_snapshot``, for the recorder). A break in the update-id chain, a crossed book or a stale
snapshot marks the book invalid and calls ``on_resync(reason, seq)``; the builder never serves an
invalid book as valid (``DOMState.valid``), and samples taken while invalid are dropped.

Units: prices and quantities are floats at the edges (``DOMState``, frames), integer ticks and
lots inside; times are microseconds since epoch (UTC).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from botclave_cli.data.schemas import TS
from botclave_cli.engine import book_kernel as K
from botclave_cli.errors import DataError, UsageError

FUTURES_MARKETS = ("usdm", "coinm")
REASONS = {K.ST_GAP: "gap", K.ST_STALE: "stale snapshot", K.ST_CROSSED: "crossed book"}

ResyncCallback = Callable[[str, int], None]


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


@dataclass
class DOMState:
    """The book at one moment: levels best first (floats), and whether it may be trusted."""

    valid: bool
    ts_us: int | None
    last_update_id: int | None
    bid_price: np.ndarray
    bid_qty: np.ndarray
    ask_price: np.ndarray
    ask_qty: np.ndarray

    @property
    def best_bid(self) -> float | None:
        return float(self.bid_price[0]) if self.bid_price.size else None

    @property
    def best_ask(self) -> float | None:
        return float(self.ask_price[0]) if self.ask_price.size else None


@dataclass(frozen=True)
class LiquidityLevel:
    """A wall: resting size >= k x the typical level size that persisted (see DepthAnalyzer.walls).

    Times in us; ``ended`` is ``traded_through``, ``pulled`` or ``open`` (still there at the end).
    """

    side: str
    price: float
    first_seen_us: int
    last_seen_us: int
    peak_qty: float
    typical_qty: float
    ended: str

    @property
    def duration_us(self) -> int:
        return self.last_seen_us - self.first_seen_us


@dataclass
class Replay:
    """What a replay did, per message and overall (counts), plus its samples (ticks/lots)."""

    stream: BookStream
    status: np.ndarray  # per message, book_kernel.ST_* (final label)
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


class DOMBuilder:
    """Rebuilds one symbol's L2 book. ``market`` decides the sequencing rule (spot vs futures).

    Replay: ``DOMBuilder(...).replay(stream)``. Live: ``on_diff``/``on_snapshot`` per message;
    while no book is synced, diffs are buffered (up to ``max_buffer`` messages) and replayed
    when a snapshot arrives. ``on_resync(reason, seq)`` is called whenever the book becomes
    invalid; the recorder answers it with a REST snapshot, a replay simply waits for the next
    snapshot in the stream.
    """

    def __init__(self, market: str = "spot", tick_size: float | None = None,
                 lot_size: float | None = None, on_resync: ResyncCallback | None = None,
                 capacity: int = 8192, max_buffer: int = 20_000) -> None:
        if market not in ("spot", *FUTURES_MARKETS):
            raise UsageError(f"market {market!r}: expected spot, usdm or coinm")
        self.market = market
        self.futures = market in FUTURES_MARKETS
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.on_resync = on_resync
        self.keys = np.zeros((2, capacity), np.int64)
        self.qty = np.zeros((2, capacity), np.int64)
        self.meta = K.new_meta()
        self.max_buffer = max_buffer
        self._buffer: list[tuple] = []
        self._seq = 0

    # batch -----------------------------------------------------------------------------------
    def replay(self, stream: BookStream, *, sample_interval_us: int = 0, sample_depth: int = 20,
               stop_ts_us: int = -1) -> Replay:
        """Run the whole stream (or up to ``stop_ts_us``); samples every ``sample_interval_us``."""
        n = stream.n_messages
        status = np.full(n, K.ST_UNSEEN, np.int8)
        event = np.full(n, -1, np.int8)
        segment = np.full(n, -1, np.int64)
        top = np.zeros((4, n), np.int64)
        n_samples = 0
        if sample_interval_us > 0:
            known = stream.ts[stream.ts >= 0]
            if known.size:
                n_samples = int((known.max() - known.min()) // sample_interval_us) + 2
        smp: dict[str, np.ndarray] = {
            "ts": np.zeros(n_samples, np.int64), "valid": np.zeros(n_samples, np.int8),
            "msg": np.zeros(n_samples, np.int64),
            **{k: np.zeros((n_samples, max(sample_depth, 1)), np.int64)
               for k in ("bid_px", "bid_qty", "ask_px", "ask_qty")},
        }
        self.tick_size, self.lot_size = stream.tick_size, stream.lot_size
        self.meta[K.BUFFER_FROM] = 0
        start = 0
        while True:
            start = K.run_stream(
                stream.kind, stream.U, stream.u, stream.pu, stream.ts, stream.lv_start,
                stream.lv_end, stream.lv_side, stream.lv_px, stream.lv_qty, self.futures,
                self.keys, self.qty, self.meta, start, stop_ts_us,
                status, event, top[0], top[1], top[2], top[3], segment,
                sample_interval_us, smp["ts"], smp["valid"], smp["msg"], smp["bid_px"],
                smp["bid_qty"], smp["ask_px"], smp["ask_qty"])
            if self.meta[K.STOP] != K.STOP_NEED_GROW:
                break
            self._grow()
        k = int(self.meta[K.N_SAMPLES])
        samples = {name: arr[:k] for name, arr in smp.items()} if sample_interval_us > 0 else {}
        result = Replay(stream, status, event, segment, top.T.copy(), self.meta.copy(), samples,
                        sample_interval_us)
        if self.on_resync is not None:
            for reason, seq in result.invalidations():
                self.on_resync(reason, seq)
        return result

    def book_at(self, stream: BookStream, ts_us: int, depth: int = 20) -> DOMState:
        """The book after every message with exchange time <= ``ts_us`` (fresh builder)."""
        builder = DOMBuilder(self.market, on_resync=None)
        builder.replay(stream, stop_ts_us=ts_us)
        return builder.state(depth)

    def _grow(self) -> None:
        cap = self.keys.shape[1] * 2
        for name in ("keys", "qty"):
            old = getattr(self, name)
            new = np.zeros((2, cap), np.int64)
            new[:, :old.shape[1]] = old
            setattr(self, name, new)

    # live ------------------------------------------------------------------------------------
    @property
    def valid(self) -> bool:
        return bool(self.meta[K.STATUS] != K.WAIT_SNAPSHOT)

    def on_diff(self, first_update_id: int, last_update_id: int, prev_update_id: int | None,
                bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]],
                ts_us: int = -1) -> bool:
        """Apply one depth diff (prices/qty as floats); returns whether the book is valid after."""
        msg = (K.DIFF, first_update_id, last_update_id,
               -1 if prev_update_id is None else prev_update_id, ts_us, bids, asks)
        if self.meta[K.STATUS] == K.WAIT_SNAPSHOT:
            self._buffer.append(msg)
            del self._buffer[:-self.max_buffer]
            return False
        self._run_live([msg])
        return self.valid

    def on_snapshot(self, last_update_id: int, bids: Sequence[Sequence[float]],
                    asks: Sequence[Sequence[float]], ts_us: int = -1) -> bool:
        """Load a REST snapshot, replay the buffered diffs; returns whether the book is valid."""
        msgs = [*self._buffer, (K.SNAPSHOT, last_update_id, last_update_id, -1, ts_us, bids, asks)]
        self._buffer = []
        self._run_live(msgs)
        return self.valid

    def _run_live(self, msgs: list[tuple]) -> None:
        if self.tick_size is None or self.lot_size is None:
            raise UsageError("live DOMBuilder needs tick_size and lot_size")
        n = len(msgs)
        counts = [len(m[5]) + len(m[6]) for m in msgs]
        ends = np.cumsum(counts).astype(np.int64)
        starts = ends - np.asarray(counts, np.int64)
        side = np.concatenate([[0] * len(m[5]) + [1] * len(m[6]) for m in msgs]).astype(np.int8) \
            if ends[-1] else np.zeros(0, np.int8)
        levels = [lv for m in msgs for lv in (*m[5], *m[6])]
        px = np.array([float(lv[0]) for lv in levels], np.float64)
        qt = np.array([float(lv[1]) for lv in levels], np.float64)
        status = np.full(n, K.ST_UNSEEN, np.int8)
        event = np.full(n, -1, np.int8)
        segment = np.full(n, -1, np.int64)
        top = np.zeros((4, n), np.int64)
        empty1 = np.zeros(0, np.int64)
        empty2 = np.zeros((0, 1), np.int64)
        seqs = np.arange(self._seq, self._seq + n, dtype=np.int64)
        self._seq += n
        self.meta[K.BUFFER_FROM] = 0
        start = 0
        while True:
            start = K.run_stream(
                np.array([m[0] for m in msgs], np.int8), np.array([m[1] for m in msgs], np.int64),
                np.array([m[2] for m in msgs], np.int64), np.array([m[3] for m in msgs], np.int64),
                np.array([m[4] for m in msgs], np.int64), starts, ends, side,
                to_grid(px, self.tick_size, "price"), to_grid(qt, self.lot_size, "quantity"),
                self.futures, self.keys, self.qty, self.meta, start, -1,
                status, event, top[0], top[1], top[2], top[3], segment,
                0, empty1, np.zeros(0, np.int8), empty1, empty2, empty2, empty2, empty2)
            if self.meta[K.STOP] != K.STOP_NEED_GROW:
                break
            self._grow()
        if self.meta[K.STATUS] == K.WAIT_SNAPSHOT:
            buffer_from = int(self.meta[K.BUFFER_FROM])
            self._buffer = [m for m in msgs[buffer_from:] if m[0] == K.DIFF]
        bad = np.flatnonzero(event >= 0)
        if bad.size and self.on_resync is not None:
            self.on_resync(REASONS[int(event[bad[-1]])], int(seqs[bad[-1]]))

    def state(self, depth: int = 20) -> DOMState:
        """Top ``depth`` levels now (empty and ``valid=False`` while the book is not synced)."""
        valid = self.valid
        tick, lot = self.tick_size or 1.0, self.lot_size or 1.0
        bpx, bq, apx, aq = K.book_levels(self.keys, self.qty, self.meta, depth if valid else 0)
        return DOMState(
            valid=valid,
            ts_us=int(self.meta[K.CUR_TS]) if self.meta[K.CUR_TS] >= 0 else None,
            last_update_id=int(self.meta[K.LAST_U]) if valid else None,
            bid_price=from_grid(bpx, tick), bid_qty=from_grid(bq, lot),
            ask_price=from_grid(apx, tick), ask_qty=from_grid(aq, lot),
        )


# replay reports ------------------------------------------------------------------------------
@dataclass
class ReplayReport:
    """``botclave depth replay``: what replaying a capture or a stored dataset found."""

    source: str
    market: str
    symbol: str
    counts: dict
    quotes: QuoteCheck
    bad_lines: int = 0
    invalidations: list[tuple[str, int]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"source": self.source, "market": self.market, "symbol": self.symbol,
                **self.counts, "tickers": self.quotes.total,
                "tickers_checkable": self.quotes.checkable,
                "tickers_matched": self.quotes.matched, "tickers_match_share": self.quotes.share,
                "mismatches": self.quotes.mismatches, "bad_lines": self.bad_lines,
                "invalidations": [{"reason": r, "seq": s} for r, s in self.invalidations]}


def replay_frames(source: str, market: str, symbol: str, book_snapshot: pl.DataFrame | None,
                  book_diff: pl.DataFrame | None, quotes: pl.DataFrame | None,
                  tick_size: float | None = None, lot_size: float | None = None,
                  bad_lines: int = 0) -> ReplayReport:
    stream = BookStream.from_frames(book_snapshot, book_diff, tick_size, lot_size)
    replay = DOMBuilder(market).replay(stream)
    empty = pl.DataFrame(schema={"seq": pl.Int64, "update_id": pl.Int64, "bid_price": pl.Float64,
                                 "bid_qty": pl.Float64, "ask_price": pl.Float64,
                                 "ask_qty": pl.Float64})
    check = replay.check_quotes(quotes if quotes is not None and quotes.height else empty)
    return ReplayReport(source, market, symbol, replay.counts, check, bad_lines,
                        replay.invalidations())


def replay_capture(paths: Sequence, *, skip_bad: bool = False, market: str | None = None,
                   tick_size: float | None = None, lot_size: float | None = None,
                   progress=None) -> ReplayReport:
    """Replay capture files (one stream, in the order given) and check the bookTickers."""
    from botclave_cli.data.importers.capture import read_capture

    cap = read_capture(paths, skip_bad=skip_bad, market=market, progress=progress)
    return replay_frames(", ".join(str(p) for p in paths), cap.market, cap.symbol,
                         cap.book_snapshot, cap.book_diff, cap.quotes, tick_size, lot_size,
                         len(cap.bad_lines))


def replay_dataset(store, exchange: str, market: str, symbol: str) -> ReplayReport:
    """Replay a stored symbol's ``book_snapshot`` + ``book_diff`` (+ ``quotes``) in seq order."""
    from botclave_cli.data.store import DatasetRef

    frames = {}
    for kind in ("book_snapshot", "book_diff", "quotes"):
        ref = DatasetRef(exchange, market, symbol, kind)
        frames[kind] = store.scan(ref).collect() if store.exists(ref) else None
    if frames["book_diff"] is None:
        where = store.path(DatasetRef(exchange, market, symbol, "book_diff"))
        raise DataError(f"no book_diff dataset at {where}; record or import a capture first")
    # the kernel works on the data's own decimal grid (exact); the manifest's tick is for analytics
    return replay_frames(f"{exchange}/{market}/{symbol}", market, symbol, frames["book_snapshot"],
                         frames["book_diff"], frames["quotes"])
