"""``botclave backtest --sweep``: one row per parameter set, the rows ``validate pbo`` reports,
and the same Parquet bytes serially, on a process pool and on a real local Dask cluster."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from botclave_cli.cli.app import app
from tests.test_validate_cli import _configs, _validate, data_dir  # noqa: F401 - the fixture


def _sweep(tmp: Path, data_dir: Path, *extra: str):  # noqa: F811
    strategy, validation = _configs(tmp)
    args = ["backtest", "--sweep", "--config", str(strategy), "--validation", str(validation),
            "--exchange", "synth", "--from", "2024-01-01T00:00", "--to", "2024-01-01T06:00",
            "--data-dir", str(data_dir), "--out-dir", str(tmp / "reports"), *extra]
    return CliRunner().invoke(app, args)


@pytest.fixture(scope="module")
def serial_sweep(tmp_path_factory, data_dir):  # noqa: F811
    tmp = tmp_path_factory.mktemp("sweep")
    res = _sweep(tmp, data_dir, "--executor", "serial", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    return data, Path(data["table"]).read_bytes()


def test_sweep_rows_are_the_validation_parameter_sets(tmp_path, data_dir, serial_sweep):  # noqa: F811
    data, _ = serial_sweep
    table = pl.read_parquet(data["table"])
    assert table.height == 4 and data["sets"] == 4
    assert table["param.sma_cross.fast"].to_list() == [3, 3, 5, 5]
    assert table["param.sma_cross.slow"].to_list() == [12, 24, 12, 24]
    res = _validate(tmp_path, data_dir, "pbo", "--jobs", "1", "--json")
    assert res.exit_code == 0, res.output
    sets = pl.read_parquet(Path(json.loads(res.stdout)["folder"]) / "parameter_sets.parquet")
    cols = ["params", "objective", "sharpe", "sortino", "total_return", "max_drawdown",
            "trades"]
    assert_frame_equal(table.select(cols), sets.select(cols), check_dtypes=False)
    meta = json.loads((Path(data["folder"]) / "sweep.json").read_text())
    best = table.sort("objective", descending=True, nulls_last=True).row(0, named=True)
    assert meta["best"]["set"] == best["set"] and meta["objective"] == "sharpe"


def test_sweep_on_processes_is_byte_identical(tmp_path, data_dir, serial_sweep):  # noqa: F811
    res = _sweep(tmp_path, data_dir, "--executor", "processes", "--jobs", "2", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["jobs"]["used"] == 2
    assert Path(data["table"]).read_bytes() == serial_sweep[1]
    assert Path(data["folder"]).name == Path(serial_sweep[0]["folder"]).name  # same sweep id


def test_sweep_on_a_dask_cluster_is_byte_identical(tmp_path, data_dir, serial_sweep):  # noqa: F811
    from tests.cluster import local_cluster

    with local_cluster(tmp_path / "cluster", workers=1) as c:
        res = _sweep(tmp_path, data_dir, "--executor", f"dask={c.address}", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["jobs"]["executor"] == "dask" and data["jobs"]["tasks"] == 4
    assert Path(data["table"]).read_bytes() == serial_sweep[1]


def test_sweep_needs_a_range(tmp_path, data_dir):  # noqa: F811
    strategy, validation = _configs(tmp_path)
    res = CliRunner().invoke(app, ["backtest", "--sweep", "--config", str(strategy),
                                   "--validation", str(validation), "--exchange", "synth",
                                   "--data-dir", str(data_dir)])
    assert res.exit_code == 2
    assert res.stderr.strip() == ("error: --sweep needs --from and --to (the range every set "
                                  "is backtested on)")
