"""``botclave backtest --book/--no-book`` on the synthetic market written to the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from botclave_cli.cli.app import app
from botclave_cli.data.store import Store
from botclave_cli.data.synth import SynthConfig
from botclave_cli.data.synth.write import write_synth


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthbook") / "data"
    write_synth(Store(root), SynthConfig(trades_per_day=5000, book_interval_ms=1000))
    return root


def cli(data_dir: Path, out: Path, *args: str):
    return CliRunner().invoke(app, ["backtest", "--exchange", "synth", "--data-dir",
                                    str(data_dir), "--out-dir", str(out), "--json", *args])


def test_book_found_in_the_store_is_used_unless_no_book(data_dir: Path, tmp_path: Path) -> None:
    r = cli(data_dir, tmp_path, "--set", "entry.book_imbalance_min=0.05")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert any(n.startswith("book: ") for n in data["notes"])
    manifest = json.loads((Path(data["folder"]) / "manifest.json").read_text())
    assert manifest["book"] is True
    plain = cli(data_dir, tmp_path, "--no-book")
    assert plain.exit_code == 0, plain.output
    assert not any(n.startswith("book: ") for n in json.loads(plain.output)["notes"])


def test_imbalance_filter_without_book_is_one_line_exit_2(data_dir: Path, tmp_path: Path) -> None:
    r = cli(data_dir, tmp_path, "--no-book", "--set", "entry.book_imbalance_min=0.05")
    assert r.exit_code == 2
    assert "entry.book_imbalance_min needs book data" in r.output
    assert "Traceback" not in r.output


def test_the_same_run_with_and_without_the_book_gets_two_run_ids(data_dir: Path,
                                                                 tmp_path: Path) -> None:
    with_book = json.loads(cli(data_dir, tmp_path).output)
    without = json.loads(cli(data_dir, tmp_path, "--no-book").output)
    assert with_book["run_id"] != without["run_id"]
    assert Path(with_book["folder"]).exists() and Path(without["folder"]).exists()
    coverage = json.loads((Path(with_book["folder"]) / "manifest.json").read_text())["coverage"]
    assert coverage["mode"] == "trades+book" and coverage["book_samples"] > 0
    again = json.loads(cli(data_dir, tmp_path).output)
    assert again["run_id"] == with_book["run_id"]
