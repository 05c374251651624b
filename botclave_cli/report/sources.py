"""Turn a stored run into report sections: backtest results, the Monte Carlo fan of its trades,
validation results, market charts (candles, footprint, profile, CVD) and, when the store has book
data, the depth heatmap, walls and absorption zones.

A backtest run lives in ``<reports>/runs/<run id>/`` (``backtest.results``: Parquet frames,
``metrics.json``, ``manifest.json``; validation in its ``validation/`` folder). The functions
here read those files and add sections to a ``ReportInput``; the pipeline uses the same functions
right after its stages, so ``botclave report --run <id>`` and a pipeline run give the same report.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from botclave_cli.data.store import DatasetRef, Store, from_us, to_us
from botclave_cli.errors import DataError, UsageError
from botclave_cli.report.charts import Chart, ChartGenerator
from botclave_cli.report.index import report_dir, write_index
from botclave_cli.report.report import (
    ANNUALISED,
    ReportInput,
    Validation,
    key_metrics,
    short_window,
    write_report,
)

if TYPE_CHECKING:
    from botclave_cli.engine.depth.analyzer import DepthParams, DepthResult

RUNS_DIR = "runs"
VALIDATION_DIR = "validation"
TRADE_COLUMNS = ("trade_id", "side", "entry_ts", "exit_ts", "qty", "entry_price", "exit_price",
                 "fees", "pnl", "r_multiple", "exit_reason", "setup")
#: metrics shown first, in this order; the rest follow alphabetically
METRIC_ORDER = ("total_return", "annual_return", "sharpe", "sortino", "volatility",
                "max_drawdown", "max_drawdown_duration_s", "calmar", "trades", "win_rate",
                "profit_factor", "payoff_ratio", "expectancy", "avg_r", "exposure",
                "longest_losing_streak", "fees", "start_equity", "final_equity")


def runs_dir(reports_dir: Path) -> Path:
    return reports_dir / RUNS_DIR


def find_run(reports_dir: Path, run_id: str | None, latest: bool = False) -> Path:
    """The folder of a complete run: by id, or the newest by its manifest's ``created_at``."""
    base = runs_dir(reports_dir)
    if run_id is not None:
        folder = base / run_id
        if not (folder / "manifest.json").exists():
            raise UsageError(f"--run {run_id}: no run at {folder} (see {reports_dir}/index.html "
                             "or the runs/ folder)")
        return folder
    found = []
    for manifest in base.glob("*/manifest.json"):
        if manifest.parent.name.startswith("."):
            continue
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("status", "complete") == "complete":
            found.append((str(data.get("created_at", "")), manifest.parent.name, manifest.parent))
    if not found:
        raise DataError(f"{base}: no complete run yet (run botclave backtest or report "
                        "--pipeline first)")
    return max(found)[2]


def ordered_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    first = {k: metrics[k] for k in METRIC_ORDER if k in metrics}
    rest = {k: metrics[k] for k in sorted(metrics) if k not in first}
    return first | rest


