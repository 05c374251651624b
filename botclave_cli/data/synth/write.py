"""``write_synth``: the synthetic market into the store, replacing any previous one whole."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from pydantic import ValidationError

from botclave_cli.data import atomic
from botclave_cli.data.manifest import Manifest
from botclave_cli.data.schemas import partition_dates
from botclave_cli.data.store import PARTITION_FILE, DatasetRef, Store
from botclave_cli.data.synth.config import SynthConfig
from botclave_cli.data.synth.generate import SynthMarket, generate
from botclave_cli.data.synth.truth import Truth
from botclave_cli.errors import DataError
from botclave_cli.progress import Progress, or_null

EXCHANGE = "synth"
MARKET = "spot"
TRUTH_NAME = "truth.json"
KIND_ORDER = ("trades", "book_snapshot", "book_diff", "quotes", "ohlcv")


@dataclass
class SynthWritten:
    """What ``write_synth`` wrote: rows per kind, the dataset paths and the truth file."""

    config: SynthConfig
    rows: dict[str, int]
    datasets: dict[str, Path]
    truth_path: Path
    events: int
    quiet: int
    seconds: float
    market: SynthMarket | None = field(default=None, repr=False)
    expected_edge_bps: float = 0.0


def dataset_refs(symbol: str) -> dict[str, DatasetRef]:
    """The store datasets of the synthetic market of ``symbol`` (ohlcv under timeframe=1m)."""
    refs = {kind: DatasetRef(EXCHANGE, MARKET, symbol, kind) for kind in KIND_ORDER}
    refs["ohlcv"] = refs["ohlcv"].with_level("timeframe", "1m")
    return refs


def truth_path(store: Store, symbol: str) -> Path:
    """``<data dir>/synth/spot/<symbol folder>/truth.json``."""
    return store.path(DatasetRef(EXCHANGE, MARKET, symbol, "x")).parent / TRUTH_NAME


def read_truth(path: Path) -> Truth:
    try:
        return Truth.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise DataError(f"{path}: no truth file (run botclave synth first)") from None
    except (json.JSONDecodeError, ValidationError) as exc:
        raise DataError(f"{path}: not a valid truth file ({type(exc).__name__})") from None


def write_synth(store: Store, cfg: SynthConfig, progress: Progress | None = None,
                keep_market: bool = False) -> SynthWritten:
    """Generate the market and write it as ``synth/spot/<symbol>``: every kind plus truth.json.

    The whole symbol folder is built beside the store and swapped in at the end, so a reader
    never sees a mix of two generations, and derived datasets of an older generation (made from
    other data) go with it.
    """
    started = time.perf_counter()
    market = generate(cfg, progress)
    prog = or_null(progress)
    refs = dataset_refs(cfg.symbol)
    final_dir = truth_path(store, cfg.symbol).parent
    tmp_root = store.root / f".synth{atomic.TEMP_MARK}{os.getpid()}"
    shutil.rmtree(tmp_root, ignore_errors=True)
    tmp_store = Store(tmp_root)
    rows: dict[str, int] = {}
    try:
        prog.start(len(KIND_ORDER) + 1, f"synth {cfg.symbol}: write")
        for kind, df in market.frames().items():
            _write_fresh(tmp_store, refs[kind], df, _manifest(cfg, kind))
            rows[kind] = df.height
            prog.advance()
        atomic.write_text(truth_path(tmp_store, cfg.symbol),
                          market.truth.model_dump_json(indent=2) + "\n")
        with atomic.atomic_dir(final_dir) as new_dir:
            os.replace(truth_path(tmp_store, cfg.symbol).parent, new_dir)  # onto the empty dir
        prog.advance()
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return SynthWritten(
        config=cfg, rows=rows, datasets={k: store.path(r) for k, r in refs.items()},
        truth_path=final_dir / TRUTH_NAME, events=len(market.truth.events),
        quiet=len(market.truth.quiet), seconds=time.perf_counter() - started,
        market=market if keep_market else None,
        expected_edge_bps=market.truth.edge.expected_edge_bps if market.truth.edge else 0.0,
    )


def _write_fresh(store: Store, ref: DatasetRef, df: pl.DataFrame, manifest: Manifest) -> None:
    """Write a new dataset whose frame is already normalised (the generator emits rows sorted
    by the kind's order with unique keys, which the tests check): one file per UTC date, then
    the manifest. ``Store.write`` would merge, dedupe and re-sort it: same bytes, more time."""
    base = store.path(ref)
    dates = partition_dates(df)
    for (day,), part in df.with_columns(dates.alias("__date")).group_by(
            "__date", maintain_order=True):
        part = part.drop("__date")
        atomic.write_parquet(base / f"date={day.isoformat()}" / PARTITION_FILE, part)
        manifest.partitions[day.isoformat()] = part.height
    manifest.row_count = df.height
    store.save_manifest(ref, manifest)


def _manifest(cfg: SynthConfig, kind: str) -> Manifest:
    m = Manifest(
        kind=kind, exchange=EXCHANGE, market=MARKET, symbol=cfg.symbol, source="synth",
        sources=[f"botclave synth seed={cfg.seed}"], tick_size=cfg.tick_size,
        lot_size=cfg.lot_size, tick_source="synth",
        params={"synth": cfg.model_dump(mode="json")},
    )
    m.add_coverage(cfg.start_us, cfg.end_us)
    return m
