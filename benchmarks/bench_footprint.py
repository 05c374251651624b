"""Footprint build speed and memory.

- throughput: ``build_footprint`` on 10M synthetic trades held in memory (a random walk on a
  0.01 tick over one UTC day, 1m bars, 10-tick rows), best of 3, conversion included;
- the same 10M trades read from Parquet through the store, partition by partition, and written
  back as ``footprint`` / ``footprint_levels`` (the path ``botclave footprint`` takes);
- peak memory (max RSS of a fresh process) of the streamed store build over 1x, 4x and 16x
  datasets (1, 4 and 16 days of 500k trades): flat means memory does not grow with the data;
- freqtrade's ``populate_dataframe_with_trades`` on the same 200k trades (one hour), when a bench
  interpreter with freqtrade is given in ``BOTCLAVE_FREQTRADE_PYTHON`` (freqtrade pins its own
  pandas/numpy/ccxt and never goes into the project venv); skipped with a note otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.run import Result
from botclave_cli.data.manifest import Manifest
from botclave_cli.data.store import DatasetRef, Store
from botclave_cli.engine.footprint.builder import FootprintSpec, build_footprint, freqtrade_columns
from botclave_cli.engine.footprint.store import build_from_store

AREA = "footprint"
N_TRADES = 10_000_000
DAY_US = 86_400_000_000
START_US = 1_704_067_200_000_000  # 2024-01-01
PER_DAY_MEM = 500_000
PEER_TRADES = 200_000
SPEC = FootprintSpec(bar="1m", tick_size=0.01, row_size=10, qty_step=1e-5)
REF = DatasetRef("bench", "spot", "BTC/USDT", "trades")


def synthetic_trades(n: int, day: int = 0, seed: int = 7, span_us: int = DAY_US) -> pl.DataFrame:
    rng = np.random.default_rng(seed + day)
    ts = np.sort(rng.integers(0, span_us, n)) + START_US + day * DAY_US
    ticks = 4_200_000 + np.cumsum(rng.integers(-1, 2, n))
    return pl.DataFrame({
        "ts": pl.Series(ts).cast(pl.Datetime("us", "UTC")),
        "price": ticks * 0.01,
        "qty": rng.integers(1, 2000, n) * 1e-5,
        "side": pl.Series(np.where(rng.random(n) < 0.5, "buy", "sell")),
        "trade_id": np.arange(n) + day * n,
    })


def write_days(root: Path, days: int, per_day: int) -> Store:
    store = Store(root)
    for d in range(days):
        store.write(REF, synthetic_trades(per_day, d), new_manifest=lambda: Manifest(
            kind="trades", exchange="bench", market="spot", symbol="BTC/USDT", source="bench",
            tick_size=0.01, lot_size=1e-5))
    return store


def _child_peak(root: Path) -> tuple[float, float]:
    """Run the streamed store build in a fresh interpreter; (seconds, peak RSS MiB, i.e. VmHWM,
    which includes the interpreter, polars and numba themselves: ~200 MiB)."""
    code = (
        "import sys, time, json\n"
        "from botclave_cli.data.store import Store\n"
        "from benchmarks.bench_footprint import REF, SPEC\n"
        "from botclave_cli.engine.footprint.store import build_from_store\n"
        "t = time.perf_counter()\n"
        "build_from_store(Store(sys.argv[1]), REF, SPEC, keep=False)\n"
        "dt = time.perf_counter() - t\n"
        # VmHWM, not ru_maxrss: Linux carries the parent's ru_maxrss over fork/exec
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(json.dumps([dt, int(hwm.split()[1]) / 1024]))\n"
    )
    env = {**os.environ, "POLARS_MAX_THREADS": os.environ.get("POLARS_MAX_THREADS", "2")}
    out = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True,
                         check=True, env=env, cwd=Path(__file__).resolve().parents[1])
    secs, mib = json.loads(out.stdout.strip().splitlines()[-1])
    return secs, mib


FREQTRADE_CODE = r"""
import json, sys, time
import pandas as pd
from freqtrade.data.converter.orderflow import populate_dataframe_with_trades
trades = pd.read_csv(sys.argv[1], dtype={"id": str, "type": object})
trades["date"] = pd.to_datetime(trades["timestamp"], unit="ms", utc=True)
candles = trades.set_index("date")["price"].resample("1min").ohlc().dropna().reset_index()
candles["volume"] = 0.0
config = {"timeframe": "1m", "orderflow": {"scale": float(sys.argv[2]), "imbalance_ratio": 3.0,
          "imbalance_volume": 0.0, "stacked_imbalance_range": 3, "max_candles": 1500,
          "cache_size": 1500}}
t = time.perf_counter()
df, _ = populate_dataframe_with_trades(None, config, candles, trades)
seconds = time.perf_counter() - t
out = []
for _, r in df.iterrows():
    if not isinstance(r["orderflow"], dict):
        continue
    imb = r["imbalances"]
    out.append({"date": int(r["date"].timestamp() * 1000), "bid": r["bid"], "ask": r["ask"],
                "min_delta": r["min_delta"], "max_delta": r["max_delta"],
                "total_trades": int(r["total_trades"]),
                "sib": [float(x) for x in r["stacked_imbalances_bid"]],
                "sia": [float(x) for x in r["stacked_imbalances_ask"]],
                "levels": [[float(p), int(v["bid"]), int(v["ask"]), float(v["bid_amount"]),
                            float(v["ask_amount"]), bool(imb[p]["bid_imbalance"]),
                            bool(imb[p]["ask_imbalance"])] for p, v in r["orderflow"].items()]})
