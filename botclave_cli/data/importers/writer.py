"""Write what an importer parsed: tick/lot, gaps, coverage, manifest, the bad-rows report.

Importers parse and check every input row first and raise before anything is written, so a
refused import leaves the store untouched. This module then writes each dataset through
``Store.write`` (atomic per partition, manifest last).

Tick and lot come, in order, from ``--tick-size/--lot-size`` (``tick_source="option"``), from
the symbol's entry in ``configs/exchange_config.yaml`` (``"config"``), or are inferred from the
data (``"inferred"``, with a warning: the inferred step is the largest grid all prices sit on,
which can be a multiple of the true tick).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from botclave_cli.config import ExchangeConfig
from botclave_cli.data import atomic
from botclave_cli.data.importers.badrows import BadLine, report_frame
from botclave_cli.data.manifest import Gap, Manifest
from botclave_cli.data.store import DatasetRef, Store, symbol_folder
from botclave_cli.data.verify import TIMEFRAME_US, find_book_breaks, find_candle_gaps, find_id_gaps
from botclave_cli.errors import DataError
from botclave_cli.progress import Progress, or_null

#: (price columns, quantity columns) used to infer tick and lot, per kind
GRID_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "trades": (("price",), ("qty",)),
    "agg_trades": (("price",), ("qty",)),
    "book_diff": (("price",), ("qty",)),
    "book_snapshot": (("price",), ("qty",)),
    "quotes": (("bid_price", "ask_price"), ("bid_qty", "ask_qty")),
    "ohlcv": (("open", "high", "low", "close"), ()),
}


@dataclass
class Parsed:
    """An importer's output: one frame per dataset, and where it came from."""

    exchange: str
    market: str
    symbol: str
    source: str
    sources: list[str]
    #: (kind, levels, frame); levels like (("timeframe", "1m"),) for ohlcv
    frames: list[tuple[str, tuple[tuple[str, str], ...], pl.DataFrame]]
    bad: list[BadLine] = field(default_factory=list)
    lines: int = 0
    qty_unit: str = "base"
    contract_size: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: kind -> gaps the source saw itself (the live recorder: across flushes and reconnects)
    gaps: dict[str, list[Gap]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(df.height for _, _, df in self.frames)


@dataclass
class ImportResult:
    datasets: list[dict[str, Any]]
    bad_rows: int
    report: Path | None
    tick_size: float | None
    lot_size: float | None
    tick_source: str | None
    warnings: list[str]
    notes: list[str] = field(default_factory=list)
    #: kind -> the gaps written to its manifest by this import
    gaps: dict[str, list[Gap]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "datasets": self.datasets,
            "bad_rows": self.bad_rows,
            "bad_rows_report": str(self.report) if self.report else None,
            "tick_size": self.tick_size,
            "lot_size": self.lot_size,
            "tick_source": self.tick_source,
            "warnings": self.warnings,
        }


def infer_step(values: pl.Series, *, spacing: bool = False, max_decimals: int = 10) -> float | None:
    """Largest decimal step that the values (``spacing``: their differences) are multiples of.

    Prices use ``spacing`` (one repeated price says nothing about the tick); quantities use the
    values. None when there is not enough data to tell.
    """
    v = values.drop_nulls()
    v = v.filter(v > 0).unique().sort()
    if spacing:
        v = v.diff().drop_nulls()
    if v.is_empty():
        return None
    for decimals in range(max_decimals + 1):
        scaled = v * 10**decimals
        if ((scaled - scaled.round()).abs() <= 1e-6).all():
            break
    else:
        return None
    step = int(np.gcd.reduce(scaled.round().cast(pl.Int64).to_numpy()))
    return round(step / 10**decimals, decimals) if step else None


def finer_step(stored: float | None, new: float | None) -> float | None:
    """The largest step both inferred steps are multiples of: a later import (or the
    recorder's next chunk) that shows finer prices refines the dataset's step, never coarsens it."""
    if stored is None or new is None:
        return new if stored is None else stored
    return infer_step(pl.Series([stored, new])) or new


def resolve_grid(
    parsed: Parsed,
    tick_size: float | None,
    lot_size: float | None,
    config: ExchangeConfig | None,
) -> tuple[float | None, float | None, str | None, list[str]]:
    """(tick, lot, tick_source, warnings): options, then config, then inferred with a warning."""
    warnings: list[str] = []
    sym = config.symbol_config(parsed.symbol) if config is not None else None
    if sym is not None and sym.contract_size is not None and parsed.contract_size is None:
        parsed.contract_size = sym.contract_size
    source = "option" if tick_size is not None else None
    if tick_size is None and sym is not None and sym.tick_size is not None:
        tick_size, source = sym.tick_size, "config"
    if lot_size is None and sym is not None:
        lot_size = sym.lot_size
    if tick_size is None or lot_size is None:
        prices, qtys = _grid_values(parsed)
        if tick_size is None:
            tick_size = infer_step(prices, spacing=True)
            source = "inferred" if tick_size is not None else None
            if tick_size is None:
                warnings.append(
                    f"tick size of {parsed.symbol} unknown (too few prices); pass --tick-size"
                )
            else:
                warnings.append(
                    f"tick size {tick_size:g} for {parsed.symbol} inferred from the data "
                    "(no --tick-size, not in the config); check it"
                )
        if lot_size is None:
            lot_size = infer_step(qtys)
            if lot_size is not None:
                warnings.append(f"lot size {lot_size:g} for {parsed.symbol} inferred from the data")
    return tick_size, lot_size, source, warnings


def _grid_values(parsed: Parsed) -> tuple[pl.Series, pl.Series]:
    prices, qtys = [], []
    for kind, _, df in parsed.frames:
        price_cols, qty_cols = GRID_COLUMNS.get(kind, ((), ()))
        prices += [df[c].cast(pl.Float64) for c in price_cols if c in df.columns]
        qtys += [df[c].cast(pl.Float64) for c in qty_cols if c in df.columns]
    empty = pl.Series([], dtype=pl.Float64)
    return (pl.concat(prices) if prices else empty), (pl.concat(qtys) if qtys else empty)


def find_gaps(kind: str, df: pl.DataFrame, market: str, levels: dict[str, str]) -> list[Gap]:
    """Id gaps (trades, agg_trades), missing candles (ohlcv), book sequence breaks (book_diff)."""
    if df.is_empty():
        return []
    if kind == "trades" and df["trade_id"].null_count() < df.height:
        return find_id_gaps(df["trade_id"])
    if kind == "agg_trades":
        return find_id_gaps(df["agg_id"])
    if kind == "ohlcv" and levels.get("timeframe") in TIMEFRAME_US:
        return find_candle_gaps(df["ts"], TIMEFRAME_US[levels["timeframe"]])
    if kind == "book_diff" and df["first_update_id"].null_count() == 0:
        return find_book_breaks(df, market)
    return []


def _coverage(df: pl.DataFrame) -> tuple[int, int] | None:
    when = pl.coalesce("ts", "ts_local") if "ts_local" in df.columns else pl.col("ts")
    span = df.select(when.min().alias("lo"), when.max().alias("hi")).row(0)
    if span[0] is None:
        return None
    lo, hi = (int(v.timestamp() * 1_000_000) if isinstance(v, dt.datetime) else v for v in span)
    return lo, hi + 1


def write_import(
    store: Store,
    parsed: Parsed,
    *,
    tick_size: float | None = None,
    lot_size: float | None = None,
    config: ExchangeConfig | None = None,
    progress: Progress | None = None,
    append: bool = False,
) -> ImportResult:
    """Write every frame of ``parsed``; the bad-rows report goes beside the datasets.

    ``append`` adds the rows as part files without reading the stored ones (``Store.append``:
    only for rows that are new by construction, like the recorder's). Raises DataError (exit 3)
    when no row was good; the report is still written then.
    """
    prog = or_null(progress)
    report = write_bad_report(store, parsed) if parsed.bad else None
    if parsed.rows == 0:
        where = f"; bad rows listed in {report}" if report else ""
        raise DataError(f"{', '.join(parsed.sources)}: no good row to import{where}")
    tick, lot, tick_source, warnings = resolve_grid(parsed, tick_size, lot_size, config)
    prog.start(len(parsed.frames), f"writing {parsed.symbol}")
    written = []
    all_gaps: dict[str, list[Gap]] = {}
    for kind, levels, df in parsed.frames:
        ref = DatasetRef(parsed.exchange, parsed.market, parsed.symbol, kind, levels)
        gaps = [*parsed.gaps.get(kind, []), *find_gaps(kind, df, parsed.market, dict(levels))]
        all_gaps[kind] = gaps
        span = _coverage(df)

        def new_manifest(kind: str = kind) -> Manifest:
            return Manifest(
                kind=kind,
                exchange=parsed.exchange,
                market=parsed.market,
                symbol=parsed.symbol,
                source=parsed.source,
            )

        def update(
            m: Manifest, gaps: list[Gap] = gaps, span: tuple[int, int] | None = span
        ) -> None:
            m.source = parsed.source
            m.sources = list(dict.fromkeys([*m.sources, *parsed.sources]))
            if tick_source == "inferred" and m.tick_source == "inferred":
                m.tick_size = finer_step(m.tick_size, tick)
            else:
                m.tick_size = tick
            m.lot_size = lot if lot_size is not None else finer_step(m.lot_size, lot)
            m.tick_source = tick_source  # type: ignore[assignment]
            m.qty_unit = parsed.qty_unit  # type: ignore[assignment]
            m.contract_size = parsed.contract_size
            m.params = {**m.params, **parsed.params}
            if span is not None:
                m.add_coverage(*span)
            known = {(g.kind, g.start, g.end) for g in m.gaps}
            for gap in gaps:
                if (gap.kind, gap.start, gap.end) not in known:
                    known.add((gap.kind, gap.start, gap.end))
                    m.gaps.append(gap)

        put = store.append if append else store.write
        res = put(ref, df, update_manifest=update, new_manifest=new_manifest)
        written.append(
            {
                "kind": kind,
                "dataset": str(ref.relpath()),
                "rows": res.rows_written,
                "rows_new": res.rows_new,
                "partitions": list(res.partitions),
                "gaps": len(gaps),
            }
        )
        prog.advance(1)
    return ImportResult(
        written, len(parsed.bad), report, tick, lot, tick_source, warnings, parsed.notes, all_gaps
    )


def write_bad_report(store: Store, parsed: Parsed) -> Path:
    """``<store>/<exchange>/<market>/<symbol>/bad_rows/<source>-<UTC time>.csv``: file,line,reason.

    Beside the symbol's kind folders; it has no manifest, so it is never taken for a dataset.
    """
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = (
        store.root / parsed.exchange / parsed.market / symbol_folder(parsed.symbol) / "bad_rows"
    )
    target = folder / f"{parsed.source}-{stamp}.csv"
    atomic.write_text(target, report_frame(parsed.bad).write_csv())
    return target


def finite(value: float | None, option: str) -> float | None:
    """Validate a positive finite ``--tick-size``/``--lot-size``."""
    if value is not None and (not math.isfinite(value) or value <= 0):
        from botclave_cli.errors import UsageError

        raise UsageError(f"{option} {value}: expected a positive number")
    return value
