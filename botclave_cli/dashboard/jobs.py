"""The one thing the dashboard writes: a backtest it is asked to run, saved as a run folder in
the runs directory (the same files as ``botclave backtest``). No Streamlit here."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from botclave_cli.config import validate_data
from botclave_cli.dashboard import data as dd
from botclave_cli.progress import Progress
from botclave_cli.strategy.params import StrategyParams, params_with_overrides

SOURCE = "strategy parameters"


def default_params_text(config_dir: Path = Path("configs")) -> str:
    """``configs/strategy_params.yaml`` when it exists, else the defaults as YAML."""
    path = config_dir / "strategy_params.yaml"
    if path.exists():
        return path.read_text(encoding="utf-8")
    return yaml.safe_dump(StrategyParams().model_dump(mode="json"), sort_keys=False)


def parse_params(text: str, overrides: list[str]) -> StrategyParams:
    """Strategy parameters from YAML text plus ``key=value`` overrides, validated by the same
    pydantic models as ``botclave backtest --config --set``; ConfigError / UsageError name the
    key and what was expected."""
    from botclave_cli.errors import ConfigError

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{SOURCE}:{where}: {getattr(exc, 'problem', None) or 'invalid YAML'}"
                          ) from None
    params = validate_data(data, StrategyParams, SOURCE)
    lines = [o.strip() for o in overrides if o.strip()]
    return params_with_overrides(params, lines) if lines else params


def run_backtest(sources: dd.Sources, params: StrategyParams, market: dd.Market,
                 start: dt.datetime, end: dt.datetime, use_book: bool = False,
                 progress: Progress | None = None) -> tuple[str, Path, dict[str, Any]]:
    """Backtest ``params`` on the market's stored trades in [start, end) and write the run into
    ``sources.runs_dir``; returns (run id, folder, metrics). As ``botclave backtest``."""
    from botclave_cli.backtest.backtester import Backtester
    from botclave_cli.backtest.results import write_results
    from botclave_cli.config import load_exchange_config

    store = sources.store
    ref = dd.trades_ref(store, market.exchange, market.market, market.symbol)
    trades = dd.load_trades(store, ref, start, end)
    manifest = store.manifest(ref)
    book = None
    if use_book:
        from botclave_cli.engine.depth.store import load_book

        refs = [dd.DatasetRef(market.exchange, market.market, market.symbol, k)
                for k in ("book_snapshot", "book_diff")]
        if all(store.exists(r) for r in refs):
            from botclave_cli.data.store import to_us

            b = load_book(store, market.exchange, market.market, market.symbol, to_us(start),
                          to_us(end))
            book = {"book_snapshot": b["book_snapshot"], "book_diff": b["book_diff"]}
    tester = Backtester(params, load_exchange_config(None), symbol=market.symbol,
                        tick_size=manifest.tick_size if manifest else None,
                        lot_size=manifest.lot_size if manifest else None, market=market.market)
    result = tester.run(trades, book=book, progress=progress)
    rid, folder = write_results(result, sources.out_dir, extra={
        "dataset": str(ref), "exchange": market.exchange, "market": market.market,
        "book": book is not None, "source": "dashboard"})
    return rid, folder, result.metrics
