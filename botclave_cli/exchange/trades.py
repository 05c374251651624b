"""``fetch trades``: Binance trades through ccxt, paginated by id, resumable, gap-checked.

ccxt's Binance ``fetch_trades`` reads aggTrades: with ``since`` it asks for one hour at most
(``endTime = since + 1 h``), USD-M/COIN-M refuse windows of an hour or more (-1127), and with a
whole window the page holds its LAST trades. So, as freqtrade does for Binance, a time window is
used only to find the first trade at or after the start (narrowed until it is not full); from
there pages follow ``fromId`` (inclusive, 1000 per page) until a trade reaches the end.
``raw=True`` stores single trades (kind ``trades``) from historicalTrades, starting at the first
trade id (``f``) of that first aggregate trade.

Resuming: the manifest's coverage says which time is complete; each uncovered interval starts
with the time query, then skips the run of consecutive ids the store already holds from there
(rows a killed run wrote before its manifest caught up), and continues by id. Rows are merged by
id, so nothing is ever stored twice; missing ids inside covered time are recorded as gaps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from botclave_cli.data.manifest import Gap, Interval
from botclave_cli.data.store import DatasetRef, Store, from_us, to_us
from botclave_cli.data.verify import find_id_gaps
from botclave_cli.errors import UsageError
from botclave_cli.exchange.connector import Connector, MarketInfo
from botclave_cli.exchange.frames import agg_trades_frame, raw_trades_frame
from botclave_cli.exchange.writer import (
    DEFAULT_CHUNK_ROWS,
    Advance,
    ChunkWriter,
    FetchResult,
    ceil_div,
    set_gaps,
)
from botclave_cli.progress import Progress, or_null

PAGE = 1000
HOUR_MS = 3_600_000
#: futures aggTrades: endTime - startTime must stay under one hour
FUTURES_WINDOW_MS = HOUR_MS - 1


@dataclass(frozen=True)
class _Source:
    kind: str
    id_col: str
    endpoint: str
    page: Callable[[int], list[dict[str, Any]]]  # from id -> ccxt trades
    frame: Callable[[list[dict[str, Any]]], pl.DataFrame]
    first_id: Callable[[dict[str, Any]], int]  # first aggregate trade -> first id of this kind


def _source(conn: Connector, symbol: str, raw: bool) -> _Source:
    prefix = {"spot": "public", "usdm": "fapiPublic", "coinm": "dapiPublic"}[conn.market_type]
    if raw:
        method = f"{prefix}GetHistoricalTrades"
        limit = PAGE if conn.market_type == "spot" else 500
        return _Source(
            "trades", "trade_id", "historicalTrades",
            lambda from_id: conn.fetch_trades(symbol, None, limit,
                                              {"fetchTradesMethod": method, "fromId": from_id}),
            raw_trades_frame, lambda agg: int(agg["info"]["f"]))
    return _Source(
        "agg_trades", "agg_id", "aggTrades",
        lambda from_id: conn.fetch_trades(symbol, None, PAGE, {"fromId": from_id}),
        agg_trades_frame, lambda agg: int(agg["id"]))


def resolve_range(conn: Connector, start: dt.datetime, end: dt.datetime | None) -> tuple[int, int]:
    """[start, end) in us, the end capped at the exchange's now (never claim the future)."""
    now_us = conn.now_ms() * 1000
    start_us = to_us(start)
    end_us = min(to_us(end), now_us) if end is not None else now_us
    if start_us >= end_us:
        raise UsageError(f"--from {start.isoformat()} is not before --to / now "
                         f"({from_us(end_us).isoformat()})")
    return start_us, end_us


def fetch_trades(
    conn: Connector,
    store: Store,
    symbol: str,
    start: dt.datetime,
    end: dt.datetime | None = None,
    *,
    raw: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
) -> FetchResult:
    """Fetch trades of ``symbol`` in [start, end) into the store; see the module docstring."""
    info = conn.market(symbol)
    start_us, end_us = resolve_range(conn, start, end)
    src = _source(conn, info.symbol, raw)
    ref = DatasetRef(conn.exchange_id, conn.market_type, info.symbol, src.kind)
    manifest = store.manifest(ref)
    holes = manifest.uncovered(start_us, end_us) if manifest else [Interval(start_us=start_us,
                                                                            end_us=end_us)]
    result = FetchResult(str(ref.relpath()), src.kind, info.symbol,
                         resumed=manifest is not None and bool(manifest.coverage),
                         tick_size=info.tick_size, lot_size=info.lot_size)
    requests0, retries0 = conn.stats.requests, conn.stats.retries
    bar = or_null(progress)
    bar.start(sum(h.end_us - h.start_us for h in holes) / 1e6,
              f"{src.kind} {info.symbol} (seconds of market time)")
    writer = ChunkWriter(store, ref, conn, info, src.endpoint, chunk_rows, _last_ts_us)
    for hole in holes:
        _fetch_hole(conn, store, ref, info, src, hole, writer, Advance(bar, hole.start_us))
    final = store.manifest(ref)
    if final is not None:
        gaps = id_gaps_in_coverage(store, ref, src.id_col, final.coverage)
        final = set_gaps(store, ref, "trade_id", gaps) or final
        result.rows_total = final.row_count
        result.coverage = [(i.start_us, i.end_us) for i in final.coverage]
        result.gaps = [g for g in final.gaps if g.kind == "trade_id"]
    result.rows_new = writer.rows_new
    result.requests = conn.stats.requests - requests0
    result.retries = conn.stats.retries - retries0
    return result


