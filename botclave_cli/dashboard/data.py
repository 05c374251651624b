"""What the dashboard reads: the store and the run folders, in place, through the library.

Nothing here imports Streamlit, so every function runs (and is tested) from plain Python; the
app caches them. A selection without data raises ``DataError`` with a message that names the
missing dataset and the command that fetches it (the page shows it as one line).
Times are UTC; ``*_us`` values are microseconds since the epoch.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from botclave_cli.data.store import TRADE_KINDS, DatasetRef, Store, find_trades, from_us
from botclave_cli.errors import DataError

RUNS_DIR_ENV = "BOTCLAVE_DASHBOARD_RUNS_DIR"
DATA_DIR_ENV = "BOTCLAVE_DATA_DIR"


@dataclass(frozen=True)
class Sources:
    """Where the dashboard reads from: the dataset store and the folder of run folders
    (``<out dir>/runs``, as ``botclave backtest --out-dir`` writes)."""

    data_dir: Path
    runs_dir: Path

    @classmethod
    def from_env(cls) -> Sources:
        data = Path(os.environ.get(DATA_DIR_ENV, "datasets"))
        runs = Path(os.environ.get(RUNS_DIR_ENV, "reports/runs"))
        return cls(data, runs)

    @property
    def store(self) -> Store:
        return Store(self.data_dir)

    @property
    def out_dir(self) -> Path:
        """The ``--out-dir`` a backtest writes into so that its run lands in ``runs_dir``."""
        return self.runs_dir.parent


@dataclass(frozen=True)
class Market:
    """One symbol with stored trades: exchange, market, symbol and its UTC day span."""

    exchange: str
    market: str
    symbol: str
    first_day: dt.date
    last_day: dt.date

    @property
    def label(self) -> str:
        return f"{self.exchange}/{self.market}/{self.symbol}"


def fetch_hint(exchange: str, market: str, symbol: str, kind: str = "trades") -> str:
    """The command that puts ``kind`` for the symbol into the store."""
    if exchange == "synth":
        return f"botclave synth --symbol {symbol}"
    if kind in ("book_snapshot", "book_diff"):
        return f"botclave record --symbol {symbol} --market {market} (or botclave import capture)"
    if kind.startswith("ohlcv"):
        return f"botclave fetch ohlcv --exchange {exchange} --market {market} --symbol {symbol}"
    return f"botclave fetch trades --exchange {exchange} --market {market} --symbol {symbol}"


def markets(store: Store) -> list[Market]:
    """Every (exchange, market, symbol) with a trades or agg_trades dataset, sorted."""
    found: dict[tuple[str, str, str], tuple[str, str]] = {}
    for ref in store.datasets():
        if ref.kind not in TRADE_KINDS or ref.levels:
            continue
        days = list(store.partition_files(ref))
        if not days:
            continue
        key = (ref.exchange, ref.market, ref.symbol)
        lo, hi = found.get(key, (days[0], days[-1]))
        found[key] = (min(lo, days[0]), max(hi, days[-1]))
    return [Market(*key, dt.date.fromisoformat(lo), dt.date.fromisoformat(hi))
            for key, (lo, hi) in sorted(found.items()) if lo != "unknown"]


def no_markets_message(store: Store) -> str:
    return (f"no trades or agg_trades dataset under {store.root}: fetch some with "
            "botclave fetch trades --symbol BTC/USDT (or botclave synth for the synthetic "
            "market), then reload")


def trades_ref(store: Store, exchange: str, market: str, symbol: str) -> DatasetRef:
    """The trades dataset of a symbol; DataError naming the dataset and the fetch command."""
    try:
        return find_trades(store, exchange, market, symbol)
    except DataError as exc:
        raise DataError(f"{exc.message}: run {fetch_hint(exchange, market, symbol)}") from None


def day_range(day: dt.date, days: int = 1) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=days)


def load_trades(store: Store, ref: DatasetRef, start: dt.datetime, end: dt.datetime
                ) -> pl.DataFrame:
    """ts, price, qty, side of the trades in [start, end); DataError when there are none."""
    df = store.scan(ref, start, end).select("ts", "price", "qty", "side").sort("ts").collect()
    if not df.height:
        raise DataError(f"no trades in {store.path(ref)} for [{start:%Y-%m-%d %H:%M}, "
                        f"{end:%Y-%m-%d %H:%M}): run "
                        f"{fetch_hint(ref.exchange, ref.market, ref.symbol)} --from "
                        f"{start:%Y-%m-%d} --to {end:%Y-%m-%d}")
    return df


# ---- run folders ---------------------------------------------------------------------------

def _json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def run_index(runs_dir: Path) -> pl.DataFrame:
    """One row per run folder (newest first): id, status, created, symbol, strategy, mode,
    trades, total return, Sharpe, max drawdown, final equity, verdict, paper."""
    rows = []
    for manifest_path in sorted(runs_dir.glob("*/manifest.json")) if runs_dir.exists() else []:
        folder = manifest_path.parent
        if folder.name.startswith("."):
            continue
        m = _json(manifest_path)
        if m is None:
            continue
        metrics = _json(folder / "metrics.json") or {}
        verdict = (_json(folder / "validation" / "validation.json") or {}).get("verdict")
        rows.append({
            "run_id": folder.name, "status": m.get("status", "complete"),
            "created_at": str(m.get("created_at", "")), "symbol": m.get("symbol"),
            "strategy": (m.get("params") or {}).get("name"),
            "mode": (m.get("coverage") or {}).get("mode"), "trades": metrics.get("trades"),
            "total_return": metrics.get("total_return"), "sharpe": metrics.get("sharpe"),
            "max_drawdown": metrics.get("max_drawdown"), "final_equity": m.get("final_equity"),
            "verdict": verdict, "paper": bool(m.get("paper")) or folder.name.startswith("paper-"),
        })
    schema = {"run_id": pl.String, "status": pl.String, "created_at": pl.String,
              "symbol": pl.String, "strategy": pl.String, "mode": pl.String,
              "trades": pl.Int64, "total_return": pl.Float64, "sharpe": pl.Float64,
              "max_drawdown": pl.Float64, "final_equity": pl.Float64, "verdict": pl.String,
              "paper": pl.Boolean}
    return pl.DataFrame(rows, schema=schema).sort(["created_at", "run_id"], descending=True)


def no_runs_message(runs_dir: Path) -> str:
    return (f"no run folder in {runs_dir}: run botclave backtest --exchange synth --out-dir "
            f"{runs_dir.parent} (or the Configuration tab's backtest), then reload")


def run_folder(runs_dir: Path, run_id: str) -> Path:
    folder = runs_dir / run_id
    if not (folder / "manifest.json").exists():
        raise DataError(f"no run {run_id!r} in {runs_dir}: {no_runs_message(runs_dir)}")
    return folder


def load_run(runs_dir: Path, run_id: str) -> dict[str, Any]:
    """A run's frames (signals, orders, fills, trades, equity), metrics and manifest."""
    from botclave_cli.backtest.results import read_results

    folder = run_folder(runs_dir, run_id)
    try:
        return read_results(folder)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"{folder}: the run folder is incomplete or damaged ({exc}); rerun "
                        "the backtest that wrote it") from None


