"""Footprint builds over several symbols and days as tasks (``footprint -s A -s B --executor``):
the store's files are the bytes one serial build per symbol writes, on every executor, a real
local Dask cluster included."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from botclave_cli.cli.app import app
from botclave_cli.data.manifest import Manifest
from botclave_cli.data.store import DatasetRef, Store

T0 = dt.datetime(2024, 1, 1, 21, 0, tzinfo=dt.UTC)
SYMBOLS = ("BTC/USDT", "ETH/USDT")


def _trades(seed: int, n: int = 5000) -> pl.DataFrame:
    """About 53 hours from T0 (four UTC days), a quiet hour around the first midnight."""
    rng = np.random.default_rng(seed)
    ts = int(T0.timestamp() * 1e6) + np.cumsum(rng.integers(1, 75_000_000, n))
    ts = np.where(ts > int(T0.timestamp() * 1e6) + 3 * 3600e6 - 1800e6,
                  ts + int(3600e6), ts)  # nothing from 23:30 to 00:30
    price = np.round(100 + np.cumsum(rng.normal(0, 0.05, n)), 2)
    return pl.DataFrame({
        "ts": pl.Series(ts).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        "price": price, "qty": np.round(rng.exponential(0.5, n), 3) + 0.001,
        "side": np.where(rng.random(n) < 0.5, "buy", "sell"),
        "trade_id": np.arange(n, dtype=np.int64)})


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("store") / "data"
    store = Store(root)
    for i, symbol in enumerate(SYMBOLS):
        store.write(DatasetRef("synth", "spot", symbol, "trades"), _trades(i),
                    new_manifest=lambda s=symbol: Manifest(
                        kind="trades", exchange="synth", market="spot", symbol=s,
                        source="test", tick_size=0.01, lot_size=0.001))
    return root


def _built(root: Path) -> dict[str, bytes]:
    """Every derived file (manifests without their creation time)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and "footprint" in str(p.relative_to(root)):
            data = p.read_bytes()
            if p.name == "manifest.json":
                m = json.loads(data)
                for stamp in ("created_us", "updated_us"):  # when, not what
                    m.pop(stamp, None)
                data = json.dumps(m, sort_keys=True).encode()
            out[str(p.relative_to(root))] = data
    return out


def _footprint(root: Path, *args: str):
    return CliRunner().invoke(app, ["footprint", "--exchange", "synth", "--data-dir", str(root),
                                    "--row-size", "5", *args])


def _copy(store_dir: Path, tmp: Path) -> Path:
    shutil.copytree(store_dir, tmp / "data")
    return tmp / "data"


@pytest.fixture(scope="module", params=["1m", "15m", "vol:20"])
def reference(request, store_dir, tmp_path_factory):
    """One serial build per symbol (the single-symbol command, as before)."""
    root = _copy(store_dir, tmp_path_factory.mktemp("ref"))
    for symbol in SYMBOLS:
        res = _footprint(root, "--bar", request.param, "-s", symbol, "--json")
        assert res.exit_code == 0, res.output
    return request.param, _built(root)


def _many(root: Path, bar: str, executor: str):
    args = [a for s in SYMBOLS for a in ("-s", s)]
    return _footprint(root, "--bar", bar, *args, "--executor", executor, "--json")


def test_serial_tasks_write_what_one_build_per_symbol_writes(reference, store_dir, tmp_path):
    bar, files = reference
    res = _many(_copy(store_dir, tmp_path), bar, "serial")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    days = [len(list((store_dir / "synth" / "spot" / s.replace("/", "-") / "trades")
                     .glob("date=*"))) for s in SYMBOLS]
    assert min(days) >= 3
    # time bars: a task per stored day; volume bars: one per symbol
    assert data["tasks"] == (sum(days) if bar[-1] == "m" else len(SYMBOLS))
    assert [b["symbol"] for b in data["builds"]] == list(SYMBOLS)
    assert all(b["trades"] == 5000 for b in data["builds"])
    assert _built(tmp_path / "data") == files


