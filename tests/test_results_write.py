"""``ValidationResult.write`` replaces a validation folder as a whole (``data.atomic.atomic_dir``):
a table the new result lacks is gone, a failed write or swap leaves the previous folder whole."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from botclave_cli.validate import verdict
from botclave_cli.validate.verdict import ValidationResult


def result(verdict_: str, **tables: list[int]) -> ValidationResult:
    return ValidationResult("all", verdict=verdict_, reasons=[f"{verdict_}: because"],
                            tables={n: pl.DataFrame({"x": v}) for n, v in tables.items()})


def contents(folder: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for path in sorted(folder.iterdir()):
        out[path.name] = (json.loads(path.read_text()) if path.suffix == ".json"
                          else pl.read_parquet(path)["x"].to_list())
    return out


def test_write_replaces_the_folder_as_a_whole(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "validation"
    written = result("pass", folds=[1, 2], pbo=[3]).write(folder)
    assert written == [folder / "folds.parquet", folder / "pbo.parquet",
                       folder / "validation.json"]
    result("fail", folds=[4]).write(folder)
    got = contents(folder)
    assert sorted(got) == ["folds.parquet", "validation.json"]  # pbo.parquet went with the old
    assert got["folds.parquet"] == [4]
    assert got["validation.json"]["verdict"] == "fail"
    assert got["validation.json"]["tables"] == ["folds.parquet"]
    assert [p.name for p in folder.parent.iterdir()] == ["validation"]


@pytest.mark.parametrize("where", ["write", "swap"])
def test_a_failed_write_or_swap_keeps_the_previous_validation(tmp_path: Path, monkeypatch,
                                                              where: str) -> None:
    folder = tmp_path / "validation"
    result("pass", folds=[1, 2]).write(folder)
    before = contents(folder)
    real = os.replace

    def no_json(*_args, **_kwargs):
        raise OSError("write failed")

    def swap_fails(src, dst):  # after the old folder moved aside, the new one cannot move in
        if Path(dst) == folder and Path(src).name.startswith(".validation.tmp-"):
            raise OSError("rename failed")
        real(src, dst)

    if where == "write":
        monkeypatch.setattr(verdict, "write_text", no_json)
    else:
        monkeypatch.setattr(os, "replace", swap_fails)
    with pytest.raises(OSError, match=f"{'rename' if where == 'swap' else 'write'} failed"):
        result("fail", folds=[9]).write(folder)
    monkeypatch.undo()
    assert contents(folder) == before
    assert [p.name for p in tmp_path.iterdir()] == ["validation"]
