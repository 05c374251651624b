"""``botclave paper --replay``: the run folder of a replay through the live path holds the same
orders, fills, trades, equity and signals as ``botclave backtest`` on the same stored trades."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from botclave_cli.backtest.results import RESULT_FILES
from botclave_cli.cli.app import app
from botclave_cli.data.store import Store
from botclave_cli.data.synth import SynthConfig
from botclave_cli.data.synth.write import write_synth

SETTINGS = ["--set", "entry.setups=[bos, absorption]", "--set", "bars.timeframe=2m",
            "--set", "risk.max_daily_loss=1.0", "--set", "risk.cooldown_losses=0"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("paper") / "data"
    write_synth(Store(root), SynthConfig(trades_per_day=20_000, seed=5))
    return root


def test_paper_replay_writes_the_backtest_run(data_dir: Path, tmp_path: Path) -> None:
    common = ["--exchange", "synth", "--data-dir", str(data_dir), "--out-dir", str(tmp_path),
              "--json", *SETTINGS]
    bt = CliRunner().invoke(app, ["backtest", "--no-book", *common])
    assert bt.exit_code == 0, bt.output
    paper = CliRunner().invoke(app, ["paper", "--replay", *common])
    assert paper.exit_code == 0, paper.output
    a, b = (Path(json.loads(r.output)["folder"]) for r in (bt, paper))
    assert a != b  # a paper run is its own run
    for name in RESULT_FILES:
        assert_frame_equal(pl.read_parquet(b / f"{name}.parquet"),
                           pl.read_parquet(a / f"{name}.parquet"))
    assert pl.read_parquet(a / "trades.parquet").height >= 5
    assert json.loads(paper.output)["final_equity"] == json.loads(bt.output)["final_equity"]


def test_paper_without_replay_and_bad_speed_are_one_line(data_dir: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["paper", "--data-dir", str(data_dir)])
    assert r.exit_code == 2 and "needs --session" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["paper", "--replay", "--exchange", "synth", "--speed", "0",
                                 "--data-dir", str(data_dir), "--out-dir", str(tmp_path)])
    assert r.exit_code == 2 and "--speed 0" in r.output
