"""Synthetic market: generation throughput, and a full scan of a 10M-trade store dataset."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import polars as pl

from benchmarks.run import Result
from botclave_cli.data.store import Store
from botclave_cli.data.synth import SynthConfig, generate, write_synth

TARGET_TRADES = 10_000_000


def _scan_polars(path: Path) -> pl.DataFrame:
    return (pl.scan_parquet(str(path / "date=*" / "*.parquet"), hive_partitioning=True)
            .group_by("side").agg(pl.col("qty").sum(), pl.len()).sort("side").collect())


def _scan_pyarrow(path: Path) -> dict:
    import pyarrow.dataset as ds

    files = [str(f) for f in sorted(path.glob("date=*/*.parquet"))]
    table = ds.dataset(files, format="parquet").to_table(columns=["side", "qty"])
    return table.group_by("side").aggregate([("qty", "sum"), ("qty", "count")]).to_pydict()


def run() -> list[Result]:
    results = []
    generate(SynthConfig(trades_per_day=20_000, book_interval_ms=1_000))  # compile the kernel

    cfg = SynthConfig(trades_per_day=2_000_000)
    started = time.perf_counter()
    market = generate(cfg)
    seconds = time.perf_counter() - started
    rows = sum(df.height for df in market.frames().values())
    results.append(Result("synth", "generate 1 day, 2M orders (trades rows/s)",
                          market.trades.height / seconds, "rows/s",
                          note=f"{market.trades.height:,} trades, {rows:,} rows of all kinds "
                               f"in {seconds:.1f} s"))
    results.append(Result("synth", "generate 1 day, 2M orders (all rows/s)", rows / seconds,
                          "rows/s", note="trades + book diffs + quotes + snapshot + ohlcv"))
    del market

    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        store = Store(tmp)
        big = SynthConfig(trades_per_day=int(TARGET_TRADES * 0.95), book_interval_ms=1_000)
        started = time.perf_counter()
        written = write_synth(store, big)
        seconds = time.perf_counter() - started
        n = written.rows["trades"]
        results.append(Result("synth", "generate + write 10M-trade day (trades rows/s)",
                              n / seconds, "rows/s", note=f"{n:,} trades in {seconds:.1f} s"))
        path = written.datasets["trades"]
        _scan_polars(path)  # warm the page cache for both readers
        started = time.perf_counter()
        out = _scan_polars(path)
        ours = time.perf_counter() - started
        assert out["len"].sum() == n
        started = time.perf_counter()
        _scan_pyarrow(path)
        peer = time.perf_counter() - started
        results.append(Result("synth", "full scan of 10M trades (sum qty, count by side)",
                              n / ours, "rows/s", peer="pyarrow.dataset", peer_value=n / peer,
                              note=f"polars scan_parquet {ours:.2f} s"))
    return results
