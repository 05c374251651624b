"""Cron against an exchange: the pipeline fetches the window from the local Binance REST
emulator (127.0.0.1), reports, and a rerun resumes from the stored coverage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from botclave_cli.cli.app import app
from botclave_cli.data.store import DatasetRef, Store
from tests.emulator.binance_rest import BinanceEmulator, EmuMarket, synthetic_agg_trades

T0_MS = 1_723_075_200_000  # 2024-08-08 00:00 UTC
REF = DatasetRef("binance", "spot", "BTC/USDT", "agg_trades")


@pytest.fixture(scope="module")
def emulator():
    agg = synthetic_agg_trades(12_000, T0_MS, seed=11, mean_gap_ms=400)  # ~80 minutes
    with BinanceEmulator([EmuMarket("BTCUSDT", "spot", "BTC", "USDT", "0.01", "0.00001",
                                    agg)]) as emu:
        yield emu


def test_pipeline_fetches_reports_and_resumes(emulator, tmp_path: Path):
    exchange = tmp_path / "exchange_config.yaml"
    exchange.write_text(yaml.safe_dump({"exchange": "binance", "market": "spot",
                                        "api_urls": {"all": emulator.base_url}}))
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(yaml.safe_dump({
        "title": "fetch test", "exchange": "binance", "symbol": "BTC/USDT",
        "from": "2024-08-08T00:00:00", "to": "2024-08-08T01:00:00",
        "data_dir": str(tmp_path / "ds"), "reports_dir": str(tmp_path / "reports"),
        "exchange_config": str(exchange), "fetch": {"kinds": ["agg_trades"]},
        "footprint": {"png_bars": 10}, "validate": {"enabled": False}}))
    runner = CliRunner()
    first = runner.invoke(app, ["report", "--pipeline", str(cfg), "--json"])
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    stages = {s["name"]: s for s in data["stages"]}
    assert "new row(s)" in stages["data"]["detail"]
    assert stages["depth"]["status"] == "skipped"
    assert stages["footprint"]["status"] == "ok" and stages["backtest"]["status"] == "ok"
    store = Store(tmp_path / "ds")
    manifest = store.manifest(REF)
    assert manifest is not None and manifest.source.startswith("ccxt")
    rows = store.scan(REF).collect().height
    assert rows == manifest.row_count > 8_000
    again = runner.invoke(app, ["report", "--pipeline", str(cfg)])
    assert again.exit_code == 0, again.output
    assert again.output.strip().splitlines() == [again.output.strip()]
    assert again.output.startswith(f"report {data['report']}; ")
    assert store.scan(REF).collect().height == rows  # nothing fetched twice
