"""``botclave footprint`` end to end on a small store: output datasets, manifest parameters,
chunked (multi-partition) build, PNG, indicators, and bad input exit codes."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from botclave_cli.cli.app import app
from botclave_cli.data.manifest import Manifest
from botclave_cli.data.store import DatasetRef, Store
from botclave_cli.engine.footprint.builder import FootprintSpec, build_footprint

T0 = dt.datetime(2024, 1, 1, 23, 50, tzinfo=dt.UTC)
REF = DatasetRef("binance", "spot", "BTC/USDT", "trades")


def _trades(n: int = 1200) -> pl.DataFrame:
    # 20 minutes across midnight (two partitions), a zig-zag price on a 0.01 tick
    return pl.DataFrame({
        "ts": [T0 + dt.timedelta(seconds=i) for i in range(n)],
        "price": [42000 + ((i * 7) % 23) * 0.01 + (i // 100) * 0.1 for i in range(n)],
        "qty": [0.001 * (1 + i % 5) for i in range(n)],
        "side": ["buy" if (i * 3) % 5 < 3 else "sell" for i in range(n)],
        "trade_id": list(range(n)),
    }).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def _store(tmp_path, df=None, tick: float | None = 0.01) -> Store:
    store = Store(tmp_path / "data")
    store.write(REF, _trades() if df is None else df, new_manifest=lambda: Manifest(
        kind="trades", exchange="binance", market="spot", symbol="BTC/USDT", source="test",
        tick_size=tick, lot_size=0.001 if tick else None))
    return store


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_builds_writes_and_matches_one_pass(tmp_path) -> None:
    store = _store(tmp_path)
    png = tmp_path / "fp.png"
    r = invoke("footprint", "--data-dir", str(store.root), "--bar", "1m", "--row-size", "10",
               "--png", str(png), "--png-bars", "5", "--indicators",
               "cvd,profile,divergence,absorption,voids", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["trades"] == 1200 and out["bars"] == 20
    assert set(out["indicators"]) == {"cvd", "profile", "divergence", "absorption", "voids",
                                      "voids_untouched"}
    day2 = _trades().filter(pl.col("ts") >= dt.datetime(2024, 1, 2, tzinfo=dt.UTC))
    assert out["indicators"]["cvd"]["last"] == pytest.approx(  # daily reset: day 2 only
        sum(q if s == "buy" else -q for q, s in day2.select("qty", "side").rows()), abs=1e-9)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bars_ref = DatasetRef("binance", "spot", "BTC/USDT", "footprint").with_level(
        "params", out["params_hash"])
    manifest = store.manifest(bars_ref)
    assert manifest.params["footprint"]["row_size"] == 10
    assert sorted(manifest.partitions) == ["2024-01-01", "2024-01-02"]
    stored = store.scan(bars_ref).collect().sort("bar_start").drop("ts")
    one_pass = build_footprint(_trades(), FootprintSpec(bar="1m", tick_size=0.01, row_size=10,
                                                        qty_step=0.001)).bars
    assert_frame_equal(stored.select(one_pass.columns), one_pass)
    levels_ref = DatasetRef("binance", "spot", "BTC/USDT", "footprint_levels").with_level(
        "params", out["params_hash"])
    assert store.scan(levels_ref).select(pl.len()).collect().item() == out["levels"]


def test_volume_bars_across_partitions_equal_one_pass(tmp_path) -> None:
    store = _store(tmp_path)
    r = invoke("footprint", "--data-dir", str(store.root), "--bar", "vol:0.5", "--row-price",
               "0.05", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    ref = DatasetRef("binance", "spot", "BTC/USDT", "footprint").with_level(
        "params", out["params_hash"])
    stored = store.scan(ref).collect().sort("bar_start", "bar_id").drop("ts")
    one = build_footprint(_trades(), FootprintSpec(bar="vol:0.5", tick_size=0.01, row_size=5,
                                                   qty_step=0.001)).bars
    assert_frame_equal(stored.select(one.columns), one)


def test_freqtrade_preset_params_hash_differs(tmp_path) -> None:
    store = _store(tmp_path)
    plain = json.loads(invoke("footprint", "--data-dir", str(store.root), "--json").stdout)
    ft = invoke("footprint", "--data-dir", str(store.root), "--preset", "freqtrade",
                "--row-price", "0.1", "--json")
    assert ft.exit_code == 0, ft.output
    ft = json.loads(ft.stdout)
    assert ft["params"]["preset"] == "freqtrade" and ft["params"]["row_size"] == 10
    assert ft["params_hash"] != plain["params_hash"]
    assert store.exists(DatasetRef("binance", "spot", "BTC/USDT", "footprint").with_level(
        "params", ft["params_hash"]))


@pytest.mark.parametrize("args,code,message", [
    (["--bar", "2x"], 2, "unknown bar spec"),
    (["--row-price", "0.015"], 2, "multiple of the tick"),
    (["--from", "2024-01-02", "--to", "2024-01-01"], 2, "must be before"),
    (["--indicators", "cvd,rsi"], 2, "--indicators"),
    (["--preset", "atas"], 2, "--preset"),
    (["--imbalance-basis", "notional"], 2, "--imbalance-basis"),
    (["--kind", "quotes"], 2, "--kind"),
    (["--session", "8am"], 2, "session reset"),
    (["--row-size", "0"], 2, "--row-size"),
    (["--value-area", "1.5"], 2, "--value-area"),
    (["--from", "2024-03-01", "--to", "2024-03-02"], 3, "no trades"),
    (["--symbol", "ETH/USDT"], 3, "no trades or agg_trades dataset"),
])
def test_bad_input(tmp_path, args, code, message) -> None:
    store = _store(tmp_path)
    r = invoke("footprint", "--data-dir", str(store.root), *args)
    assert r.exit_code == code, r.output
    assert message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_no_aggressor_side_and_no_tick(tmp_path) -> None:
    df = _trades().with_columns(pl.lit("unknown").alias("side"))
    store = _store(tmp_path, df)
    r = invoke("footprint", "--data-dir", str(store.root))
    assert r.exit_code == 3 and "without aggressor side" in r.output
    assert not store.exists(DatasetRef("binance", "spot", "BTC/USDT", "footprint"))
    # a partition written by another tool without the side column at all
    (part,) = next(iter(store.partition_files(REF).values()))
    pl.read_parquet(part).drop("side").write_parquet(part)
    r = invoke("footprint", "--data-dir", str(store.root))
    assert r.exit_code == 3 and "side" in r.output and "internal" not in r.output
    store2 = _store(tmp_path / "b", tick=None)
    r = invoke("footprint", "--data-dir", str(store2.root))
    assert r.exit_code == 2 and "--tick-size" in r.output
    r = invoke("footprint", "--data-dir", str(store2.root), "--tick-size", "0.01", "--json")
    assert r.exit_code == 0, r.output


def test_anchor_names_count_based_datasets(tmp_path) -> None:
    store = _store(tmp_path)

    def hash_of(*args: str) -> str:
        r = invoke("footprint", "--data-dir", str(store.root), "--json", *args)
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)["params_hash"]

    late = ("--from", "2024-01-01T23:55:00", "--to", "2024-01-03")
    # time bars are anchored to the epoch: the same dataset whatever the range
    assert hash_of("--bar", "1m") == hash_of("--bar", "1m", *late)
    # volume bars counted from another start are other bars: another dataset
    assert hash_of("--bar", "vol:0.5") != hash_of("--bar", "vol:0.5", *late)
