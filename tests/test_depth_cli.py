"""``botclave depth`` and ``botclave depth replay`` through the CLI runner."""

from __future__ import annotations

import gzip
import json

import pytest
from typer.testing import CliRunner

from botclave_cli.cli.app import app
from botclave_cli.data.importers.imports import import_capture
from botclave_cli.data.store import DatasetRef
from tests.conftest import shared_file

runner = CliRunner()
ETH = "binance-ws/spot_ethusdt_20240808.gz"


def invoke(*args):
    return runner.invoke(app, list(args))


def _lines():
    return gzip.decompress(shared_file(ETH).read_bytes()).splitlines(keepends=True)


def test_replay_capture_reports_counts_as_json():
    result = invoke("depth", "replay", str(shared_file(ETH)), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["market"] == "spot" and data["symbol"] == "ETH/USDT"
    assert (data["tickers_checkable"], data["tickers_matched"]) == (577, 577)
    assert data["gaps"] == 0 and data["resyncs_requested"] == 0
    assert data["level_updates_applied"] > 100_000


def test_replay_of_a_capture_with_a_missing_diff_exits_3(tmp_path):
    lines = _lines()
    depth_lines = [i for i, line in enumerate(lines) if b"@depth" in line]
    del lines[depth_lines[len(depth_lines) // 2]]
    path = tmp_path / "holed.txt"
    path.write_bytes(b"".join(lines))
    result = invoke("depth", "replay", str(path), "--json")
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert data["gaps"] == 1 and not data["valid_at_end"]
    assert data["invalidations"][0]["reason"] == "gap"
    assert "1 gap(s)" in result.stderr


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_bad_lines_are_named_or_skipped(tmp_path, damage):
    lines = _lines()[:3000]
    if damage == "garbage":
        lines.insert(1000, b"1723161254036052868 this is not json\n")
        line_no = 1001
    else:
        lines[-1] = lines[-1][: len(lines[-1]) // 2]
        line_no = 3000
    path = tmp_path / "bad.txt"
    path.write_bytes(b"".join(lines))
    result = invoke("depth", "replay", str(path))
    assert result.exit_code == 3
    assert "bad.txt" in result.stderr and str(line_no) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = invoke("depth", "replay", str(path), "--skip-bad", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["bad_lines"] == 1


def test_replay_usage_errors(tmp_path):
    assert invoke("depth", "replay", str(tmp_path / "nope.gz")).exit_code == 2
    assert invoke("depth", "replay", "x", "--market", "options").exit_code == 2
    assert invoke("depth").exit_code == 2  # no --symbol, no subcommand
    result = invoke("depth", "--symbol", "ETH/USDT", "--interval", "fast")
    assert result.exit_code == 2 and "--interval" in result.stderr


def test_depth_series_written_to_the_store_with_heatmap(store, tmp_path):
    import_capture(store, [shared_file(ETH)])
    png = tmp_path / "heat.png"
    result = invoke("depth", "--symbol", "ETH/USDT", "--data-dir", str(store.root),
                    "--from", "2024-08-08T23:55:00", "--to", "2024-08-08T23:59:00",
                    "--interval", "1s", "--png", str(png), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["counts"]["gaps"] == 0
    assert data["rows"] == 240  # 4 minutes of 1 s samples, all valid
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    series_dir = data["written"]["depth_series"]
    params = series_dir.rsplit("params=", 1)[1]
    ref = DatasetRef("binance", "spot", "ETH/USDT", "depth_series").with_level("params", params)
    series = store.scan(ref).collect()
    assert series.height == 240
    assert series["ts"].dt.epoch("us").diff().drop_nulls().unique().to_list() == [1_000_000]
    assert (series["spread"] > 0).all() and series["imbalance"].is_between(-1, 1).all()
    manifest = store.manifest(ref)
    assert manifest.params["interval_us"] == 1_000_000 and manifest.source.startswith("botclave")
    snap_ref = DatasetRef("binance", "spot", "ETH/USDT", "book_snapshot").with_level(
        "params", data["written"]["book_snapshot"].rsplit("params=", 1)[1])
    smp_manifest = store.manifest(snap_ref)
    assert smp_manifest.params == {"sampled_by": "botclave", "interval_us": 1_000_000, "depth": 20}
    samples = store.scan(snap_ref).collect()
    assert samples.group_by("seq").len()["len"].max() == 40  # 20 levels per side
    # the stored REST snapshot dataset is untouched by the samples
    rest = store.scan(DatasetRef("binance", "spot", "ETH/USDT", "book_snapshot")).collect()
    assert rest["seq"].n_unique() == 1
    # replay of the stored dataset gives the capture's result
    result = invoke("depth", "replay", "binance/spot/ETH-USDT", "--data-dir", str(store.root),
                    "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tickers_matched"] == 577


def test_depth_without_data_exits_3(store):
    result = invoke("depth", "--symbol", "BTC/USDT", "--data-dir", str(store.root))
    assert result.exit_code == 3 and "book_diff" in result.stderr
    assert invoke("depth", "--symbol", "BTC/USDT", "--kind", "klines").exit_code == 2


def test_depth_kind_agg_trades_missing_exits_3(store):
    import_capture(store, [shared_file(ETH)])
    result = invoke("depth", "--symbol", "ETH/USDT", "--data-dir", str(store.root),
                    "--kind", "agg_trades")
    assert result.exit_code == 3 and "agg_trades" in result.stderr
