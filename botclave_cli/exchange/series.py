"""``fetch ohlcv | funding | book | my-trades``: time-paged series and REST book snapshots.

Candles and funding rates page by time (``since`` = the next open time, 1000 per page, ``until``
= the end); only closed candles are stored, so coverage never claims a candle still forming.
Book snapshots are written one by one (a series interrupted keeps what it took). The account's
own trades page by 24-hour windows, the longest Binance accepts for myTrades, narrowed while a
page comes back full (a full page may not hold the whole window).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl

from botclave_cli.data import atomic
from botclave_cli.data.manifest import Gap, Interval
from botclave_cli.data.store import DatasetRef, Store, from_us
from botclave_cli.data.verify import find_candle_gaps
from botclave_cli.errors import UsageError
from botclave_cli.exchange.connector import Connector, MarketInfo
from botclave_cli.exchange.frames import (
    book_frame,
    funding_frame,
    my_trades_frame,
    ohlcv_frame,
)
from botclave_cli.exchange.trades import resolve_range
from botclave_cli.exchange.writer import (
    DEFAULT_CHUNK_ROWS,
    Advance,
    ChunkWriter,
    FetchResult,
    ceil_div,
    manifest_factory,
    set_gaps,
    stamp_market,
)
from botclave_cli.progress import Progress, or_null

PAGE = 1000
DAY_MS = 86_400_000
SPOT_DEPTH_MAX = 5000
FUTURES_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)


def _holes(store: Store, ref: DatasetRef, start_us: int,
           end_us: int) -> tuple[list[Interval], bool]:
    manifest = store.manifest(ref)
    if manifest is None:
        return [Interval(start_us=start_us, end_us=end_us)], False
    return manifest.uncovered(start_us, end_us), bool(manifest.coverage)


def _finish(conn: Connector, store: Store, ref: DatasetRef, result: FetchResult,
            writer: ChunkWriter | None, requests0: int, retries0: int) -> FetchResult:
    final = store.manifest(ref)
    if final is not None:
        result.rows_total = final.row_count
        result.coverage = [(i.start_us, i.end_us) for i in final.coverage]
        result.gaps = list(final.gaps)
    result.rows_new = writer.rows_new if writer is not None else result.rows_new
    result.requests = conn.stats.requests - requests0
    result.retries = conn.stats.retries - retries0
    return result


def _time_paged(
    conn: Connector, store: Store, ref: DatasetRef, info: MarketInfo, endpoint: str,
    start_us: int, end_us: int, page: Callable[[int, int], list[Any]],
    frame: Callable[[list[Any]], pl.DataFrame], next_ms: Callable[[int], int],
    complete_until: Callable[[pl.DataFrame], int], chunk_rows: int, progress: Progress | None,
    description: str,
) -> tuple[FetchResult, ChunkWriter]:
    """Page ``page(since_ms, until_ms)`` through every uncovered part of [start_us, end_us)."""
    holes, resumed = _holes(store, ref, start_us, end_us)
    result = FetchResult(str(ref.relpath()), ref.kind, info.symbol, resumed=resumed,
                         tick_size=info.tick_size, lot_size=info.lot_size)
    bar = or_null(progress)
    bar.start(sum(h.end_us - h.start_us for h in holes) / 1e6, description)
    writer = ChunkWriter(store, ref, conn, info, endpoint, chunk_rows, complete_until)
    for hole in holes:
        advance = Advance(bar, hole.start_us)
        writer.begin(hole.start_us)
        since, last = ceil_div(hole.start_us, 1000), ceil_div(hole.end_us, 1000) - 1
        while since <= last:
            rows = [r for r in page(since, last) if _ms(r) >= since and _ms(r) <= last]
            if not rows:
                break
            df = frame(rows)
            writer.add(df)
            advance.to(_ms(rows[-1]) * 1000)
            since = next_ms(_ms(rows[-1]))
        writer.flush(hole.end_us)
        advance.to(hole.end_us)
    return result, writer


def _ms(row: Any) -> int:
    return int(row[0] if isinstance(row, list) else row["timestamp"])


def fetch_ohlcv(conn: Connector, store: Store, symbol: str, start: dt.datetime,
                end: dt.datetime | None = None, *, timeframe: str = "1m",
                chunk_rows: int = DEFAULT_CHUNK_ROWS,
                progress: Progress | None = None) -> FetchResult:
    """Closed candles of ``timeframe`` with open time in [start, end) (kind ``ohlcv``)."""
    if timeframe not in conn.exchange.timeframes:
        raise UsageError(f"--timeframe {timeframe!r}: expected one of "
                         f"{', '.join(conn.exchange.timeframes)}")
    info = conn.market(symbol)
    step_ms = int(conn.exchange.parse_timeframe(timeframe) * 1000)
    start_us, end_us = resolve_range(conn, start, end)
    end_us = min(end_us, (conn.now_ms() // step_ms) * step_ms * 1000)  # closed candles only
    start_us = ceil_div(start_us, step_ms * 1000) * step_ms * 1000
    if start_us >= end_us:
        raise UsageError(f"--from/--to hold no closed {timeframe} candle")
    ref = DatasetRef(conn.exchange_id, conn.market_type, info.symbol,
                     "ohlcv").with_level("timeframe", timeframe)
    counts = conn.stats.requests, conn.stats.retries
    result, writer = _time_paged(
        conn, store, ref, info, "klines", start_us, end_us,
        lambda since, last: conn.fetch_ohlcv(info.symbol, timeframe, since, PAGE,
                                             {"until": last}),
        ohlcv_frame, lambda ms: ms + step_ms,
        lambda df: int(df.select(pl.col("ts").max().dt.epoch("us")).item()) + step_ms * 1000,
        chunk_rows, progress, f"ohlcv {timeframe} {info.symbol} (seconds)")
    final = store.manifest(ref)
    if final is not None:
        set_gaps(store, ref, "candle", candle_gaps(store, ref, final.coverage, step_ms * 1000))
    return _finish(conn, store, ref, result, writer, *counts)


def candle_gaps(store: Store, ref: DatasetRef, coverage: list[Interval], step_us: int) -> list[Gap]:
    """Candles missing inside covered time, including at either end of an interval."""
    gaps: list[Gap] = []
    for interval in coverage:
        ts = (store.scan(ref, from_us(interval.start_us), from_us(interval.end_us))
              .select(pl.col("ts").dt.epoch("us")).collect()["ts"])
        first = ceil_div(interval.start_us, step_us) * step_us
        last = ceil_div(interval.end_us, step_us) * step_us - step_us
        bounds = pl.Series("ts", [first - step_us, last + step_us], dtype=pl.Int64)
        grid = pl.concat([ts, bounds]).cast(pl.Datetime("us", "UTC"))
        gaps.extend(find_candle_gaps(grid, step_us))
    return gaps


def fetch_funding(conn: Connector, store: Store, symbol: str, start: dt.datetime,
                  end: dt.datetime | None = None, *, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                  progress: Progress | None = None) -> FetchResult:
    """Funding rates of a perpetual in [start, end) (kind ``funding``)."""
    if conn.market_type == "spot":
        raise UsageError("fetch funding: --market spot has no funding rates; use usdm or coinm")
    info = conn.market(symbol)
    start_us, end_us = resolve_range(conn, start, end)
    ref = DatasetRef(conn.exchange_id, conn.market_type, info.symbol, "funding")
    counts = conn.stats.requests, conn.stats.retries
    result, writer = _time_paged(
        conn, store, ref, info, "fundingRate", start_us, end_us,
        lambda since, last: conn.fetch_funding_rate_history(info.symbol, since, PAGE,
                                                            {"until": last}),
        funding_frame, lambda ms: ms + 1,
        lambda df: int(df.select(pl.col("ts").max().dt.epoch("us")).item()) + 1,
        chunk_rows, progress, f"funding {info.symbol} (seconds)")
    return _finish(conn, store, ref, result, writer, *counts)


def check_depth_limit(market_type: str, limit: int) -> None:
    if market_type == "spot":
        if not 1 <= limit <= SPOT_DEPTH_MAX:
            raise UsageError(f"--limit {limit}: spot depth takes 1 to {SPOT_DEPTH_MAX} levels")
    elif limit not in FUTURES_DEPTH_LIMITS:
        raise UsageError(f"--limit {limit}: futures depth takes one of "
                         f"{', '.join(map(str, FUTURES_DEPTH_LIMITS))}")


def fetch_book(conn: Connector, store: Store, symbol: str, *, limit: int = 100, repeat: int = 1,
               interval_s: float = 1.0, progress: Progress | None = None) -> FetchResult:
    """``repeat`` REST depth snapshots, ``interval_s`` apart (kind ``book_snapshot``).

    Spot snapshots carry no exchange time (``ts`` null); ``ts_local`` is the receive time and
    ``seq`` orders the snapshots of the dataset (the receive time in us, kept increasing).
    """
    check_depth_limit(conn.market_type, limit)
    if repeat < 1 or interval_s < 0:
        raise UsageError("--repeat must be >= 1 and --interval >= 0")
    info = conn.market(symbol)
    ref = DatasetRef(conn.exchange_id, conn.market_type, info.symbol, "book_snapshot")
    endpoint = "depth"
    make = manifest_factory(conn, ref, info, endpoint)
    counts = conn.stats.requests, conn.stats.retries
    result = FetchResult(str(ref.relpath()), ref.kind, info.symbol, resumed=store.exists(ref),
                         tick_size=info.tick_size, lot_size=info.lot_size)
    atomic.clean_stale_temp(store.path(ref))
    last_seq = (store.scan(ref).select(pl.col("seq").max()).collect().item()
                if store.exists(ref) else None)
    bar = or_null(progress)
    bar.start(repeat, f"book {info.symbol} snapshots")
    for i in range(repeat):
        if i:
            conn.clock.sleep(interval_s)
        book = conn.fetch_order_book(info.symbol, limit)
        ts_local = int(conn.clock.time() * 1e6)
        seq = ts_local if last_seq is None else max(ts_local, int(last_seq) + 1)
        last_seq = seq

        def update(manifest: Any) -> None:
            stamp_market(manifest, info, endpoint)
            manifest.params = {"snapshot": "rest", "depth_limit": limit}

        written = store.write(ref, book_frame(book, ts_local, seq), update_manifest=update,
                              new_manifest=make)
        result.rows_new += written.rows_new
        bar.advance(1)
    return _finish(conn, store, ref, result, None, *counts)


def fetch_my_trades(conn: Connector, store: Store, symbol: str, start: dt.datetime,
                    end: dt.datetime | None = None, *, account: str = "testnet",
                    progress: Progress | None = None) -> FetchResult:
    """The account's own trades in [start, end) (kind ``my_trades``, level ``account=``)."""
    info = conn.market(symbol)
    start_us, end_us = resolve_range(conn, start, end)
    ref = DatasetRef(conn.exchange_id, conn.market_type, info.symbol,
                     "my_trades").with_level("account", account)
    counts = conn.stats.requests, conn.stats.retries
    holes, resumed = _holes(store, ref, start_us, end_us)
    result = FetchResult(str(ref.relpath()), ref.kind, info.symbol, resumed=resumed,
                         tick_size=info.tick_size, lot_size=info.lot_size)
    bar = or_null(progress)
    bar.start(sum(h.end_us - h.start_us for h in holes) / 1e6, f"my trades {info.symbol}")
    writer = ChunkWriter(store, ref, conn, info, "myTrades", DEFAULT_CHUNK_ROWS,
                         lambda df: int(df.select(pl.col("ts").max().dt.epoch("us")).item()))
    for hole in holes:
        advance = Advance(bar, hole.start_us)
        writer.begin(hole.start_us)
        since, last = ceil_div(hole.start_us, 1000), ceil_div(hole.end_us, 1000) - 1
        window = DAY_MS - 1
        while since <= last:
            until = min(since + window, last)
            page = conn.fetch_my_trades(info.symbol, since, PAGE, {"until": until})
            if len(page) >= PAGE and until > since:  # maybe not all of the window: halve it
                window = (until - since) // 2
                continue
            if page:
                writer.add(my_trades_frame(page))
            advance.to(until * 1000)
            since, window = until + 1, min(DAY_MS - 1, window * 2 + 1)
        writer.flush(hole.end_us)
    return _finish(conn, store, ref, result, writer, *counts)
