"""``botclave validate`` end to end on a small stored trades dataset (sma_cross strategy)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from botclave_cli.cli.app import app
from botclave_cli.data.store import DatasetRef, Store
from tests.test_backtest_run import START, put_trades, random_trades

NO_BOUNDS: dict = {"fail": {}, "warn": {}}


def _trades(seed: int = 3) -> pl.DataFrame:
    """8,000 trades over the 6 hours from START."""
    return random_trades(seed, 8_000, 6, price_step=3.0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("store")
    put_trades(root, _trades())
    return root


def _configs(tmp: Path, **over) -> tuple[Path, Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    strategy = tmp / "strategy.yaml"
    strategy.write_text(yaml.safe_dump({"name": "sma_cross",
                                        "risk": {"sizing": "equity_fraction", "fraction": 0.5}}))
    data = {"parameters": {"sma_cross.fast": [3, 5], "sma_cross.slow": [12, 24]},
            "walk_forward": {"folds": 3, "gap_bars": 2, "min_train_bars": 20,
                             "min_test_bars": 10},
            "monte_carlo": {"runs": 40, "method": "bootstrap", "block_bars": 10},
            "pbo": {"blocks": 4}, "verdict": NO_BOUNDS}
    data.update(over)
    validation = tmp / "validation.yaml"
    validation.write_text(yaml.safe_dump(data))
    return strategy, validation


def _validate(tmp: Path, data_dir: Path, which: str, *extra: str, **over):
    strategy, validation = _configs(tmp, **over)
    args = ["validate", which, "--config", str(strategy), "--validation", str(validation),
            "--exchange", "synth", "--from", "2024-01-01T00:00", "--to", "2024-01-01T06:00",
            "--data-dir", str(data_dir), "--out-dir", str(tmp / "reports"), *extra]
    return CliRunner().invoke(app, args)


def test_all_writes_the_run_folder_and_validation(tmp_path, data_dir):
    res = _validate(tmp_path, data_dir, "all", "--jobs", "1", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["verdict"] == "pass" and data["reasons"] == []
    folder = Path(data["folder"])
    assert folder == tmp_path / "reports" / "runs" / data["run_id"] / "validation"
    assert (folder.parent / "manifest.json").exists()  # the base backtest of the same run id
    saved = json.loads((folder / "validation.json").read_text())
    assert saved["verdict"] == "pass" and saved["walk_forward"]["folds"] == 3
    assert saved["config"]["bars"] == 360 and saved["config"]["parameter_sets"] == 4
    assert saved["pbo"]["selection"]["trials"] == 4
    assert saved["oos"]["selection"]["trials"] == 4  # `all` runs the holdout too
    # with both, the walk-forward's stitched out-of-sample figures are the ones checked
    assert saved["figures"]["oos_sharpe"] == saved["walk_forward"]["oos"]["sharpe"]
    assert saved["figures"]["dsr"] == saved["pbo"]["selection"]["dsr"]
    mc = saved["monte_carlo"]
    assert mc["source"] == "stitched walk-forward out of sample"
    assert mc["bootstrap"]["runs"] == 40 and "reshuffle" not in mc  # method: bootstrap
    assert pl.read_parquet(folder / "monte_carlo_bootstrap.parquet").height == 40
    for table in saved["tables"]:
        assert pl.read_parquet(folder / table).height > 0
    folds = pl.read_parquet(folder / "walk_forward_folds.parquet")
    assert folds["oos_start"].to_list() == ["2024-01-01T02:24:00+00:00",
                                            "2024-01-01T03:36:00+00:00",
                                            "2024-01-01T04:48:00+00:00"]


def test_parallel_cli_run_equals_serial_byte_for_byte(tmp_path, data_dir):
    a = _validate(tmp_path / "a", data_dir, "all", "--jobs", "1", "--json")
    b = _validate(tmp_path / "b", data_dir, "all", "--jobs", "2", "--json")
    c = _validate(tmp_path / "c", data_dir, "all", "--jobs", "auto", "--json")
    assert a.exit_code == b.exit_code == c.exit_code == 0, a.output + b.output + c.output
    out = [json.loads(r.stdout) for r in (a, b, c)]
    assert out[0]["jobs"] == {"requested": 1, "used": 1, "reason": "--jobs 1: serial"}
    assert out[1]["jobs"] == {"requested": 2, "used": 2,
                              "reason": "--jobs 2: 2 worker processes, as asked"}
    folders = [Path(o["folder"]) for o in out]
    names = sorted(p.name for p in folders[0].iterdir())
    assert "validation.json" in names
    for folder in folders[1:]:
        assert names == sorted(p.name for p in folder.iterdir())
        for name in names:
            assert (folders[0] / name).read_bytes() == (folder / name).read_bytes(), name


def test_jobs_auto_is_the_default_and_says_what_it_chose(tmp_path, data_dir):
    """12 evaluations of 6 hours of 8,000 trades take milliseconds each: far below what a
    pool's start-up costs, so auto runs them here and says so."""
    res = _validate(tmp_path, data_dir, "walk-forward", "--json")  # no --jobs
    assert res.exit_code == 0, res.output
    jobs = json.loads(res.stdout)["jobs"]
    assert jobs["requested"] == "auto" and jobs["used"] == 1
    assert 1 <= jobs["cores"] <= (os.cpu_count() or 1)
    # 3 folds x 4 sets: judged after the warm-up and 2 timed evaluations: 9 left in the batch
    # and the 3 out-of-sample runs announced after it
    assert re.fullmatch(r"est\. serial \S+ s \(12 evaluations x \S+ s\)(: \d+ workers would "
                        r"save \S+ s < pool start 2\.5 s|; 1 core available)", jobs["reason"])
    # the log (-v) has each judgement and the choice
    strategy, validation = _configs(tmp_path / "log")
    log = tmp_path / "botclave.log"
    res = CliRunner().invoke(app, [
        "-v", "--log-file", str(log), "validate", "walk-forward", "--config", str(strategy),
        "--validation", str(validation), "--exchange", "synth", "--from", "2024-01-01T00:00",
        "--to", "2024-01-01T06:00", "--data-dir", str(data_dir), "--out-dir",
        str(tmp_path / "log" / "reports")])
    assert res.exit_code == 0, res.output
    records = [json.loads(line) for line in log.read_text().splitlines()]
    chosen = [r for r in records if r["msg"] == "validate jobs"]
    assert len(chosen) == 1 and chosen[0]["jobs"]["requested"] == "auto"
    judged = [r["msg"] for r in records if r["msg"].startswith("jobs auto: est. serial")]
    assert f"jobs auto: {chosen[0]['jobs']['reason']}" in judged
    bad = _validate(tmp_path / "bad", data_dir, "walk-forward", "--jobs", "many")
    assert bad.exit_code == 2
    assert bad.stderr.strip() == ("error: --jobs 'many': expected auto, 0 (all cores) or a "
                                  "positive number")


