"""The pipeline's stages: each calls one layer's library functions and adds to the report.

A stage takes the pipeline ``Context`` and returns a ``StageResult``; it reads what earlier stages
left in ``ctx.state`` and adds charts, metrics, tables and notes to ``ctx.report``. A stage whose
layer is missing from this build says so (status ``unavailable``) instead of pretending.
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl

from botclave_cli.data.manifest import Manifest
from botclave_cli.data.store import (
    TRADE_KINDS,
    DatasetRef,
    find_trades,
    from_us,
    symbol_folder,
    to_us,
)
from botclave_cli.errors import DataError
from botclave_cli.logs import get_logger
from botclave_cli.pipeline.context import Context, StageResult

log = get_logger(__name__)


def _result(name: str, status: str, detail: str = "") -> StageResult:
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
    """The trade dataset the engine reads (``find_trades``), None when the store has none."""
    try:
        return find_trades(ctx.store, ctx.cfg.exchange, ctx.cfg.market, ctx.cfg.symbol)
    except DataError:
        return None


# data ------------------------------------------------------------------------------------------
def data_stage(ctx: Context) -> StageResult:
    """Generate the synthetic market, or fetch from the exchange, when the window is missing."""
    cfg, lo, hi = ctx.cfg, to_us(ctx.start), to_us(ctx.end)
    ref = trades_ref(ctx)
    manifest = ctx.store.manifest(ref) if ref else None
    stored = manifest.params.get("synth") if manifest is not None else None
    stale_synth = (cfg.exchange == "synth" and isinstance(stored, dict)
                   and _settings(stored) != _settings(_synth_config(ctx).model_dump(mode="json")))
    if manifest is not None and manifest.covers(lo, hi) and not stale_synth:
        return _result("data", "ok", f"using stored {ref.relpath()}")  # type: ignore[union-attr]
    if cfg.exchange == "synth":
        return _generate_synth(ctx)
    if not cfg.fetch.enabled:
        span = _fmt_span(lo, hi)
        raise DataError(f"{ctx.store.root}: no {cfg.symbol} trades cover {span} UTC and fetch "
                        "is disabled in the pipeline config")
    return _fetch(ctx)


def _synth_config(ctx: Context) -> Any:
    """The SynthConfig of the pipeline's window and ``synth`` settings."""
    synth = optional_module("botclave_cli.data.synth")
    if synth is None:
        raise DataError("exchange 'synth' needs botclave_cli.data.synth, missing from this build")
    days = max(1, math.ceil((ctx.end - ctx.start) / dt.timedelta(days=1)))
    s = ctx.cfg.synth
    return synth.SynthConfig(symbol=ctx.cfg.symbol, start=ctx.start.date(), days=days,
                             seed=s.seed, trades_per_day=s.trades_per_day,
                             book_interval_ms=s.book_interval_ms, edge=s.edge)


def _settings(synth: dict[str, Any]) -> dict[str, Any]:
    """A generated market's settings apart from its span (coverage is checked apart): another
    seed, rate, cadence or edge mode is another market, and is generated again. Trades that
    ``botclave synth`` did not write (no such settings in the manifest) are used as they are."""
    return {k: v for k, v in synth.items() if k not in ("start", "days")}


def _generate_synth(ctx: Context) -> StageResult:
    """Generate the synthetic market (replacing a stored one made with other settings)."""
    from botclave_cli.data.synth import write_synth

    synth_cfg = _synth_config(ctx)
    written = write_synth(ctx.store, synth_cfg, progress=ctx.progress)
    ctx.state["synth_truth"] = written.truth_path
    kind = "" if synth_cfg.edge else " (control: no edge)"
    return _result("data", "ok", f"generated {synth_cfg.days} day(s) of synthetic market{kind}")


def _fetch(ctx: Context) -> StageResult:
    """Fetch the window's trades (and 1m candles when asked) through the ccxt connector; a
    rerun resumes where the stored coverage ends. ExchangeUnreachable (exit 4) after retries."""
    from botclave_cli.config import load_exchange_config
    from botclave_cli.exchange.connector import Connector
    from botclave_cli.exchange.series import fetch_ohlcv
    from botclave_cli.exchange.trades import fetch_trades

    cfg = ctx.cfg
    path = cfg.exchange_config
    exchange_cfg = load_exchange_config(path if path.exists() else None)
    exchange_cfg = exchange_cfg.model_copy(update={"exchange": cfg.exchange,
                                                   "market": cfg.market})
    conn = Connector(exchange_cfg, sandbox=False)
    done = []
    if "trades" in cfg.fetch.kinds or "agg_trades" in cfg.fetch.kinds:
        result = fetch_trades(conn, ctx.store, cfg.symbol, ctx.start, ctx.end,
                              raw="trades" in cfg.fetch.kinds, progress=ctx.progress)
        done.append(result.summary())
    if "ohlcv" in cfg.fetch.kinds:
        done.append(fetch_ohlcv(conn, ctx.store, cfg.symbol, ctx.start, ctx.end,
                                timeframe="1m", progress=ctx.progress).summary())
    return _result("data", "ok", "; ".join(done))


