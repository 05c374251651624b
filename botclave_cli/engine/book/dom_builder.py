"""DOM builder: the exact L2 book from REST snapshots and depth diffs, replayed or live.

``DOMBuilder`` runs ``kernel`` over a whole ``BookStream`` (``replay``) or message by
message (``on_diff`` / ``on_snapshot``, for the recorder). A break in the update-id chain, a
crossed book or a stale snapshot marks the book invalid and calls ``on_resync(reason, seq)``;
the builder never serves an invalid book as valid (``DOMState.valid``), and samples taken while
invalid are dropped.

Units: prices and quantities are floats at the edges (``DOMState``, live messages), integer
ticks and lots inside; times are microseconds since epoch (UTC).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from botclave_cli.engine.book import kernel as K
from botclave_cli.engine.book.ladder import new_book
from botclave_cli.engine.book.replay import REASONS, Replay
from botclave_cli.engine.book.stream import BookStream
from botclave_cli.engine.book.tick_grid import from_grid, to_grid
from botclave_cli.errors import UsageError

FUTURES_MARKETS = ("usdm", "coinm")
#: ladder window in ticks: 1 MB of ladder per builder; levels outside it go to sorted arrays
LADDER_TICKS = 65_536

ResyncCallback = Callable[[str, int], None]


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


class DOMBuilder:
    """Rebuilds one symbol's L2 book. ``market`` decides the sequencing rule (spot vs futures).

    Replay: ``DOMBuilder(...).replay(stream)``. Live: ``on_diff``/``on_snapshot`` per message;
    while no book is synced, diffs are buffered (up to ``max_buffer`` messages) and replayed
    when a snapshot arrives. ``on_resync(reason, seq)`` is called whenever the book becomes
    invalid; the recorder answers it with a REST snapshot, a replay simply waits for the next
    snapshot in the stream. The book is ``ladder``'s: a window of ``ladder_ticks`` around
    the mid, and sorted arrays (``capacity`` levels to start with, grown on demand) beyond it.
    """

    def __init__(self, market: str = "spot", tick_size: float | None = None,
                 lot_size: float | None = None, on_resync: ResyncCallback | None = None,
                 capacity: int = 8192, max_buffer: int = 20_000,
                 ladder_ticks: int = LADDER_TICKS) -> None:
        if market not in ("spot", *FUTURES_MARKETS):
            raise UsageError(f"market {market!r}: expected spot, usdm or coinm")
        if ladder_ticks < 4:
            raise UsageError(f"ladder_ticks {ladder_ticks}: expected at least 4")
        self.market = market
        self.futures = market in FUTURES_MARKETS
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.on_resync = on_resync
        self.lad, self.keys, self.qty, self.bs = new_book(ladder_ticks, capacity)
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
                self.lad, self.keys, self.qty, self.bs, self.meta, start, stop_ts_us,
                status, event, top, segment, sample_interval_us, smp["ts"], smp["valid"],
                smp["msg"], smp["bid_px"], smp["bid_qty"], smp["ask_px"], smp["ask_qty"])
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
        builder = DOMBuilder(self.market, on_resync=None, ladder_ticks=self.lad.shape[1])
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
                self.futures, self.lad, self.keys, self.qty, self.bs, self.meta, start, -1,
                status, event, top, segment, 0, empty1, np.zeros(0, np.int8), empty1, empty2,
                empty2, empty2, empty2)
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
        bpx, bq, apx, aq = K.book_levels(self.lad, self.keys, self.qty, self.bs,
                                         depth if valid else 0)
        return DOMState(
            valid=valid,
            ts_us=int(self.meta[K.CUR_TS]) if self.meta[K.CUR_TS] >= 0 else None,
            last_update_id=int(self.meta[K.LAST_U]) if valid else None,
            bid_price=from_grid(bpx, tick), bid_qty=from_grid(bq, lot),
            ask_price=from_grid(apx, tick), ask_qty=from_grid(aq, lot),
        )
