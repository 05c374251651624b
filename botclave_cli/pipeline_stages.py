"""The pipeline's stages: each calls one layer's library functions and adds to the report.

A stage takes the pipeline ``Context`` and returns a ``StageResult``; it reads what earlier stages
left in ``ctx.state`` and adds charts, metrics, tables and notes to ``ctx.report``. A stage whose
layer is missing from this build says so (status ``unavailable``) instead of pretending.
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
from types import ModuleType
from typing import TYPE_CHECKING, Any

import polars as pl

from botclave_cli.data.manifest import Manifest
from botclave_cli.data.store import DatasetRef, from_us, symbol_folder, to_us
from botclave_cli.errors import DataError
from botclave_cli.logs import get_logger

if TYPE_CHECKING:
    from botclave_cli.pipeline import Context, StageResult

log = get_logger(__name__)
TRADE_KINDS = ("trades", "agg_trades")


def _result(name: str, status: str, detail: str = "") -> StageResult:
    from botclave_cli.pipeline import StageResult

    return StageResult(name=name, status=status, detail=detail)  # type: ignore[arg-type]


def optional_module(name: str) -> ModuleType | None:
    """Import a layer's module, or None when this build does not have it yet."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            return None
        raise


def _ref(ctx: Context, kind: str) -> DatasetRef:
    cfg = ctx.cfg
    return DatasetRef(cfg.exchange, cfg.market, cfg.symbol, kind)


def trades_ref(ctx: Context) -> DatasetRef | None:
    """The trade dataset the engine reads: raw ``trades`` where present, else ``agg_trades``."""
    for kind in TRADE_KINDS:
        ref = _ref(ctx, kind)
        if ctx.store.exists(ref):
            return ref
    return None


# data ------------------------------------------------------------------------------------------
def data_stage(ctx: Context) -> StageResult:
    """Generate the synthetic market, or fetch from the exchange, when the window is missing."""
    cfg, lo, hi = ctx.cfg, to_us(ctx.start), to_us(ctx.end)
    ref = trades_ref(ctx)
    manifest = ctx.store.manifest(ref) if ref else None
    if manifest is not None and manifest.covers(lo, hi):
        return _result("data", "ok", f"using stored {ref.relpath()}")  # type: ignore[union-attr]
    if cfg.exchange == "synth":
        return _generate_synth(ctx)
    if not cfg.fetch.enabled:
        span = _fmt_span(lo, hi)
        raise DataError(f"{ctx.store.root}: no {cfg.symbol} trades cover {span} UTC and fetch "
                        "is disabled in the pipeline config")
    return _fetch(ctx)


def _generate_synth(ctx: Context) -> StageResult:
    synth = optional_module("botclave_cli.data.synth")
    if synth is None:
        raise DataError("exchange 'synth' needs botclave_cli.data.synth, missing from this build")
    days = max(1, math.ceil((ctx.end - ctx.start) / dt.timedelta(days=1)))
    synth_cfg = synth.SynthConfig(symbol=ctx.cfg.symbol, start=ctx.start.date(), days=days,
                                  seed=ctx.cfg.synth.seed,
                                  trades_per_day=ctx.cfg.synth.trades_per_day)
    synth.write_synth(ctx.store, synth_cfg, progress=ctx.progress)
    return _result("data", "ok", f"generated {days} day(s) of synthetic market")


def _fetch(ctx: Context) -> StageResult:
    fetcher = optional_module("botclave_cli.exchange.fetch")
    if fetcher is None or not hasattr(fetcher, "fetch_for_pipeline"):
        raise DataError(f"no stored {ctx.cfg.symbol} trades for the window, and fetching from "
                        f"{ctx.cfg.exchange} is not available in this build")
    detail = fetcher.fetch_for_pipeline(ctx.store, ctx.cfg, ctx.start, ctx.end, ctx.progress)
    return _result("data", "ok", str(detail))


# coverage and market charts -------------------------------------------------------------------
def _clip(manifest: Manifest, lo: int, hi: int) -> list[tuple[int, int]]:
    return [(max(i.start_us, lo), min(i.end_us, hi)) for i in manifest.coverage
            if i.end_us > lo and i.start_us < hi]


def _fmt_span(start_us: int, end_us: int) -> str:
    return f"{from_us(start_us):%Y-%m-%d %H:%M:%S} .. {from_us(end_us):%Y-%m-%d %H:%M:%S}"