def staleness_check(ctx: Context, last_trade_us: int) -> None:
    """Exit 3 when the newest trade is older than ``fetch.max_staleness_minutes`` allows at the
    end of the window (or now, for a window that ends in the future)."""
    limit = ctx.cfg.fetch.max_staleness_minutes
    if limit is None:
        return
    now = ctx.state.get("now") or dt.datetime.now(dt.UTC)
    due = to_us(min(ctx.end, now)) - int(limit * 60_000_000)
    if last_trade_us < due:
        raise DataError(f"stale data: the newest {ctx.cfg.symbol} trade is from "
                        f"{from_us(last_trade_us):%Y-%m-%d %H:%M:%S} UTC, older than "
                        f"fetch.max_staleness_minutes ({limit:g}) before "
                        f"{min(ctx.end, now):%Y-%m-%d %H:%M:%S} UTC")


# coverage and market charts -------------------------------------------------------------------
def _clip(manifest: Manifest, lo: int, hi: int) -> list[tuple[int, int]]:
    return [(max(i.start_us, lo), min(i.end_us, hi)) for i in manifest.coverage
            if i.end_us > lo and i.start_us < hi]


def _fmt_span(start_us: int, end_us: int) -> str:
    return f"{from_us(start_us):%Y-%m-%d %H:%M:%S} .. {from_us(end_us):%Y-%m-%d %H:%M:%S}"


def id_gaps_in_window(store: Any, ref: DatasetRef, gaps: list[Any], lo: int, hi: int
                      ) -> list[Any]:
    """The id gaps whose neighbouring trades (the ids just before and after) fall in [lo, hi);
    a gap whose neighbours cannot be found is kept (it may lie in the window)."""
    from botclave_cli.data.schemas import spec

    if not gaps:  # first: derived kinds (depth_series...) are only known once their module loads
        return gaps
    column = spec(ref.kind).sequence_id
    if column is None:
        return gaps
    ids = sorted({g.start - 1 for g in gaps} | {g.end + 1 for g in gaps})
    found = dict(store.scan(ref).filter(pl.col(column).is_in(ids))
                 .select(column, pl.col("ts").dt.epoch("us")).collect().iter_rows())
    kept = []
    for gap in gaps:
        before, after = found.get(gap.start - 1), found.get(gap.end + 1)
        if before is None or after is None or (after >= lo and before < hi):
            kept.append(gap)
    return kept


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
        id_gaps = id_gaps_in_window(ctx.store, ref,
                                    [g for g in manifest.gaps if g.kind == "trade_id"], lo, hi)
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


def market_stage(ctx: Context) -> StageResult:
    """Candlesticks with buy/sell volume from the window's trades."""
    from botclave_cli.report.sources import candles_chart, quote_base

    trades = load_trades(ctx)
    if trades.height == 0:
        raise DataError(f"no {ctx.cfg.symbol} trades between {ctx.start} and {ctx.end}")
    staleness_check(ctx, to_us(trades["ts"][-1]))
    chart = candles_chart(ctx.charts, trades, ctx.cfg.symbol, ctx.start, ctx.end)
    ctx.report.charts.append(chart)
    quote, base = quote_base(ctx.cfg.symbol)
    ctx.report.summary.update({"trades in window": trades.height,
                               "first trade": trades["ts"][0], "last trade": trades["ts"][-1]})
    ctx.state["units"] = (quote, base)
    return _result("market", "ok", chart.title.removesuffix(" and aggressor volume"))


# backtest --------------------------------------------------------------------------------------
def backtest_stage(ctx: Context) -> StageResult:
    """Run the strategy over the window's trades, save the run, add its report sections."""
    if not ctx.cfg.backtest.enabled:
        return _result("backtest", "skipped", "disabled in the pipeline config")
    from botclave_cli.backtest.backtester import Backtester
    from botclave_cli.backtest.results import read_results, write_results
    from botclave_cli.config import load_exchange_config
    from botclave_cli.report.sources import add_backtest

    cfg = ctx.cfg
    params = _strategy_params(ctx)
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