print(json.dumps({"seconds": seconds, "candles": out}))
"""


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def freqtrade_agreement(trades: pl.DataFrame, candles: list[dict]) -> int:
    """How many of freqtrade's candles our ``--preset freqtrade`` reproduces in every column
    (bid/ask, deltas, trade count, stacked lists, and per level counts, volumes, imbalances)."""
    spec = SPEC.model_copy(update={"preset": "freqtrade"})
    res = build_footprint(trades, spec)
    ours = {int(r["bar_start"].timestamp() * 1000): r
            for r in freqtrade_columns(res).rows(named=True)}
    by_bar = res.levels.partition_by("bar_id", as_dict=True)
    good = 0
    for f in candles:
        c = ours.get(f["date"])
        if c is None or c["total_trades"] != f["total_trades"]:
            continue
        if not all(_close(c[k], f[k]) for k in ("bid", "ask", "min_delta", "max_delta")):
            continue
        if (len(c["stacked_imbalances_bid"]) != len(f["sib"])
                or len(c["stacked_imbalances_ask"]) != len(f["sia"])
                or not all(map(_close, c["stacked_imbalances_bid"], f["sib"]))
                or not all(map(_close, c["stacked_imbalances_ask"], f["sia"]))):
            continue
        lv = by_bar[(c["bar_id"],)].rows(named=True)
        good += len(lv) == len(f["levels"]) and all(
            _close(m["price"], t[0]) and (m["bid_count"], m["ask_count"]) == (t[1], t[2])
            and _close(m["bid_volume"], t[3]) and _close(m["ask_volume"], t[4])
            and (m["imbalance_sell"], m["imbalance_buy"]) == (t[5], t[6])
            for m, t in zip(lv, f["levels"], strict=True))
    return good


def _freqtrade_run(trades: pl.DataFrame, scale: float) -> dict | None:
    python = os.environ.get("BOTCLAVE_FREQTRADE_PYTHON")
    if not python:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trades.csv"  # the bench venv needs no pyarrow
        trades.select(
            (pl.col("ts").dt.epoch("ms")).alias("timestamp"), pl.col("trade_id").cast(pl.String)
            .alias("id"), pl.lit(None, pl.String).alias("type"), "side", "price",
            pl.col("qty").alias("amount"), (pl.col("price") * pl.col("qty")).alias("cost"),
        ).write_csv(path)
        out = subprocess.run([python, "-c", FREQTRADE_CODE, str(path), str(scale)],
                             capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run() -> list[Result]:
    results = []
    best = _in_memory_seconds()
    results.append(Result(AREA, "build 10M trades in memory, 1m bars, 10-tick rows",
                          N_TRADES / best, "trades/s", note=f"{best:.2f} s; goal >= 10M/s"))
    with tempfile.TemporaryDirectory() as tmp:
        store = write_days(Path(tmp) / "one", 1, N_TRADES)
        secs = _timed(lambda: build_from_store(store, REF, SPEC, keep=False))
        results.append(Result(AREA, "store -> footprint datasets, 10M trades (read+build+write)",
                               N_TRADES / secs, "trades/s", note=f"{secs:.2f} s"))
        peaks = []
        for mult in (1, 4, 16):
            root = Path(tmp) / f"x{mult}"
            write_days(root, mult, PER_DAY_MEM)
            secs, mib = _child_peak(root)
            peaks.append(mib)
            results.append(Result(AREA, f"peak RSS, streamed build of {mult}x "
                                  f"({mult * PER_DAY_MEM:,} trades, {mult} partitions)", mib,
                                  "MiB", note=f"{secs:.1f} s"))
        results.append(Result(AREA, "peak RSS 16x / 1x", peaks[-1] / peaks[0], "ratio",
                              note="flat = close to 1"))
    # freqtrade loops over candles in pandas (about 60 ms a candle here): one hour keeps it short
    hour = synthetic_trades(PEER_TRADES, span_us=3_600_000_000)
    ours = min(_timed(lambda: build_footprint(hour, SPEC)) for _ in range(3))
    try:
        ft = _freqtrade_run(hour, SPEC.tick_size * SPEC.row_size)
    except (subprocess.CalledProcessError, OSError) as exc:
        ft = None
        note = f"freqtrade run failed: {type(exc).__name__}"
    else:
        note = (f"same trades; freqtrade {ft['seconds']:.1f} s" if ft is not None else
                "freqtrade absent: set BOTCLAVE_FREQTRADE_PYTHON to a bench venv's python")
    theirs = ft["seconds"] if ft else None
    results.append(Result(AREA, f"{PEER_TRADES:,} trades in 60 1m bars (vs freqtrade)",
                          PEER_TRADES / ours, "trades/s",
                          peer="freqtrade populate_dataframe_with_trades",
                          peer_value=PEER_TRADES / theirs if theirs else None, note=note))
    if ft:
        good = freqtrade_agreement(hour, ft["candles"])
        results.append(Result(AREA, "--preset freqtrade reproduces freqtrade's candles",
                              100.0 * good / max(1, len(ft["candles"])), "%",
                              note=f"{good} of {len(ft['candles'])} candles, every column"))
    return results


def _in_memory_seconds() -> float:
    trades = synthetic_trades(N_TRADES)
    build_footprint(trades.head(10_000), SPEC)  # load the numba kernels once
    return min(_timed(lambda: build_footprint(trades, SPEC)) for _ in range(3))


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
