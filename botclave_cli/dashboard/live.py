"""A running session, read-only: the run folder a paper session rewrites as it goes
(``<runs>/paper-<session>/``, manifest status "running" then "stopped") and the order journal of
a live session (``<data dir>/sessions/<session>/journal.sqlite``, opened read-only).
No Streamlit here; the Live tab re-reads these every second.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from botclave_cli.dashboard import data as dd
from botclave_cli.errors import DataError

#: a running session whose folder was not rewritten for this long is shown as stale
STALE_S = 30.0


@dataclass
class PaperState:
    """What the Live tab shows of a paper session's run folder (money in quote currency)."""

    run_id: str
    status: str
    connection: str
    age_s: float
    equity: float | None
    pnl: float | None
    realized: float
    positions: pl.DataFrame
    open_orders: pl.DataFrame
    fills: pl.DataFrame
    manifest: dict[str, Any]


def paper_runs(runs_dir: Path) -> list[str]:
    index = dd.run_index(runs_dir)
    return index.filter(pl.col("paper"))["run_id"].to_list() if index.height else []


def connection_state(status: str, age_s: float, stale_s: float = STALE_S) -> str:
    """``live`` (running, rewritten within ``stale_s``), ``stale`` or ``stopped``."""
    if status != "running":
        return "stopped"
    return "live" if age_s <= stale_s else "stale"


def paper_state(runs_dir: Path, run_id: str, now: float | None = None,
                results: dict[str, Any] | None = None) -> PaperState:
    """The session's state from its folder (``results``: the folder already read, e.g. from
    a cache keyed by the manifest's modification time)."""
    folder = dd.run_folder(runs_dir, run_id)
    now = time.time() if now is None else now
    age = max(0.0, now - (folder / "manifest.json").stat().st_mtime)
    results = results if results is not None else dd.load_run(runs_dir, run_id)
    manifest = results["manifest"]
    status = str(manifest.get("status", "complete"))
    trades: pl.DataFrame = results["trades"]
    equity: pl.DataFrame = results["equity"]
    orders: pl.DataFrame = results["orders"]
    last = float(equity["equity"][-1]) if equity.height else None
    initial = dd.initial_equity(results)
    return PaperState(
        run_id=run_id, status=status, connection=connection_state(status, age), age_s=age,
        equity=last, pnl=None if last is None else last - initial,
        realized=float(trades["pnl"].drop_nulls().sum()) if trades.height else 0.0,
        positions=trades.filter(pl.col("exit_ts").is_null()) if trades.height else trades,
        open_orders=orders.filter(pl.col("status") == "active") if orders.height else orders,
        fills=results["fills"].sort("ts", descending=True).head(50), manifest=manifest)


def journals(data_dir: Path) -> list[Path]:
    """Every session's order journal under ``<data dir>/sessions/``."""
    base = data_dir / "sessions"
    return sorted(base.glob("*/journal.sqlite")) if base.exists() else []


def journal_orders(path: Path) -> pl.DataFrame:
    """The journal's orders as the journal folds them (read-only connection): client id,
    symbol, side, qty, price, status, filled, avg price, open."""
    from botclave_cli.exchange.orders.journal import COLUMNS, fold_orders

    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT seq, " + ", ".join(COLUMNS) +
                              " FROM events ORDER BY seq").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise DataError(f"{path}: not an order journal ({exc})") from None
    orders = fold_orders(dict(zip(("seq", *COLUMNS), row, strict=True)) for row in rows)
    out = [{"client_id": o.client_id, "symbol": o.symbol,
            "side": str(o.request.side) if o.request else None,
            "qty": o.request.qty if o.request else None,
            "price": o.request.price if o.request else None,
            "status": str(o.status.value), "filled": o.filled, "avg_price": o.avg_price,
            "open": o.is_open} for o in orders.values()]
    schema = {"client_id": pl.String, "symbol": pl.String, "side": pl.String,
              "qty": pl.Float64, "price": pl.Float64, "status": pl.String,
              "filled": pl.Float64, "avg_price": pl.Float64, "open": pl.Boolean}
    return pl.DataFrame(out, schema=schema)