# footprint and order-flow indicators ------------------------------------------------------------
def footprint_stage(ctx: Context) -> StageResult:
    """Footprint bars into the store, the footprint picture, volume profile and CVD charts."""
    if not ctx.cfg.footprint.enabled:
        return _result("footprint", "skipped", "disabled in the pipeline config")
    from botclave_cli.engine.footprint.store import build_from_store
    from botclave_cli.report.orderflow import add_footprint, footprint_spec

    fp = ctx.cfg.footprint
    load_trades(ctx)
    ref = ctx.state["trades_ref"]
    spec = footprint_spec(ctx.store.manifest(ref), fp.bar, fp.row_size)
    built = build_from_store(ctx.store, ref, spec, ctx.start, ctx.end, write=True, keep=True,
                             progress=ctx.progress)
    assert built.result is not None  # keep=True
    quote, base = ctx.state.get("units", ("quote", "base"))
    found = add_footprint(ctx.report, ctx.charts, built.result, fp.png_bars, quote, base)
    return _result("footprint", "ok", f"{built.bars} {fp.bar} bars, {built.levels} levels, "
                   f"{found['divergences']} divergence(s), {found['stacked']} stacked "
                   "imbalance(s)")


# depth -----------------------------------------------------------------------------------------
def depth_stage(ctx: Context) -> StageResult:
    """Replay the stored book: depth series into the store, heatmap, walls and absorption."""
    cfg = ctx.cfg
    if not cfg.depth.enabled:
        return _result("depth", "skipped", "disabled in the pipeline config")
    book_ref = _ref(ctx, "book_diff")
    if not ctx.store.exists(book_ref):
        return _result("depth", "skipped", f"no book data ({book_ref.relpath()}); record or "
                       "import a capture to get the depth analytics")
    from botclave_cli.engine.depth.analyzer import DepthParams
    from botclave_cli.engine.depth.store import write_depth
    from botclave_cli.report.sources import add_depth, book_depth

    params = DepthParams(interval_us=_duration_us(cfg.depth.interval))
    result = book_depth(ctx.store, cfg.exchange, cfg.market, cfg.symbol, to_us(ctx.start),
                        to_us(ctx.end), params)
    write_depth(ctx.store, cfg.exchange, cfg.market, cfg.symbol, result, params, cfg.exchange)
    walls, zones = add_depth(ctx.report, result, cfg.symbol, params.interval_us)
    c = result.counts
    return _result("depth", "ok", f"{result.series.height} depth rows, {c.get('gaps', 0)} "
                   f"gap(s), {walls} wall(s), {zones} absorption zone(s)")


def _duration_us(text: str) -> int:
    from botclave_cli.errors import ConfigError

    units = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}
    for suffix in ("ms", "s", "m", "h"):
        number = text.removesuffix(suffix)
        if text.endswith(suffix) and number.isdigit() and int(number) > 0:
            return int(number) * units[suffix]
    raise ConfigError(f"pipeline config: depth.interval {text!r}: expected e.g. 500ms, 1s, 1m")




# validation ------------------------------------------------------------------------------------
def partial_dir(run_folder: Path) -> Path:
    """Where the pipeline keeps the evaluations of a validation still running (or killed:
    SIGTERM from cron's timeout, a reboot): beside the run folder, ``runs/.<run id>.validation-
    partial/``, not in it as ``botclave validate`` does, because the backtest stage rewrites the
    run folder as a whole on every pipeline run (``atomic_dir``) and drops hidden entries. Not
    a temporary name (``.tmp-``), so ``clean_stale_temp`` leaves it; no ``manifest.json``, so it
    is never taken for a run."""
    return run_folder.parent / f".{run_folder.name}.validation-partial"


