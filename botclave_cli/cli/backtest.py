"""``botclave backtest``: run a strategy over stored trades (or bars) and save the run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from botclave_cli.cli.common import (
    DEFAULT_DATA_DIR,
    ConfigOpt,
    DataDirOpt,
    ExecutorOpt,
    FromOpt,
    JsonOpt,
    QuietOpt,
    ToOpt,
    check_market,
    parse_range,
    run,
)
from botclave_cli.cli.defaults import CONFIG_DIR, VALIDATION_CONFIG
from botclave_cli.errors import DataError

if TYPE_CHECKING:  # the library is imported in the command (cli/defaults.py says why)
    import polars as pl

    from botclave_cli.backtest.backtester import BacktestResult
    from botclave_cli.data.store import DatasetRef, Store

SHOWN = ("total_return", "annual_return", "sharpe", "sortino", "max_drawdown", "calmar",
         "trades", "win_rate", "profit_factor", "payoff_ratio", "expectancy", "avg_r",
         "exposure", "longest_losing_streak", "fees", "final_equity")


def load_inputs(store: Store, exchange: str, market: str, symbol: str, start: Any, end: Any,
                timeframe: str, bars_only: bool, kind: str | None
                ) -> tuple[pl.DataFrame | None, pl.DataFrame | None, pl.DataFrame | None,
                           DatasetRef]:
    """(trades, bars, funding, the dataset read) from the store; DataError when empty."""
    from botclave_cli.data.store import DatasetRef, find_trades
    from botclave_cli.strategy.bars import bars_from_ohlcv

    span = f"[{start or 'start'}, {end or 'end'})"
    if bars_only:
        ref = DatasetRef(exchange, market, symbol, "ohlcv").with_level("timeframe", timeframe)
        df = store.scan(ref, start, end).collect()
        if df.height == 0:
            raise DataError(f"no {timeframe} bars in {ref} for {span}")
        return None, bars_from_ohlcv(df, timeframe), None, ref
    try:
        ref = find_trades(store, exchange, market, symbol, kind)
    except DataError as exc:
        raise DataError(f"{exc}; fetch or import trades, or use --bars-only") from None
    trades = store.scan(ref, start, end).select("ts", "price", "qty", "side").collect()
    if trades.height == 0:
        raise DataError(f"no trades in {ref} for {span}")
    funding = None
    fref = DatasetRef(exchange, market, symbol, "funding")
    if market != "spot" and store.exists(fref):
        funding = store.scan(fref, start, end).collect()
    return trades, None, funding, ref


def streamed_run(store: Store, exchange: str, market: str, symbol: str, start: Any, end: Any,
                 kind: str | None, params: Any, ex_cfg: Any, *, use_book: bool, per_bar: bool,
                 progress: Any) -> tuple[BacktestResult, DatasetRef] | None:
    """The run read from the store day by day (backtest/streamed.py), or None where it must
    load the trades whole (a book, --per-bar, ...: ``stream_refusal``)."""
    from botclave_cli.backtest.backtester import Backtester
    from botclave_cli.backtest.streamed import run_streamed, store_chunks, stream_refusal
    from botclave_cli.data.store import DatasetRef, find_trades

    try:
        ref = find_trades(store, exchange, market, symbol, kind)
    except DataError:
        return None  # load_inputs says it in full
    has_book = use_book and all(store.exists(DatasetRef(exchange, market, symbol, k))
                                for k in ("book_snapshot", "book_diff"))
    manifest = store.manifest(ref)
    tester = Backtester(params, ex_cfg, symbol=symbol,
                        tick_size=manifest.tick_size if manifest else None,
                        lot_size=manifest.lot_size if manifest else None, market=market)
    if stream_refusal(tester, book=has_book, per_bar=per_bar) is not None:
        return None
    funding = None
    fref = DatasetRef(exchange, market, symbol, "funding")
    if market != "spot" and store.exists(fref):
        funding = store.scan(fref, start, end).collect()
    span = f"[{start or 'start'}, {end or 'end'})"
    result = run_streamed(tester, store_chunks(store, ref, start, end), funding,
                          progress=progress, empty=f"no trades in {ref} for {span}")
    return result, ref


def load_book_inputs(store: Store, exchange: str, market: str, symbol: str, start: Any,
                     end: Any, kind: str | None) -> dict[str, pl.DataFrame] | None:
    """``book_snapshot`` + ``book_diff`` for the window (from the last snapshot at or before
    the start, engine.depth.store.load_book), or None when the store has no book for the symbol."""
    from botclave_cli.data.store import DatasetRef, to_us
    from botclave_cli.engine.depth.store import load_book

    refs = [DatasetRef(exchange, market, symbol, k) for k in ("book_snapshot", "book_diff")]
    if not all(store.exists(r) for r in refs):
        return None
    b = load_book(store, exchange, market, symbol, to_us(start) if start else None,
                  to_us(end) if end else None, kind)
    if b["book_snapshot"].height == 0:
        return None
    return {"book_snapshot": b["book_snapshot"], "book_diff": b["book_diff"]}


def summary_rows(result: BacktestResult) -> list[dict[str, Any]]:
    return [{"metric": k, "value": result.metrics.get(k, result.final_equity
                                                        if k == "final_equity" else None)}
            for k in SHOWN]


def backtest(
    config: ConfigOpt = None,
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="ccxt unified symbol.")]
    = "BTC/USDT",
    exchange: Annotated[str, typer.Option("--exchange", "-e", help="Exchange folder in the "
                                          "store (synth for the synthetic market).")] = "binance",
    market: Annotated[str, typer.Option("--market", "-m", help="spot | usdm | coinm.")] = "spot",
    start: FromOpt = None,
    end: ToOpt = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a parameter: key=value (repeatable), e.g. risk.per_trade=0.005."
    )] = None,
    bars_only: Annotated[bool, typer.Option("--bars-only", help="Run on stored OHLCV bars "
                                            "(OHLC path assumption: execution.bars_path).")]
    = False,
    kind: Annotated[str | None, typer.Option("--kind", help="trades or agg_trades (default: "
                                             "trades where present).")] = None,
    use_book: Annotated[bool, typer.Option("--book/--no-book", help="Where the store holds "
                                           "book_snapshot + book_diff for the symbol: market "
                                           "orders walk the rebuilt book, limits queue, and "
                                           "entry.book_imbalance_min works (trade-level mode).")]
    = True,
    per_bar: Annotated[bool, typer.Option("--per-bar", help="Decide bar by bar as paper and "
                                          "live do: each closed bar's trades update the "
                                          "strategy's footprint, detectors and structure "
                                          "(the same result as the default batch run, slower).")]
    = False,
    exchange_config: Annotated[Path | None, typer.Option(
        "--exchange-config", help="Fees and tick/lot (default configs/exchange_config.yaml).")]
    = None,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Results go to <out-dir>/runs/<run "
                                          "id>/ (a sweep to <out-dir>/sweeps/<id>/).")]
    = Path("reports"),
    sweep: Annotated[bool, typer.Option("--sweep", help="Backtest every parameter set of "
                                        "--validation's space over --from/--to: one Parquet "
                                        "table, a row per set.")] = False,
    validation: Annotated[Path, typer.Option("--validation", help="With --sweep: the parameter "
                                             "space and objective.")]
    = CONFIG_DIR / VALIDATION_CONFIG,
    executor_: ExecutorOpt = "auto",
    jobs: Annotated[str, typer.Option("--jobs", "-j", help="With --sweep: worker processes "
                                      "(auto, 0 = all cores, N).")] = "auto",
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Backtest a strategy at trade level and save orders, fills, trades, equity and metrics.

    Example: botclave backtest --config configs/strategy_params.yaml --symbol BTC/USDT
    --exchange synth --market spot --from 2024-01-01 --to 2024-01-02 --set risk.per_trade=0.005

    Example: botclave backtest --exchange synth --no-book --set entry.order_type=limit

    Example: botclave backtest --exchange synth --per-bar   (bar by bar, as paper/live decide)

    Example: botclave backtest --sweep --exchange synth --from 2024-01-01 --to 2024-01-02
    --executor dask=tcp://head:8786   (every set of configs/validation.yaml, one table)
    """
    with run(json_, quiet) as out:
        if sweep:
            from botclave_cli.cli.sweep import run_sweep

            lo, hi = parse_range(start, end)
            check_market(market)
            run_sweep(out, config=config, validation=validation, symbol=symbol,
                      exchange=exchange, market=market, lo=lo, hi=hi, set_=set_, kind=kind,
                      exchange_config=exchange_config, out_dir=out_dir, data_dir=data_dir,
                      executor=executor_, jobs=jobs)
            return
        from botclave_cli.backtest.backtester import Backtester
        from botclave_cli.backtest.results import write_results
        from botclave_cli.config import load_exchange_config, load_model
        from botclave_cli.data.store import Store
        from botclave_cli.strategy.params import StrategyParams, params_with_overrides

        check_market(market)
        lo, hi = parse_range(start, end)
        params = load_model(config, StrategyParams) if config else StrategyParams()
        if set_:
            params = params_with_overrides(params, set_)
        ex_cfg = load_exchange_config(exchange_config)
        store = Store(data_dir)
        streamed = None if bars_only else streamed_run(
            store, exchange, market, symbol, lo, hi, kind, params, ex_cfg,
            use_book=use_book, per_bar=per_bar, progress=out.progress())
        book = None
        if streamed is not None:
            result, ref = streamed
        else:
            trades, bars, funding, ref = load_inputs(store, exchange, market, symbol, lo, hi,
                                                     params.bars.timeframe, bars_only, kind)
            manifest = store.manifest(ref)
            tick = manifest.tick_size if manifest else None
            lot = manifest.lot_size if manifest else None
            book = (load_book_inputs(store, exchange, market, symbol, lo, hi, kind)
                    if use_book and not bars_only else None)
            tester = Backtester(params, ex_cfg, symbol=symbol, tick_size=tick, lot_size=lot,
                                market=market)
            result = tester.run(trades, bars=bars, book=book, funding=funding,
                                bars_only=bars_only, per_bar=per_bar, progress=out.progress())
        rid, folder = write_results(result, out_dir, extra={
            "dataset": str(ref), "exchange": exchange, "market": market,
            "book": book is not None})
        data = {"run_id": rid, "folder": str(folder), "metrics": result.metrics,
                "final_equity": result.final_equity, "open_positions": result.open_positions,
                "notes": result.notes}
        m = result.metrics
        sharpe = m.get("sharpe")
        summary = (f"run {rid}: {m['trades']} trade(s), total return {m['total_return']:+.4%}, "
                   f"sharpe {sharpe:.3f} " if sharpe is not None else
                   f"run {rid}: {m['trades']} trade(s), total return {m['total_return']:+.4%} ")
        out.emit(data, summary + f"-> {folder}", rows=summary_rows(result),
                 title=f"backtest {symbol} {params.name}")


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest)