def test_process_pool_writes_the_same(store_dir, tmp_path):
    ref_root = _copy(store_dir, tmp_path / "ref")
    for symbol in SYMBOLS:  # one bar spec is enough for the pool (its start costs seconds)
        assert _footprint(ref_root, "--bar", "1m", "-s", symbol).exit_code == 0
    res = _many(_copy(store_dir, tmp_path / "pool"), "1m", "processes")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["jobs"]["used"] >= 1
    assert _built(tmp_path / "pool" / "data") == _built(ref_root)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from tests.cluster import local_cluster

    with local_cluster(tmp_path_factory.mktemp("cluster"), workers=2) as c:
        yield c


def test_dask_cluster_writes_the_same(reference, store_dir, tmp_path, cluster):
    bar, files = reference
    res = _many(_copy(store_dir, tmp_path), bar, f"dask={cluster.address}")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["jobs"]["tasks"] == json.loads(res.stdout)["tasks"]
    assert _built(tmp_path / "data") == files


def test_png_needs_one_symbol(store_dir, tmp_path):
    res = _many(_copy(store_dir, tmp_path), "1m", "serial")
    assert res.exit_code == 0
    res = _footprint(tmp_path / "data", "-s", "BTC/USDT", "--executor", "serial", "--png",
                     str(tmp_path / "x.png"))
    assert res.exit_code == 2
    assert res.stderr.strip() == ("error: --png and --indicators take one symbol, without "
                                  "--executor")


# depth: a task per symbol (a book is one state machine), on the two spot captures ------------
CAPTURES = ("binance-ws/spot_btcusdt_20240808.gz", "binance-ws/spot_ethusdt_20240808.gz")
DEPTH_ARGS = ("--from", "2024-08-08T23:55:00", "--to", "2024-08-08T23:58:00", "--interval", "1s")


@pytest.fixture(scope="module")
def book_store(tmp_path_factory) -> Path:
    from botclave_cli.data.importers.imports import import_capture
    from tests.conftest import shared_file

    files = [shared_file(c) for c in CAPTURES]
    root = tmp_path_factory.mktemp("books") / "data"
    store = Store(root)
    for f in files:
        import_capture(store, [f])
    return root


def _depth_files(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_file() and ("depth_series" in rel or "params=" in rel):
            data = p.read_bytes()
            if p.name == "manifest.json":
                m = json.loads(data)
                for stamp in ("created_us", "updated_us"):
                    m.pop(stamp, None)
                data = json.dumps(m, sort_keys=True).encode()
            out[rel] = data
    return out


@pytest.fixture(scope="module")
def depth_reference(book_store, tmp_path_factory):
    root = _copy(book_store, tmp_path_factory.mktemp("depth_ref"))
    for symbol in ("BTC/USDT", "ETH/USDT"):
        res = CliRunner().invoke(app, ["depth", "-s", symbol, "--data-dir", str(root),
                                       *DEPTH_ARGS, "--json"])
        assert res.exit_code == 0, res.output
    files = _depth_files(root)
    assert len([f for f in files if f.endswith(".parquet")]) == 4  # samples + series, x2
    return files


@pytest.mark.parametrize("executor", ["serial", "dask"])
def test_depth_tasks_write_what_the_single_symbol_command_writes(
        book_store, depth_reference, tmp_path, executor, request):
    root = _copy(book_store, tmp_path)
    args = ["depth", "-s", "BTC/USDT", "-s", "ETH/USDT", "--data-dir", str(root), *DEPTH_ARGS,
            "--json"]
    if executor == "dask":
        executor = f"dask={request.getfixturevalue('cluster').address}"
    res = CliRunner().invoke(app, [*args, "--executor", executor])
    assert res.exit_code == 0, res.output
    builds = json.loads(res.stdout)["builds"]
    assert [b["symbol"] for b in builds] == ["BTC/USDT", "ETH/USDT"]
    assert all(b["rows"] == 180 for b in builds)  # 3 minutes of 1 s samples
    assert _depth_files(root) == depth_reference