def quote_base(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    return quote.split(":")[0] or "quote", base or "base"


def chart_timeframe(start: dt.datetime, end: dt.datetime) -> str:
    """Candle size that keeps a price chart readable (at most ~1,500 candles)."""
    minutes = (end - start) / dt.timedelta(minutes=1)
    for label, size in (("1m", 1), ("5m", 5), ("15m", 15), ("1h", 60), ("4h", 240)):
        if minutes / size <= 1500:
            return label
    return "1d"


def candles_chart(charts: ChartGenerator, trades: pl.DataFrame, symbol: str,
                  start: dt.datetime, end: dt.datetime) -> Chart:
    """Candlesticks with aggressor-split volume of ``trades`` (ts, price, qty, side)."""
    from botclave_cli.strategy.bars import bars_from_trades

    timeframe = chart_timeframe(start, end)
    bars = bars_from_trades(trades, timeframe).rename({"bar_start": "ts"})
    quote, base = quote_base(symbol)
    return charts.candlesticks(bars, title=f"{symbol} {len(bars)} {timeframe} candles and "
                               "aggressor volume", quote=quote, base=base)


def add_market(report: ReportInput, charts: ChartGenerator, store: Store,
               manifest: dict[str, Any], footprint_rows: int = 10, png_bars: int = 30) -> None:
    """Candles and the order-flow sections (footprint, profile, CVD) of the run's trades when
    the store still holds them (``dataset`` and coverage from the run manifest)."""
    from botclave_cli.engine.footprint.store import build_from_store
    from botclave_cli.report.orderflow import add_footprint, footprint_spec

    dataset, cov = manifest.get("dataset"), manifest.get("coverage") or {}
    trade_level = cov.get("mode") in ("trades", "trades+book")
    if not dataset or cov.get("start_us") is None or not trade_level:
        return
    parts = Path(dataset).parts
    if len(parts) != 4:
        return
    ref = DatasetRef(parts[0], parts[1], str(manifest.get("symbol")), parts[3])
    if not store.exists(ref):
        report.notes.append(f"market charts: {store.path(ref)} is not in this data dir")
        return
    start, end = from_us(cov["start_us"]), from_us(cov["end_us"])
    trades = store.scan(ref, start, end).select("ts", "price", "qty", "side").collect()
    if not trades.height:
        return
    report.charts.append(candles_chart(charts, trades, ref.symbol, start, end))
    bar = ((manifest.get("params") or {}).get("bars") or {}).get("timeframe", "1m")
    spec = footprint_spec(store.manifest(ref), bar, footprint_rows)
    built = build_from_store(store, ref, spec, start, end, write=False, keep=True)
    if built.result is not None and built.result.bars.height:
        add_footprint(report, charts, built.result, png_bars, *quote_base(ref.symbol))
    add_stored_depth(report, store, ref.exchange, ref.market, ref.symbol, start, end)


def has_book(store: Store, exchange: str, market: str, symbol: str, start: dt.datetime,
             end: dt.datetime) -> bool:
    """True when the store holds book diffs inside ``[start, end)`` and a snapshot dataset to
    start the book from (the replay needs both)."""
    diff = DatasetRef(exchange, market, symbol, "book_diff")
    snap = DatasetRef(exchange, market, symbol, "book_snapshot")
    if not (store.exists(diff) and store.exists(snap)):
        return False
    return store.scan(diff, start, end).select("ts").head(1).collect().height > 0


def book_depth(store: Store, exchange: str, market: str, symbol: str, start_us: int,
               end_us: int, params: DepthParams | None = None) -> DepthResult:
    """Replay the stored book over ``[start_us, end_us)`` and run the depth analytics on it
    (engine.depth: series, walls, absorption zones); a window without a valid book is a
    DataError. The pipeline's depth stage and ``report --run`` both start here."""
    from botclave_cli.engine.depth.analyzer import analyze_book
    from botclave_cli.engine.depth.store import load_book

    book = load_book(store, exchange, market, symbol, start_us, end_us)
    result = analyze_book(book["book_snapshot"], book["book_diff"], book["trades"], market,
                          params, book["tick_size"], start_us=start_us, end_us=end_us)
    if result.series.is_empty():
        raise DataError(f"{symbol}: no valid book in the window (counts: {result.counts})")
    return result


def add_depth(report: ReportInput, result: DepthResult, symbol: str, interval_us: int
              ) -> tuple[int, int]:
    """The depth heatmap (trades as bubbles) and the walls / absorption-zone findings of a depth
    run; returns (walls, zones) found (the findings list at most 50 of each)."""
    from botclave_cli.report.heatmap import depth_heatmap

    samples, trades, note = thin_for_heatmap(result.samples, result.trades, interval_us)
    report.charts.append(depth_heatmap(samples, trades, title=f"{symbol} depth heatmap ({note})"))
    walls = [dict(vars(w)) for w in result.walls]
    zones = [dict(vars(z)) for z in result.zones]
    report.findings += [("Liquidity walls (book)", walls[:50]),
                        ("Absorption zones (book + trades)", zones[:50])]
    return len(walls), len(zones)


def add_stored_depth(report: ReportInput, store: Store, exchange: str, market: str, symbol: str,
                     start: dt.datetime, end: dt.datetime) -> None:
    """``add_depth`` for a stored run's window (default DepthParams: 1 s samples, as the
    pipeline's default) when the store has book data there; otherwise a note says why not."""
    from botclave_cli.engine.depth.analyzer import DepthParams

    if not has_book(store, exchange, market, symbol, start, end):
        folder = store.path(DatasetRef(exchange, market, symbol, "book_diff"))
        report.notes.append(f"depth heatmap, walls and absorption zones: no book data "
                            f"(book_snapshot + book_diff) for the run's window at {folder}; "
                            "record or import a capture to get them")
        return
    params = DepthParams()
    try:
        result = book_depth(store, exchange, market, symbol, to_us(start), to_us(end), params)
    except DataError as exc:  # e.g. no snapshot before the window: the rest of the report stands
        report.notes.append(f"depth heatmap, walls and absorption zones: {exc.message}")
        return
    add_depth(report, result, symbol, params.interval_us)


def thin_for_heatmap(samples: pl.DataFrame, trades: pl.DataFrame | None, interval_us: int,
                     columns: int = 1440, bubbles: int = 5000
                     ) -> tuple[pl.DataFrame, pl.DataFrame | None, str]:
    """At most ``columns`` sample times (every k-th interval) and the ``bubbles`` largest trades,
    so a day's heatmap renders in seconds and shows the whole day rather than its last trades."""
    ts = pl.col("ts").dt.epoch("us")
    first, last = samples.select(ts.min()).item(), samples.select(ts.max()).item()
    k = max(1, math.ceil((last - first) / interval_us / columns))
    thinned = samples.filter(((ts - first) // interval_us) % k == 0)
    note = f"book every {k * interval_us / 1e6:g} s"
    if trades is not None and trades.height > bubbles:
        trades = trades.sort("qty", descending=True, maintain_order=True).head(bubbles).sort("ts")
        note += f", the {bubbles:,} largest trades"
    return thinned, trades, note


def add_backtest(report: ReportInput, charts: ChartGenerator, results: dict[str, Any]) -> None:
    """Metrics, equity and drawdown charts, trade list and run manifest of a backtest run."""
    manifest = results["manifest"]
    quote, _ = quote_base(str(manifest.get("symbol", "")))
    equity: pl.DataFrame = results["equity"]
    trades: pl.DataFrame = results["trades"]
    report.metrics = ordered_metrics(results["metrics"])
    if equity.height:
        closed = trades.filter(pl.col("exit_ts").is_not_null()) if trades.height else trades
        report.charts.append(charts.equity(
            equity["ts"], equity["equity"],
            closed["exit_ts"] if closed.height else [], closed["pnl"] if closed.height else [],
            title=f"Equity curve ({trades.height} trades)", quote=quote))
        report.charts.append(charts.drawdown(equity["ts"], equity["equity"]))
    report.trades = trades.select([c for c in TRADE_COLUMNS if c in trades.columns])
    report.manifest = {**manifest, **report.manifest}
    report.summary.update({"run id": manifest.get("run_id"),
                           "strategy": manifest.get("params", {}).get("name"),
                           "mode": manifest.get("coverage", {}).get("mode")})


def _table(folder: Path, name: str) -> pl.DataFrame | None:
    path = folder / f"{name}.parquet"
    return pl.read_parquet(path) if path.exists() else None


def _rows(frame: pl.DataFrame | None, limit: int = 200) -> list[dict[str, Any]]:
    return frame.head(limit).to_dicts() if frame is not None else []


def add_validation(report: ReportInput, charts: ChartGenerator, folder: Path,
                   initial_equity: float | None = None, quote: str = "quote") -> None:
    """Verdict, reasons, figures, fold table and the walk-forward / Monte Carlo charts."""
    path = folder / "validation.json"
    if not path.exists():
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    tables: list[tuple[str, list[dict[str, Any]]]] = []
    figures = data.get("figures") or {}
    folds = _table(folder, "walk_forward_folds")
    if figures:
        flag = oos_window(data, folds)
        tables.append(("Figures checked against the thresholds",
                       [{"figure": k, "value": v,
                         "note": flag if k in ANNUALISED and flag else ""}
                        for k, v in sorted(figures.items())]))
    if folds is not None and folds.height:
        tables.append(("Walk-forward folds", _rows(folds)))
        windows = [{k: dt.datetime.fromisoformat(str(row[k])) for k in
                    ("is_start", "is_end", "oos_start", "oos_end")} for row in folds.to_dicts()
                   if all(row.get(k) for k in ("is_start", "is_end", "oos_start", "oos_end"))]
        oos = _table(folder, "oos_equity")
        if windows:
            # the stitched equity is a growth multiple (1.0 = start): shown in quote currency
            scale = initial_equity if initial_equity else 1.0
            report.charts.append(charts.walk_forward(
                windows, oos["ts"] if oos is not None else [],
                oos["equity"] * scale if oos is not None else [],
                quote=quote if initial_equity else "x start"))
    section = data.get("monte_carlo") or {}
    for path in sorted(folder.glob("monte_carlo_*.parquet")):
        mc = pl.read_parquet(path)
        method = path.stem.removeprefix("monte_carlo_")
        found = section.get(method)
        info: dict[str, Any] = found if isinstance(found, dict) else section
        if mc.height == 0 or "max_drawdown" not in mc.columns:
            continue
        dd = np.abs(mc["max_drawdown"].to_numpy().astype(float))
        dd_pct = dd * 100 if np.nanmax(dd) <= 1 else dd  # fractions in the tables
        ruin = info.get("ruin_drawdown")
        label = info.get("method") or method
        chart = charts.drawdown_distribution(
            dd_pct, ruin_pct=ruin * 100 if ruin is not None and ruin <= 1 else ruin,
            title=f"Monte Carlo max drawdown ({mc.height} runs, {label}, "
                  f"{section.get('source', 'validation')})")
        chart.name = f"drawdown_distribution_{method}"
        report.charts.append(chart)
    for name in ("oos", "pbo"):
        if isinstance(data.get(name), dict):
            flat = {k: v for k, v in data[name].items() if not isinstance(v, dict | list)}
            if flat:
                tables.append((name.upper() if name == "pbo" else "Holdout out-of-sample",
                               [flat]))
    report.validation = Validation(verdict=str(data.get("verdict", "n/a")),
                                   reasons=list(data.get("reasons", [])), tables=tables,
                                   checks=list(data.get("checks", [])))


def oos_window(data: dict[str, Any], folds: pl.DataFrame | None) -> str | None:
    """``short_window`` of the out-of-sample returns the annualised validation figures
    (oos_sharpe) come from: the stitched walk-forward test windows, else the holdout's."""
    from botclave_cli.strategy.params import bar_us

    cfg = data.get("config") or {}
    if folds is not None and folds.height and "oos_bars" in folds.columns:
        bars = int(folds["oos_bars"].sum())
    elif isinstance((data.get("oos") or {}).get("windows"), dict):
        w = data["oos"]["windows"]
        span = dt.datetime.fromisoformat(w["oos_end"]) - dt.datetime.fromisoformat(w["oos_start"])
        bars = int(span / dt.timedelta(microseconds=bar_us(str(cfg.get("bar", "1m")))))
    else:
        return None
    days = bars * bar_us(str(cfg.get("bar", "1m"))) / 86_400e6
    return short_window(bars, days)


def monte_carlo_fan_settings(folder: Path) -> tuple[int, int]:
    """(runs, seed) of the Monte Carlo fan: the runs per method and the seed the validation in
    ``folder`` drew with (its ``validation.json``), else the validation config's defaults."""
    from botclave_cli.validate.config import MonteCarloConfig

    default = MonteCarloConfig()
    path = folder / "validation.json"
    section = (json.loads(path.read_text(encoding="utf-8")).get("monte_carlo") or {}
               if path.exists() else {})
    runs = [m["runs"] for m in (section.get("reshuffle"), section.get("bootstrap"))
            if isinstance(m, dict) and isinstance(m.get("runs"), int)]
    return (runs[0] if runs else default.runs), section.get("seed", default.seed)


def add_monte_carlo_fan(report: ReportInput, charts: ChartGenerator, trades: pl.DataFrame,
                        initial_equity: float, runs: int, seed: int, quote: str = "quote"
                        ) -> None:
    """The Monte Carlo fan of a run: its closed trades' P&L (quote currency) in ``runs`` random
    orders (``validate.montecarlo.reshuffled_paths``, ``numpy.random.default_rng(seed)``) as
    equity paths from ``initial_equity``. The pipeline's validate stage and ``report --run``
    both draw it here; with fewer than 2 closed trades a note says why there is none."""
    from botclave_cli.validate.montecarlo import reshuffled_paths

    pnl = (trades["pnl"].drop_nulls().to_numpy() if "pnl" in trades.columns
           else np.zeros(0))
    if pnl.size < 2:
        report.notes.append(f"Monte Carlo fan: the run has {pnl.size} closed trade(s); "
                            "reshuffling their order needs at least 2")
        return
    paths = initial_equity + np.cumsum(reshuffled_paths(
        pnl, runs, np.random.default_rng(seed)), axis=1)
    report.charts.append(charts.monte_carlo_fan(
        paths, initial_equity=initial_equity, quote=quote,
        title=f"Trade-order reshuffles of the run's {pnl.size} closed trades (seed {seed})"))


@dataclass
class WrittenReport:
    run_id: str
    report: Path
    metrics: dict[str, Any]
    verdict: str | None

    def summary_line(self) -> str:
        parts = [f"report {self.report}"]
        parts += [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                  for k, v in key_metrics(self.metrics).items()]
        return "; ".join([*parts, f"verdict {self.verdict or 'n/a'}"])


def report_for_run(reports_dir: Path, run_id: str | None, latest: bool = False,
                   charts: ChartGenerator | None = None,
                   store: Store | None = None) -> WrittenReport:
    """(Re)write the report of a stored backtest run and the index; see the module doc."""
    from botclave_cli.backtest.results import read_results

    folder = find_run(reports_dir, run_id, latest)
    gen = charts or ChartGenerator()
    results = read_results(folder)
    manifest = results["manifest"]
    report = ReportInput(run_id=folder.name, title=f"{manifest.get('symbol', '')} backtest "
                         f"{folder.name}", summary={"symbol": manifest.get("symbol"),
                                                    "dataset": manifest.get("dataset")})
    cov = manifest.get("coverage", {})
    if cov.get("start_us") is not None:
        report.coverage = [{"dataset": manifest.get("dataset"), "rows": cov.get("rows"),
                            "from": dt.datetime.fromtimestamp(cov["start_us"] / 1e6, dt.UTC),
                            "to": dt.datetime.fromtimestamp(cov["end_us"] / 1e6, dt.UTC)}]
    if store is not None:
        add_market(report, gen, store, manifest)
    add_backtest(report, gen, results)
    params = manifest.get("params") or {}
    initial = (params.get("execution") or {}).get("initial_equity")
    quote = quote_base(str(manifest.get("symbol", "")))[0]
    validation = folder / VALIDATION_DIR
    runs, seed = monte_carlo_fan_settings(validation)
    add_monte_carlo_fan(report, gen, results["trades"], float(
        initial if initial is not None else results["metrics"]["start_equity"]), runs, seed,
        quote)
    add_validation(report, gen, validation, initial_equity=initial, quote=quote)
    if not any(validation.glob("monte_carlo_*.parquet")):
        report.notes.append(f"Monte Carlo drawdown distribution: no Monte Carlo results in "
                            f"{validation} (botclave validate monte-carlo or all writes them)")
    files = write_report(report, report_dir(reports_dir, folder.name))
    write_index(reports_dir)
    return WrittenReport(folder.name, files.html, report.metrics,
                         report.validation.verdict if report.validation else None)