def validate_stage(ctx: Context) -> StageResult:
    """Walk-forward, PBO/DSR, Monte Carlo and the verdict, saved beside the base run.

    Resumable like ``botclave validate``: each evaluation is saved as it completes in
    ``runs/.<run id>.validation-partial/`` (``partial_dir``, ``validate/checkpoint.py``), so a
    rerun of the same window after a kill takes those instead of evaluating again and writes
    the same files; the folder goes once the results are written. The detail says how many
    evaluations were reused.
    """
    cfg = ctx.cfg
    if not cfg.validate_.enabled:
        return _result("validate", "skipped", "disabled in the pipeline config")
    from botclave_cli.backtest.results import read_results
    from botclave_cli.config import load_exchange_config, load_model, validate_data
    from botclave_cli.report.sources import (
        VALIDATION_DIR,
        add_backtest,
        add_monte_carlo_fan,
        add_validation,
    )
    from botclave_cli.validate.backtest_evaluator import backtest_validator, base_backtest
    from botclave_cli.validate.checkpoint import Checkpoint
    from botclave_cli.validate.config import ValidationConfig
    from botclave_cli.validate.executor import make_executor

    vcfg = (load_model(cfg.validation_config, ValidationConfig)
            if cfg.validation_config.exists() else ValidationConfig())
    if cfg.validate_.parameters is not None:
        vcfg = validate_data({**vcfg.model_dump(mode="json"),
                              "parameters": cfg.validate_.parameters}, ValidationConfig,
                             "pipeline config validate.parameters")
    params = ctx.state.get("strategy_params") or _strategy_params(ctx)
    exchange_cfg = load_exchange_config(cfg.exchange_config if cfg.exchange_config.exists()
                                        else None)
    load_trades(ctx)
    ref = ctx.state["trades_ref"]
    with make_executor(cfg.validate_.jobs) as executor:
        validator = backtest_validator(ctx.store, ref, ctx.start, ctx.end, params, exchange_cfg,
                                       vcfg, source=str(cfg.validation_config),
                                       executor=executor, progress=ctx.progress)
        validator.plan("all", cfg.validate_.folds)  # windows that do not fit: before any write
        # the run folder first: the checkpoint of the evaluations lives in it
        run_id, folder = base_backtest(validator, params, cfg.reports_dir)
        checkpoint = Checkpoint(partial_dir(folder), pipeline_run_key(validator, vcfg, cfg))
        validator.checkpoint = checkpoint
        result = validator.run("all", folds=cfg.validate_.folds, runs=cfg.validate_.mc_runs)
    result.write(folder / VALIDATION_DIR)  # replaces the folder as a whole
    checkpoint.remove()  # the results are in: nothing left to resume
    for warning in checkpoint.warnings:
        log.warning(warning)
    base = read_results(folder)
    if ctx.run_id is None:
        ctx.run_id = run_id
        add_backtest(ctx.report, ctx.charts, base)
    initial = float(params.execution.initial_equity)
    quote = ctx.state.get("units", ("quote", "base"))[0]
    add_monte_carlo_fan(ctx.report, ctx.charts, base["trades"], initial,
                        cfg.validate_.mc_runs or vcfg.monte_carlo.runs, vcfg.monte_carlo.seed,
                        quote)
    add_validation(ctx.report, ctx.charts, folder / VALIDATION_DIR, initial_equity=initial,
                   quote=quote)
    ctx.state.setdefault("configs", {})["validation"] = vcfg.model_dump(mode="json")
    return _result("validate", "ok", f"verdict {result.verdict} ({len(result.reasons)} "
                   f"reason(s)), run {run_id}; {_resume_detail(checkpoint)}")


def pipeline_run_key(validator: Any, vcfg: Any, cfg: Any) -> str:
    """The checkpoint's run key for the pipeline: ``checkpoint.run_key`` (the evaluator's
    fingerprint - strategy and exchange config, symbol, tick/lot, bar, the content of the
    trades read - and the code version) plus this validation's settings (the validation config
    and the stage's folds/mc_runs overrides). A changed setting reuses nothing, even an
    evaluation it happens to share (the holdout's after a change of folds): an interrupted
    pipeline resumes only the very validation it was running. ``jobs`` is left out: the
    results are the same for every value."""
    from botclave_cli.backtest.results import code_version
    from botclave_cli.validate.checkpoint import run_key, sha256

    settings = {"validation": vcfg.model_dump(mode="json"),
                "folds": cfg.validate_.folds, "mc_runs": cfg.validate_.mc_runs}
    return sha256({"run": run_key(validator.evaluator, code_version()),
                   "pipeline_validate": settings})


def _resume_detail(checkpoint: Any) -> str:
    total = checkpoint.reused + checkpoint.evaluated
    text = f"{checkpoint.reused} of {total} evaluation(s) reused"
    if checkpoint.warnings:
        text += f" ({len(checkpoint.warnings)} unreadable checkpoint file(s) evaluated again)"
    return text


def _strategy_params(ctx: Context) -> Any:
    from botclave_cli.config import load_model
    from botclave_cli.strategy.params import StrategyParams, params_with_overrides

    cfg = ctx.cfg
    params = (load_model(cfg.strategy_config, StrategyParams) if cfg.strategy_config.exists()
              else StrategyParams())
    return params_with_overrides(params, cfg.backtest.set) if cfg.backtest.set else params


#: the pipeline's order: each stage may read what the ones before it left in ``ctx.state``
STAGES: list[tuple[str, Any]] = [
    ("data", data_stage),
    ("coverage", coverage_stage),
    ("market", market_stage),
    ("footprint", footprint_stage),
    ("depth", depth_stage),
    ("backtest", backtest_stage),
    ("validate", validate_stage),
]
