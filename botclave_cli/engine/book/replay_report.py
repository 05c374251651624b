"""``botclave depth replay``: replay a capture or a stored dataset and report what it found.

Updates applied, gaps, resyncs and the share of checkable bookTickers the rebuilt book matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from botclave_cli.engine.book.dom_builder import DOMBuilder
from botclave_cli.engine.book.replay import QuoteCheck
from botclave_cli.engine.book.stream import BookStream
from botclave_cli.errors import DataError


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