def coverage_stage(ctx: Context) -> StageResult:
    """Coverage and gaps of every dataset of the symbol inside the window; exit 3 on a gap in the
    trades unless ``allow_gaps``."""
    lo, hi = to_us(ctx.start), to_us(ctx.end)
    want = (ctx.cfg.exchange, ctx.cfg.market, symbol_folder(ctx.cfg.symbol))
    rows, problems, kinds = [], [], set()
    for ref in ctx.store.datasets():
        if (ref.exchange, ref.market, symbol_folder(ref.symbol)) != want:
            continue
        manifest = ctx.store.manifest(ref)
        if manifest is None:
            continue
        kinds.add(ref.kind)
        spans = _clip(manifest, lo, hi)
        gaps = [g for g in manifest.gaps if g.kind != "trade_id" and g.end >= lo and g.start < hi]
        id_gaps = [g for g in manifest.gaps if g.kind == "trade_id"]
        uncovered = manifest.uncovered(lo, hi)
        rows.append({
            "dataset": str(ref.relpath()), "source": manifest.source,
            "coverage in window": ", ".join(_fmt_span(a, b) for a, b in spans) or "none",
            "uncovered": ", ".join(_fmt_span(i.start_us, i.end_us) for i in uncovered),
            "gaps": len(gaps) + len(id_gaps),
            "gap detail": "; ".join(g.detail for g in (gaps + id_gaps)[:3]),
        })
        if ref.kind in TRADE_KINDS and (uncovered or gaps or id_gaps):
            what = (f"uncovered {rows[-1]['uncovered']}" if uncovered
                    else f"{len(gaps) + len(id_gaps)} gap(s): {rows[-1]['gap detail']}")
            problems.append(f"{ref.relpath()}: {what}")
    ctx.report.coverage = rows
    ctx.state["coverage_key"] = [{k: r[k] for k in ("dataset", "coverage in window")}
                                 for r in rows]
    if problems and not ctx.cfg.allow_gaps:
        raise DataError(problems[0] + " (set allow_gaps: true to report anyway)")
    if not kinds & set(TRADE_KINDS):
        raise DataError(f"{ctx.store.root}: no {ctx.cfg.symbol} trades for the window")
    return _result("coverage", "ok" if not problems else "skipped",
                   "; ".join(problems) if problems else f"{len(rows)} dataset(s)")


def load_trades(ctx: Context, columns: tuple[str, ...] = ("ts", "price", "qty", "side")
                ) -> pl.DataFrame:
    """The window's trades (cached in ``ctx.state`` for later stages)."""
    if "trades" not in ctx.state:
        ref = trades_ref(ctx)
        if ref is None:
            raise DataError(f"{ctx.store.root}: no {ctx.cfg.symbol} trades for the window")
        ctx.state["trades_ref"] = ref
        ctx.state["trades"] = (ctx.store.scan(ref, ctx.start, ctx.end).select(columns)
                               .sort("ts").collect())
    return ctx.state["trades"]


def chart_timeframe(start: dt.datetime, end: dt.datetime) -> str:
    """Candle size that keeps a price chart readable (at most ~1,500 candles)."""
    minutes = (end - start) / dt.timedelta(minutes=1)
    for label, size in (("1m", 1), ("5m", 5), ("15m", 15), ("1h", 60), ("4h", 240)):
        if minutes / size <= 1500:
            return label
    return "1d"


def market_stage(ctx: Context) -> StageResult:
    """Candlesticks with buy/sell volume from the window's trades."""
    from botclave_cli.strategy.bars import bars_from_trades

    trades = load_trades(ctx)
    if trades.height == 0:
        raise DataError(f"no {ctx.cfg.symbol} trades between {ctx.start} and {ctx.end}")
    timeframe = chart_timeframe(ctx.start, ctx.end)
    bars = bars_from_trades(trades, timeframe).rename({"bar_start": "ts"})
    base, _, quote = ctx.cfg.symbol.partition("/")
    quote = quote.split(":")[0]
    ctx.report.charts.append(ctx.charts.candlesticks(
        bars, title=f"{ctx.cfg.symbol} {timeframe} candles and aggressor volume", quote=quote,
        base=base))
    ctx.report.summary.update({"trades in window": trades.height,
                               "first trade": trades["ts"][0], "last trade": trades["ts"][-1]})
    ctx.state["units"] = (quote, base)
    return _result("market", "ok", f"{bars.height} {timeframe} candles")


STAGES: list[tuple[str, Any]] = [
    ("data", data_stage),
    ("coverage", coverage_stage),
    ("market", market_stage),
]


# backtest --------------------------------------------------------------------------------------
def backtest_stage(ctx: Context) -> StageResult:
    """Run the strategy over the window's trades, save the run, add its report sections."""
    if not ctx.cfg.backtest.enabled:
        return _result("backtest", "skipped", "disabled in the pipeline config")
    from botclave_cli.backtest.backtester import Backtester
    from botclave_cli.backtest.results import read_results, write_results
    from botclave_cli.config import load_exchange_config, load_model
    from botclave_cli.report.sources import add_backtest
    from botclave_cli.strategy.params import StrategyParams, params_with_overrides

    cfg = ctx.cfg
    params = (load_model(cfg.strategy_config, StrategyParams) if cfg.strategy_config.exists()
              else StrategyParams())
    if cfg.backtest.set:
        params = params_with_overrides(params, cfg.backtest.set)
    exchange_cfg = load_exchange_config(cfg.exchange_config if cfg.exchange_config.exists()
                                        else None)
    trades = load_trades(ctx)
    ref = ctx.state["trades_ref"]
    manifest = ctx.store.manifest(ref)
    tester = Backtester(params, exchange_cfg, symbol=cfg.symbol,
                        tick_size=manifest.tick_size if manifest else None,
                        lot_size=manifest.lot_size if manifest else None)
    result = tester.run(trades, progress=ctx.progress)
    run_id, folder = write_results(result, cfg.reports_dir, extra={
        "dataset": str(ref), "exchange": cfg.exchange, "market": cfg.market,
        "pipeline": cfg.title})
    ctx.run_id = run_id
    ctx.state.update(backtest=result, run_folder=folder, strategy_params=params)
    ctx.state.setdefault("configs", {})["strategy"] = params.model_dump(mode="json")
    add_backtest(ctx.report, ctx.charts, read_results(folder))
    ctx.report.notes += result.notes
    trades_n = result.metrics.get("trades", 0)
    return _result("backtest", "ok", f"run {run_id}: {trades_n} trade(s)")


STAGES.append(("backtest", backtest_stage))