def run_window(manifest: dict[str, Any]) -> tuple[dt.datetime, dt.datetime] | None:
    cov = manifest.get("coverage") or {}
    if cov.get("start_us") is None or cov.get("end_us") is None:
        return None
    return from_us(int(cov["start_us"])), from_us(int(cov["end_us"]))


def run_dataset(manifest: dict[str, Any]) -> DatasetRef | None:
    """The dataset a run read (its manifest's ``dataset``: exchange/market/folder/kind)."""
    parts = Path(str(manifest.get("dataset") or "")).parts
    if len(parts) != 4:
        return None
    return DatasetRef(parts[0], parts[1], str(manifest.get("symbol")), parts[3])


def validation(folder: Path) -> dict[str, Any] | None:
    """``validation/validation.json`` plus its tables (``tables``: name -> frame), or None."""
    base = folder / "validation"
    data = _json(base / "validation.json")
    if data is None:
        return None
    data["frames"] = {p.stem: pl.read_parquet(p) for p in sorted(base.glob("*.parquet"))}
    return data


def initial_equity(results: dict[str, Any]) -> float:
    params = results["manifest"].get("params") or {}
    initial = (params.get("execution") or {}).get("initial_equity")
    if initial is not None:
        return float(initial)
    return float(results["metrics"].get("start_equity", 0.0))
