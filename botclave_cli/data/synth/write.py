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
from botclave_cli.data.synth.generate import SynthDay, SynthMarket, SynthRun
from botclave_cli.data.synth.truth import Truth, TruthEvent
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
    """Generate the market day by day and write it as ``synth/spot/<symbol>``: every kind
    plus truth.json.

    Each day's partitions are written as the day is generated (memory holds the plan and one
    day, whatever the number of days; ``keep_market`` keeps every day for the caller). The
    whole symbol folder is built beside the store and swapped in at the end, so a reader never
    sees a mix of two generations, and derived datasets of an older generation (made from
    other data) go with it.
    """
    started = time.perf_counter()
    prog = or_null(progress)
    refs = dataset_refs(cfg.symbol)
    final_dir = truth_path(store, cfg.symbol).parent
    tmp_root = store.root / f".synth{atomic.TEMP_MARK}{os.getpid()}"
    shutil.rmtree(tmp_root, ignore_errors=True)
    tmp_store = Store(tmp_root)
    manifests = {kind: _manifest(cfg, kind) for kind in KIND_ORDER}
    rows = dict.fromkeys(KIND_ORDER, 0)
    kept: list[SynthDay] = []
    events: list[TruthEvent] = []
    try:
        run = SynthRun(cfg)
        for day in run.days(progress):
            for kind in KIND_ORDER:
                df = day.frames[kind]
                _write_day(tmp_store, refs[kind], df, manifests[kind])
                rows[kind] += df.height
            events.extend(day.events)
            if keep_market:
                kept.append(day)
            del day
        prog.start(1, f"synth {cfg.symbol}: manifests and truth")
        for kind in KIND_ORDER:
            manifests[kind].row_count = rows[kind]
            tmp_store.save_manifest(refs[kind], manifests[kind])
        truth = run.truth(events)
        atomic.write_text(truth_path(tmp_store, cfg.symbol), truth.model_dump_json(indent=2) + "\n")
        with atomic.atomic_dir(final_dir) as new_dir:
            os.replace(truth_path(tmp_store, cfg.symbol).parent, new_dir)  # onto the empty dir
        prog.advance()
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    market = None
    if keep_market:
        frames = {kind: pl.concat([d.frames[kind] for d in kept]) for kind in KIND_ORDER}
        market = SynthMarket(cfg, **frames, truth=truth)
    return SynthWritten(
        config=cfg, rows=rows, datasets={k: store.path(r) for k, r in refs.items()},
        truth_path=final_dir / TRUTH_NAME, events=len(truth.events),
        quiet=len(truth.quiet), seconds=time.perf_counter() - started, market=market,
        expected_edge_bps=truth.edge.expected_edge_bps if truth.edge else 0.0,
    )


def _write_day(store: Store, ref: DatasetRef, df: pl.DataFrame, manifest: Manifest) -> None:
    """Write a day of a new dataset whose frame is already normalised (the generator emits
    rows sorted by the kind's order with unique keys, which the tests check): one file per UTC
    date (a day's frame is one date). ``Store.write`` would merge, dedupe and re-sort it: same
    bytes, more time. The manifest is saved once, after the last day."""
    base = store.path(ref)
    dates = partition_dates(df)
    for (day,), part in df.with_columns(dates.alias("__date")).group_by(
            "__date", maintain_order=True):
        part = part.drop("__date")
        atomic.write_parquet(base / f"date={day.isoformat()}" / PARTITION_FILE, part)
        manifest.partitions[day.isoformat()] = manifest.partitions.get(day.isoformat(), 0) \
            + part.height


def _manifest(cfg: SynthConfig, kind: str) -> Manifest:
    m = Manifest(
        kind=kind, exchange=EXCHANGE, market=MARKET, symbol=cfg.symbol, source="synth",
        sources=[f"botclave synth seed={cfg.seed}"], tick_size=cfg.tick_size,
        lot_size=cfg.lot_size, tick_source="synth",
        params={"synth": cfg.model_dump(mode="json")},
    )
    m.add_coverage(cfg.start_us, cfg.end_us)
    return m
