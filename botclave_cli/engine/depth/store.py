"""A depth run against the store: read snapshots, diffs and trades; write samples and series.

Times in microseconds since epoch (UTC); ranges are [start_us, end_us).
"""

from __future__ import annotations

import polars as pl

from botclave_cli.data.manifest import Manifest
from botclave_cli.data.scalars import as_datetime
from botclave_cli.data.store import DatasetRef, Store, find_trades, from_us, params_hash, to_us
from botclave_cli.engine.depth.analyzer import DepthParams, DepthResult
from botclave_cli.errors import DataError

#: diffs this long before the chosen snapshot are read too: Binance asks to buffer them
BUFFER_BEFORE_SNAPSHOT_US = 60_000_000


def load_book(store: Store, exchange: str, market: str, symbol: str, start_us: int | None = None,
              end_us: int | None = None, trades_kind: str | None = None) -> dict:
    """Snapshots, diffs and trades for a depth run from the store, starting at the last REST
    snapshot at or before ``start_us`` (the book needs one to sync). Returns frames plus the
    manifest's tick and lot (None when the manifest has none)."""
    ref = DatasetRef(exchange, market, symbol, "book_diff")
    snap_ref = DatasetRef(exchange, market, symbol, "book_snapshot")
    for r in (ref, snap_ref):
        if not store.exists(r):
            raise DataError(f"no {r.kind} dataset at {store.path(r)}; record or import a capture")
    when = pl.coalesce("ts", "ts_local").dt.epoch("us")
    heads = (store.scan(snap_ref).group_by("seq").agg(when.min().alias("t")).sort("seq")
             .collect())
    if heads.is_empty():
        raise DataError(f"{store.path(snap_ref)}: no snapshot to start the book from")
    before = heads.filter(pl.col("t") <= start_us) if start_us is not None else heads.head(1)
    first = (before.tail(1) if before.height else heads.head(1)).row(0, named=True)
    lo = first["t"] - BUFFER_BEFORE_SNAPSHOT_US
    lo_dt, hi_dt = from_us(lo), (from_us(end_us) if end_us is not None else None)
    try:  # the book is analysed without trades when the store has none (unless asked for)
        trades_ref: DatasetRef | None = find_trades(store, exchange, market, symbol, trades_kind)
    except DataError:
        if trades_kind is not None:
            raise
        trades_ref = None
    trades = (store.scan(trades_ref, lo_dt, hi_dt).select("ts", "price", "qty", "side")
              .sort("ts").collect() if trades_ref is not None else None)
    manifest = store.manifest(ref)
    return {
        "book_snapshot": store.scan(snap_ref, lo_dt, hi_dt).filter(
            pl.col("seq") >= first["seq"]).collect(),
        "book_diff": store.scan(ref, lo_dt, hi_dt).collect(),
        "trades": trades,
        "tick_size": manifest.tick_size if manifest else None,
        "lot_size": manifest.lot_size if manifest else None,
    }


def write_depth(store: Store, exchange: str, market: str, symbol: str, result: DepthResult,
                params: DepthParams, source: str) -> dict[str, str]:
    """Store the samples (``book_snapshot`` under ``params=``, manifest: sampled by botclave
    with interval and depth) and the series (``depth_series`` under ``params=``)."""
    written = {}
    sample_params = {"sampled_by": "botclave", "interval_us": params.interval_us,
                     "depth": params.sample_depth}
    series_params = params.model_dump()
    for kind, df, prm in (("book_snapshot", result.samples, sample_params),
                          ("depth_series", result.series, series_params)):
        ref = DatasetRef(exchange, market, symbol, kind).with_level("params", params_hash(prm))
        span = (to_us(as_datetime(df["ts"].min(), f"{kind}: first time")),
                to_us(as_datetime(df["ts"].max(), f"{kind}: last time")) + params.interval_us) \
            if df.height else None

        def new(kind: str = kind, prm: dict = prm) -> Manifest:
            return Manifest(kind=kind, exchange=exchange, market=market, symbol=symbol,
                            source=f"botclave-sampled:{source}", params=prm,
                            tick_size=result.tick_size)

        def update(m: Manifest, span=span) -> None:
            if span is not None:
                m.add_coverage(*span)

        store.write(ref, df, update_manifest=update, new_manifest=new)
        written[kind] = str(ref.relpath())
    return written
