"""Footprints from and to the store: read trades one partition at a time, build, write the
``footprint`` and ``footprint_levels`` kinds under ``params=<hash>/`` (parameters in the
manifest). What ``botclave footprint`` and the pipeline call."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl

from botclave_cli.data.manifest import Manifest
from botclave_cli.data.scalars import as_datetime
from botclave_cli.data.schemas import TS
from botclave_cli.data.store import DatasetRef, Store, params_hash, to_us
from botclave_cli.engine.footprint.builder import (
    FootprintBuilder,
    FootprintResult,
    FootprintSpec,
    concat_results,
)
from botclave_cli.errors import DataError, UsageError
from botclave_cli.progress import Progress, or_null


def row_size_ticks(tick_size: float, row_size: int | None, row_price: float | None) -> int:
    """``--row-size N`` (ticks) or ``--row-price P`` (a multiple of the tick) -> ticks."""
    if row_price is not None:
        if row_size is not None:
            raise UsageError("give --row-size or --row-price, not both")
        n = row_price / tick_size
        if row_price <= 0 or abs(n - round(n)) > 1e-9 * max(1.0, abs(n)) or round(n) < 1:
            raise UsageError(f"--row-price {row_price}: must be a positive multiple of the tick "
                             f"size {tick_size}")
        return int(round(n))
    return 1 if row_size is None else row_size


def resolve_tick(manifest: Manifest | None, tick_size: float | None) -> float:
    if tick_size is not None:
        if tick_size <= 0:
            raise UsageError(f"--tick-size {tick_size}: must be > 0")
        return tick_size
    if manifest is None or not manifest.tick_size:
        raise UsageError("the dataset's manifest has no tick size: pass --tick-size")
    return manifest.tick_size


def partition_chunks(store: Store, ref: DatasetRef, start: dt.datetime | None,
                     end: dt.datetime | None) -> Iterator[pl.LazyFrame]:
    """One lazy frame per ``date=`` partition inside [start, end), in date order."""
    for day, paths in store.partition_files(ref).items():
        if start is not None and day < start.date().isoformat():
            continue
        if end is not None and day > end.date().isoformat():
            continue
        for path in paths:
            schema = pl.scan_parquet(path).collect_schema()
            missing = [c for c in ("ts", "price", "qty", "side") if c not in schema]
            if missing:
                what = "no aggressor side" if missing == ["side"] else f"missing {missing[0]!r}"
                raise DataError(f"{path}: {what} (column {missing[0]!r} absent)")
        lf = pl.scan_parquet([str(p) for p in paths])
        lf = lf.select("ts", "price", "qty", "side")
        if start is not None:
            lf = lf.filter(pl.col("ts") >= pl.lit(start).cast(TS))
        if end is not None:
            lf = lf.filter(pl.col("ts") < pl.lit(end).cast(TS))
        yield lf.sort("ts", maintain_order=True)


@dataclass
class FootprintRun:
    """What a store build did: the refs written, row counts, the parameters' hash."""

    source: DatasetRef
    bars_ref: DatasetRef | None
    levels_ref: DatasetRef | None
    params_hash: str
    bars: int
    levels: int
    trades: int
    result: FootprintResult | None


def build_from_store(store: Store, ref: DatasetRef, spec: FootprintSpec,
                     start: dt.datetime | None = None, end: dt.datetime | None = None,
                     write: bool = True, keep: bool = True,
                     progress: Progress | None = None) -> FootprintRun:
    """Build partition by partition; write each chunk's finished bars as it goes (memory stays
    flat: one partition of trades at a time) and keep the result in memory only if ``keep``.

    DataError when the range holds no trade.
    """
    progress = or_null(progress)
    files = store.partition_files(ref)
    progress.start(len(files) or None, f"footprint {ref.symbol} {spec.bar}")
    params = dataset_params(spec, start)
    h = params_hash(params)
    bars_ref, levels_ref = footprint_refs(ref, h)
    builder = FootprintBuilder(spec)
    kept: list[FootprintResult] = []
    counts = {"bars": 0, "levels": 0, "trades": 0}

    def emit(part: FootprintResult) -> None:
        if not part.bars.height:
            return
        counts["bars"] += part.bars.height
        counts["levels"] += part.levels.height
        if keep:
            kept.append(part)
        if write:
            write_part(store, ref, spec, params, part)

    for chunk in partition_chunks(store, ref, start, end):
        df = chunk.collect()
        counts["trades"] += df.height
        emit(builder.add(df))
        progress.advance(1)
    emit(builder.finish())
    if not counts["trades"]:
        span = f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M}" if start and end else "all"
        raise DataError(f"no trades in {store.root / ref.relpath()} for {span}")
    return FootprintRun(ref, bars_ref if write else None, levels_ref if write else None, h,
                        counts["bars"], counts["levels"], counts["trades"],
                        concat_results(kept, spec) if keep else None)


def footprint_refs(ref: DatasetRef, h: str) -> tuple[DatasetRef, DatasetRef]:
    """The ``footprint`` and ``footprint_levels`` datasets built from ``ref`` with params ``h``."""
    return tuple(DatasetRef(ref.exchange, ref.market, ref.symbol, kind).with_level("params", h)
                 for kind in ("footprint", "footprint_levels"))  # type: ignore[return-value]


def part_span(part: FootprintResult) -> tuple[int, int]:
    """(first bar_start, last bar_end) of a built chunk, us."""
    first = as_datetime(part.bars["bar_start"].min(), "footprint: first bar_start")
    last = as_datetime(part.bars["bar_end"].max(), "footprint: last bar_end")
    return to_us(first), to_us(last)


def write_part(store: Store, ref: DatasetRef, spec: FootprintSpec, params: dict,
               part: FootprintResult, span: tuple[int, int] | None = None) -> None:
    """Merge one built chunk's bars and levels into the store (a rebuilt bar replaces the
    stored one) and add ``span`` (default: the chunk's) to both manifests' coverage."""
    if not part.bars.height:
        return
    bars, levels = part.to_store()
    span = span or part_span(part)

    def cover(m: Manifest) -> None:
        m.add_coverage(*span)

    src = store.manifest(ref)
    for target, frame in zip(footprint_refs(ref, params_hash(params)), (bars, levels),
                             strict=True):
        store.write(target, frame,
                    new_manifest=functools.partial(_manifest, target, ref, src, spec, params),
                    update_manifest=cover, prefer_new=True)


def dataset_params(spec: FootprintSpec, start: dt.datetime | None) -> dict:
    """The parameters that name a derived dataset. Volume, trade-count and range bars depend on
    where counting starts, so their anchor (``--from``, or the dataset's start) is part of them;
    time bars are anchored to the UTC epoch and do not need it."""
    params: dict = {"footprint": spec.params()}
    if spec.bar_spec.kind != "time":
        params["anchor"] = start.isoformat() if start is not None else "dataset start"
    return params


def _manifest(target: DatasetRef, src_ref: DatasetRef, src: Manifest | None,
              spec: FootprintSpec, params: dict) -> Manifest:
    return Manifest(kind=target.kind, exchange=target.exchange, market=target.market,
                    symbol=target.symbol, source="botclave:footprint",
                    sources=[str(src_ref.relpath())], tick_size=spec.tick_size,
                    lot_size=src.lot_size if src else None,
                    tick_source=src.tick_source if src else "option",
                    params={**params, "source_kind": src_ref.kind})