def test_verdicts_and_exit_codes(tmp_path, data_dir):
    fail = _validate(tmp_path / "f", data_dir, "walk-forward", "--jobs", "1",
                     verdict={"fail": {"oos_sharpe_min": 1e9}, "warn": {}})
    assert fail.exit_code == 1
    assert "error: validation verdict fail: fail: oos_sharpe" in fail.stderr
    warn = _validate(tmp_path / "w", data_dir, "walk-forward", "--jobs", "1",
                     verdict={"fail": {}, "warn": {"oos_sharpe_min": 1e9}})
    assert warn.exit_code == 0
    assert "walk-forward: warn (1 reason(s))" in warn.stdout
    assert "warning: warn: oos_sharpe" in warn.stderr


@pytest.mark.parametrize(("which", "extra", "over", "message"), [
    ("walk-forward", ("--folds", "40"), {}, "360 bars are fewer than 40 folds need"),
    ("pbo", (), {"parameters": {}}, "parameters is empty"),
    ("pbo", (), {"parameters": {"sma_cross.fast": [0, 3]}},
     "parameters: sma_cross.fast: Input should be greater than or equal to 1 (got 0)"),
    ("pbo", (), {"parameters": {"sma_cross.nope": [1]}}, "sma_cross.nope: unknown key"),
    ("oops", (), {}, "validate 'oops': expected one of oos, walk-forward"),
    ("walk-forward", ("--mode", "sideways"), {}, "--mode 'sideways': expected rolling"),
    ("monte-carlo", ("--runs", "0"), {}, "--runs 0: expected at least 1"),
    ("pbo", (), {"objective": "luck"}, "objective: Input should be"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, data_dir, which, extra, over, message):
    res = _validate(tmp_path, data_dir, which, "--jobs", "1", *extra, **over)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert not (tmp_path / "reports").exists()


def test_missing_trades_is_a_data_error(tmp_path, data_dir):
    strategy, validation = _configs(tmp_path)
    res = CliRunner().invoke(app, ["validate", "all", "--config", str(strategy), "--validation",
                                   str(validation), "--exchange", "synth", "--symbol", "ETH/USDT",
                                   "--from", "2024-01-01", "--to", "2024-01-02",
                                   "--data-dir", str(data_dir)])
    assert res.exit_code == 3
    assert f"no trades or agg_trades dataset in {data_dir / 'synth/spot/ETH-USDT'}" in res.stderr
    res = _validate(tmp_path, data_dir, "pbo", "--kind", "quotes")
    assert res.exit_code == 2 and "--kind 'quotes': expected trades or agg_trades" in res.stderr


def test_config_check_knows_validation_yaml(tmp_path):
    res = CliRunner().invoke(app, ["config", "check", "--json"])
    assert res.exit_code == 0, res.output
    files = {Path(f["file"]).name: f["status"] for f in json.loads(res.stdout)["files"]}
    assert files["validation.yaml"] == "ok"


def test_backtest_evaluator_never_sees_poisoned_oos_trades(tmp_path):
    """The real backtester through the library: trades from the first purged bar of the last
    fold on are replaced by another market; every fold's choice and in-sample figures stay."""
    from botclave_cli.config import ExchangeConfig
    from botclave_cli.strategy.params import StrategyParams
    from botclave_cli.validate.backtest_evaluator import backtest_validator
    from botclave_cli.validate.config import ValidationConfig
    from botclave_cli.validate.splits import walk_forward_folds

    cfg = ValidationConfig.model_validate(yaml.safe_load(_configs(tmp_path)[1].read_text()))
    params = StrategyParams.model_validate({"name": "sma_cross", "risk": {
        "sizing": "equity_fraction", "fraction": 0.5}})
    clean = _trades()
    cut_bar = walk_forward_folds(360, 3, "rolling", 2, 2, 20, 10)[-1].train.end
    cut = pl.lit(START + dt.timedelta(minutes=cut_bar)).dt.cast_time_unit("us")
    other = _trades(seed=99).filter(pl.col("ts") >= cut)
    poisoned = pl.concat([clean.filter(pl.col("ts") < cut), other])
    rows = []
    for name, frame in (("clean", clean), ("poisoned", poisoned)):
        put_trades(tmp_path / name, frame)
        store = Store(tmp_path / name)
        v = backtest_validator(store, DatasetRef("synth", "spot", "BTC/USDT", "trades"), START,
                               START + dt.timedelta(hours=6), params, ExchangeConfig(), cfg)
        rows.append(v.run("walk-forward").tables["walk_forward_folds"].to_dicts())
    for a, b in zip(*rows, strict=True):
        assert a["params"] == b["params"] and a["is_sharpe"] == b["is_sharpe"]
        assert a["is_trades"] == b["is_trades"]
    assert rows[0][-1]["oos_total_return"] != rows[1][-1]["oos_total_return"]


def test_rerunning_the_backtest_keeps_the_validation_of_its_run(tmp_path, data_dir):
    """backtest, validate, backtest again with the same run id: validation/ is still there,
    byte for byte, and the backtest's own files are the same bytes as the first run's."""
    strategy, _ = _configs(tmp_path)
    args = ["backtest", "--config", str(strategy), "--exchange", "synth", "--from",
            "2024-01-01T00:00", "--to", "2024-01-01T06:00", "--data-dir", str(data_dir),
            "--out-dir", str(tmp_path / "reports"), "--json"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    rid = json.loads(first.stdout)["run_id"]
    run_folder = tmp_path / "reports" / "runs" / rid
    results = {p.name: p.read_bytes() for p in run_folder.glob("*.parquet")}
    val = _validate(tmp_path, data_dir, "pbo", "--jobs", "1", "--json")
    assert val.exit_code == 0, val.output
    assert json.loads(val.stdout)["folder"] == str(run_folder / "validation")
    validation = {p.name: p.read_bytes() for p in (run_folder / "validation").iterdir()}
    assert "validation.json" in validation
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and json.loads(again.stdout)["run_id"] == rid
    assert {p.name: p.read_bytes() for p in (run_folder / "validation").iterdir()} == validation
    assert {p.name: p.read_bytes() for p in run_folder.glob("*.parquet")} == results
