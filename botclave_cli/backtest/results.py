"""Run ids, run manifests and the result files under ``<out dir>/runs/<run id>/``.

The run id is the first 16 hex digits of sha256(config hash, data coverage, code version): the
same strategy parameters, fees, grid and data (range and row count) with the same code give the
same id, and the same files byte for byte; only ``manifest.json``'s ``created_at`` differs.
A run is written into a temporary folder beside the final one and swapped in at the end
(``data.atomic.atomic_dir``), so a folder named by a run id is always complete (``manifest.json``
says ``"status": "complete"``).
A rerun of the same id replaces the backtest's own files and keeps what other commands put in
the folder (``validation/`` from ``botclave validate``): it describes the same run, byte for byte.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl

import botclave_cli
from botclave_cli.backtest.backtester import BacktestResult
from botclave_cli.data.atomic import atomic_dir

RESULT_FILES = ("signals", "orders", "fills", "trades", "equity")
OWN_FILES = frozenset({*(f"{n}.parquet" for n in RESULT_FILES), "metrics.json", "manifest.json"})


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def config_hash(result: BacktestResult, strategy_name: str | None = None) -> str:
    """sha256 of everything that decides the simulation except the data itself."""
    payload = {
        "params": result.params.model_dump(mode="json"),
        "strategy": strategy_name or result.params.name,
        "symbol": result.symbol, "mode": result.mode,
        "tick_size": result.tick_size, "lot_size": result.lot_size,
        "fees": {"maker": result.fee_maker, "taker": result.fee_taker},
    }
    return hashlib.sha256(_canonical(payload)).hexdigest()


def coverage(result: BacktestResult) -> dict[str, Any]:
    """The data a run read: its span, rows and (book mode) the book samples its orders walked."""
    return {"start_us": result.coverage_start_us, "end_us": result.coverage_end_us,
            "rows": result.input_rows, "mode": result.mode, "book_samples": result.book_samples}


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit when the code runs from a clone."""
    root = Path(botclave_cli.__file__).resolve().parents[1]
    commit = ""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root,
                                capture_output=True, text=True, timeout=5,
                                check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{botclave_cli.__version__}+{commit}" if commit else botclave_cli.__version__


def run_id(result: BacktestResult, strategy_name: str | None = None) -> str:
    parts = {"config": config_hash(result, strategy_name), "coverage": coverage(result),
             "code": code_version()}
    return hashlib.sha256(_canonical(parts)).hexdigest()[:16]


def metrics_json(metrics: dict[str, Any]) -> str:
    return json.dumps(metrics, sort_keys=True, indent=2, allow_nan=False) + "\n"


def write_results(result: BacktestResult, out_dir: Path, *, extra: dict[str, Any] | None = None,
                  strategy_name: str | None = None, rid: str | None = None,
                  status: str = "complete") -> tuple[str, Path]:
    """Write the run's Parquet files, metrics.json and manifest.json; returns (run id, folder).
    ``rid``: a fixed run id (a paper session rewrites its own folder as it goes, ``status``
    "running" until it stops)."""
    rid = rid or run_id(result, strategy_name)
    final = Path(out_dir) / "runs" / rid
    with atomic_dir(final, keep=keep_others) as tmp:
        files = {}
        for name in RESULT_FILES:
            frame: pl.DataFrame = getattr(result, name)
            path = tmp / f"{name}.parquet"
            frame.write_parquet(path, compression="zstd", statistics=True)
            files[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        (tmp / "metrics.json").write_text(metrics_json(result.metrics), encoding="utf-8")
        files["metrics.json"] = hashlib.sha256((tmp / "metrics.json").read_bytes()).hexdigest()
        manifest = {
            "run_id": rid, "status": status,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "config_hash": config_hash(result, strategy_name),
            "code_version": code_version(), "coverage": coverage(result),
            "symbol": result.symbol, "params": result.params.model_dump(mode="json"),
            "final_equity": result.final_equity, "open_positions": result.open_positions,
            "notes": result.notes, "files": files, **(extra or {}),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n",
                                           encoding="utf-8")
    return rid, final


def keep_others(previous: Path, new: Path) -> None:
    """Copy into ``new`` what ``previous`` holds besides the backtest's own files (e.g. the
    ``validation/`` that ``botclave validate`` wrote); hidden entries are another writer's
    temporary files and stay behind. Copies, so ``previous`` stays whole until the swap."""
    for entry in sorted(previous.iterdir()):
        if entry.name in OWN_FILES or entry.name.startswith("."):
            continue
        if entry.is_dir():
            shutil.copytree(entry, new / entry.name)
        else:
            shutil.copy2(entry, new / entry.name)


def read_results(folder: Path) -> dict[str, Any]:
    """A written run back as frames plus its metrics and manifest."""
    out: dict[str, Any] = {n: pl.read_parquet(folder / f"{n}.parquet") for n in RESULT_FILES}
    out["metrics"] = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    out["manifest"] = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return out