def _last_ts_us(df: pl.DataFrame) -> int:
    return int(df.select(pl.col("ts").max().dt.epoch("us")).item())


def _fetch_hole(conn: Connector, store: Store, ref: DatasetRef, info: MarketInfo, src: _Source,
                hole: Interval, writer: ChunkWriter, advance: Advance) -> None:
    writer.begin(hole.start_us)
    first = first_page(conn, info, ceil_div(hole.start_us, 1000),
                       ceil_div(hole.end_us, 1000) - 1)
    if not first:  # no trade at all in the hole
        writer.flush(hole.end_us)
        advance.to(hole.end_us)
        return
    from_id = src.first_id(first[0])
    stored = stored_run_end(store, ref, src.id_col, from_id, hole.start_us)
    if stored is not None:
        from_id = stored + 1
    elif src.kind == "agg_trades":  # the time page is already the first id page
        frame = src.frame(first)
        inside = frame.filter(pl.col("ts") < from_us(hole.end_us))
        writer.add(inside)
        if inside.height < frame.height:
            writer.flush(hole.end_us)
            advance.to(hole.end_us)
            return
        from_id = int(frame[src.id_col].max()) + 1  # type: ignore[arg-type]
    while True:
        page = src.page(from_id)
        if not page:  # nothing newer on the exchange: complete up to the (capped) end
            break
        frame = src.frame(page)
        inside = frame.filter(pl.col("ts") < from_us(hole.end_us))
        writer.add(inside)
        if inside.height:
            advance.to(_last_ts_us(inside))
        if inside.height < frame.height:
            break
        from_id = int(frame[src.id_col].max()) + 1  # type: ignore[arg-type]
    writer.flush(hole.end_us)
    advance.to(hole.end_us)


def first_page(conn: Connector, info: MarketInfo, start_ms: int,
               last_ms: int) -> list[dict[str, Any]]:
    """Every aggregate trade of a window starting at ``start_ms``: its first is the first trade
    at or after ``start_ms`` (the window ends by ``last_ms``, inclusive); [] if there is none.

    With both startTime and endTime Binance counts ``limit`` from the END of the window, so a
    full page may not start at the window's start: the window is halved until the page is not
    full (to the page's first trade time at most: if the exchange counted from the start, that
    window is already small). Empty windows are skipped and the window grows again.
    """
    widest = max(0, last_ms - start_ms) if conn.market_type == "spot" else FUTURES_WINDOW_MS
    window = min(widest, FUTURES_WINDOW_MS)
    since = start_ms
    while since <= last_ms:
        until = min(since + window, last_ms)
        page = conn.fetch_trades(info.symbol, since, PAGE, {"until": until})
        if page and (len(page) < PAGE or until == since):
            return page
        if page:  # full: narrow to before its first trade (at least halve the window)
            window = min(int(page[0]["timestamp"]) - since, (until - since) // 2)
            continue
        since = until + 1
        window = min(widest, window * 2 + 1)
    return []


def stored_run_end(store: Store, ref: DatasetRef, id_col: str, from_id: int,
                   since_us: int) -> int | None:
    """Last id of the run of consecutive ids ``from_id, from_id + 1, ...`` already stored."""
    if not store.exists(ref):
        return None
    ids = (store.scan(ref, start=from_us(since_us)).select(id_col)
           .filter(pl.col(id_col) >= from_id).unique().sort(id_col)
           .with_row_index("i").filter(pl.col(id_col) - from_id == pl.col("i"))
           .select(pl.col(id_col).max()).collect().item())
    return int(ids) if ids is not None else None


def id_gaps_in_coverage(store: Store, ref: DatasetRef, id_col: str,
                        coverage: list[Interval]) -> list[Gap]:
    """Missing ids between the stored rows of each covered interval."""
    gaps: list[Gap] = []
    for interval in coverage:
        ids = (store.scan(ref, from_us(interval.start_us), from_us(interval.end_us))
               .select(id_col).collect()[id_col])
        gaps.extend(find_id_gaps(ids))
    return gaps
