"""The real backtester as a validation evaluator, and the validator built on a stored dataset.

``BacktestEvaluator`` runs ``Backtester`` on the trades of one window with a parameter set
applied over the base strategy config; ``backtest_validator`` wires it to a ``StrategyValidator``
over ``[start, end)`` of a trades dataset; ``base_backtest`` writes the base strategy's run
folder, beside which ``botclave validate`` puts ``validation/``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from botclave_cli.config import ExchangeConfig, validate_data
from botclave_cli.data.store import DatasetRef, Store, from_us, to_us
from botclave_cli.errors import DataError, UsageError
from botclave_cli.progress import Progress
from botclave_cli.strategy.params import StrategyParams, apply_overrides, bar_us
from botclave_cli.validate.checkpoint import Checkpoint
from botclave_cli.validate.config import VALIDATION_CONFIG, ValidationConfig
from botclave_cli.validate.evaluation import (
    YEAR_US,
    EvaluationResult,
    Timeline,
    evaluation_metrics,
)
from botclave_cli.validate.executor import Executor
from botclave_cli.validate.param_space import build_space
from botclave_cli.validate.validator import StrategyValidator

#: the last range read in this process: a worker evaluates many windows of one range, and
#: shipping the trades with every task would cost more than reading them once per worker
_TRADES: dict[tuple[str, str, int, int], tuple[pl.DataFrame, np.ndarray]] = {}
_TRADES_LOCK = threading.Lock()


@dataclass(frozen=True)
class TradeSource:
    """A trades dataset and range in the store, read once per process (workers included)."""

    data_dir: str
    ref: DatasetRef
    start_us: int
    end_us: int

    def load(self) -> tuple[pl.DataFrame, np.ndarray]:
        """(trades sorted by ts, their ts in us)."""
        key = (self.data_dir, str(self.ref), self.start_us, self.end_us)
        with _TRADES_LOCK:  # a Dask worker may run several tasks in threads of one process
            if key not in _TRADES:
                _TRADES.clear()
                df = (Store(self.data_dir).scan(self.ref, from_us(self.start_us),
                                                from_us(self.end_us))
                      .select("ts", "price", "qty", "side").collect()
                      .sort("ts", maintain_order=True))
                _TRADES[key] = (df, df["ts"].dt.epoch("us").to_numpy())
            return _TRADES[key]

    def content_hash(self) -> str:
        """sha256 of the trades the range holds (ts in us, price, qty, side): a re-imported or
        extended dataset gives another hash, so a checkpoint never reuses outcomes of old data."""
        df, ts = self.load()
        h = hashlib.sha256(str(df.height).encode())
        h.update(np.ascontiguousarray(ts, dtype="<i8").tobytes())
        for name in ("price", "qty"):
            h.update(np.ascontiguousarray(df[name].to_numpy(), dtype="<f8").tobytes())
        h.update((df["side"] == "buy").to_numpy().astype(np.uint8).tobytes())
        return h.hexdigest()


@dataclass(frozen=True)
class BacktestEvaluator:
    """``Backtester`` on the trades of ``[start_us, end_us)`` with ``params`` applied over the
    base strategy config as ``--set`` overrides would be.

    Each window is backtested on its own trades only (no warm-up from earlier trades), with the
    equity marked at the validation bar, so its bar returns are the equity curve's; trade
    returns are each closed trade's net PnL over the equity before it (closed-trade equity).
    """

    trades: TradeSource
    base_params: dict[str, Any]  # StrategyParams.model_dump(mode="json")
    exchange_config: dict[str, Any]  # ExchangeConfig.model_dump(mode="json")
    symbol: str
    tick_size: float | None
    lot_size: float | None
    bar: str
    source: str = VALIDATION_CONFIG

    def fingerprint(self) -> dict[str, Any]:
        """What decides this evaluator's outcomes, for the validation checkpoint: every field
        (strategy and exchange config, symbol, tick/lot, bar) and the dataset, range and content
        of its trades (not the store's folder: moving the store keeps the outcomes)."""
        t = self.trades
        return {"class": "BacktestEvaluator", "base_params": self.base_params,
                "exchange_config": self.exchange_config, "symbol": self.symbol,
                "tick_size": self.tick_size, "lot_size": self.lot_size, "bar": self.bar,
                "trades": {"ref": str(t.ref), "start_us": t.start_us, "end_us": t.end_us,
                           "sha256": t.content_hash()}}

    def strategy_params(self, params: dict[str, Any]) -> StrategyParams:
        """The validated strategy config for one parameter set (ConfigError names the key)."""
        data = apply_overrides(self.base_params,
                               [f"{k}={json.dumps(v)}" for k, v in params.items()])
        model = validate_data(data, StrategyParams, f"{self.source}: parameters")
        model.execution.equity_interval = self.bar
        return model

    def __call__(self, params: dict[str, Any], start_us: int, end_us: int) -> EvaluationResult:
        from botclave_cli.backtest.backtester import Backtester  # heavy: only where it runs

        sp = self.strategy_params(params)
        step = bar_us(self.bar)
        n = (end_us - start_us) // step
        init = sp.execution.initial_equity
        df, ts = self.trades.load()
        if df.height == 0:  # the caller saw trades there: this node does not see the store
            raise DataError(f"{self.trades.data_dir}: no trades of {self.trades.ref} on host "
                            f"{socket.gethostname()}; a cluster's workers need the store at a "
                            "path every node sees")
        i0, i1 = np.searchsorted(ts, [start_us, end_us], side="left")
        ppy = YEAR_US / step
        if i1 - i0 < 2:
            flat = np.zeros(n)
            return EvaluationResult(flat, np.zeros(0), evaluation_metrics(flat, np.zeros(0), ppy))
        tester = Backtester(sp, ExchangeConfig.model_validate(self.exchange_config),
                            symbol=self.symbol, tick_size=self.tick_size,
                            lot_size=self.lot_size)
        res = tester.run(df.slice(int(i0), int(i1 - i0)))
        mark_ts = res.equity["ts"].dt.epoch("us").to_numpy()
        mark_eq = res.equity["equity"].to_numpy()
        bar_end = start_us + (np.arange(n, dtype=np.int64) + 1) * step
        idx = np.searchsorted(mark_ts, bar_end, side="right") - 1  # marks: state before ts
        equity = np.where(idx >= 0, mark_eq[np.maximum(idx, 0)], init)
        rets = equity / np.concatenate([[init], equity[:-1]]) - 1.0
        pnl = res.trades.sort("exit_ts", maintain_order=True)["pnl"].to_numpy()
        before = init + np.concatenate([[0.0], np.cumsum(pnl)[:-1]])
        trade_rets = pnl / before
        return EvaluationResult(rets, trade_rets, evaluation_metrics(rets, trade_rets, ppy))


def backtest_validator(
    store: Store, ref: DatasetRef, start: dt.datetime, end: dt.datetime,
    strategy: StrategyParams, exchange_config: ExchangeConfig, config: ValidationConfig, *,
    source: str = VALIDATION_CONFIG, executor: Executor | None = None,
    progress: Progress | None = None, checkpoint: Checkpoint | None = None,
) -> StrategyValidator:
    """A validator of the real backtester on a stored trades dataset over ``[start, end)``.

    Every parameter set is checked against the strategy schema here, before any work runs.
    """
    manifest = store.manifest(ref)
    start_us, end_us = to_us(start), to_us(end)
    # absolute: a worker process (a cluster's, with another working directory) reads it too
    trades = TradeSource(str(Path(store.root).resolve()), ref, start_us, end_us)
    if trades.load()[0].height < 2:
        raise DataError(f"{ref}: fewer than 2 trades in [{start.isoformat()}, {end.isoformat()})")
    timeline = Timeline(start_us, end_us, bar_us(config.bar))
    if timeline.n_bars < 1:
        raise UsageError(f"--from/--to: the range is shorter than one {config.bar} bar")
    evaluator = BacktestEvaluator(
        trades, strategy.model_dump(mode="json"),
        exchange_config.model_dump(mode="json"), ref.symbol,
        manifest.tick_size if manifest else None, manifest.lot_size if manifest else None,
        config.bar, source)
    space = build_space(config, source, check=evaluator.strategy_params)
    return StrategyValidator(evaluator, timeline, config, space, executor, progress,
                             checkpoint)


def base_backtest(validator: StrategyValidator, strategy: StrategyParams, out_dir: Path
                  ) -> tuple[str, Path]:
    """The base strategy's backtest over the whole range, as ``botclave backtest`` writes it:
    (run id, run folder). An existing complete run folder of that id is kept as it is."""
    from botclave_cli.backtest.backtester import Backtester
    from botclave_cli.backtest.results import run_id, write_results

    ev = validator.evaluator
    if not isinstance(ev, BacktestEvaluator):
        raise UsageError("a run folder needs the backtest evaluator (backtest_validator)")
    trades, _ = ev.trades.load()
    tester = Backtester(strategy, ExchangeConfig.model_validate(ev.exchange_config),
                        symbol=ev.symbol, tick_size=ev.tick_size, lot_size=ev.lot_size)
    result = tester.run(trades)
    rid = run_id(result)
    folder = Path(out_dir) / "runs" / rid
    if not (folder / "manifest.json").exists():
        ref = ev.trades.ref
        rid, folder = write_results(result, Path(out_dir), extra={
            "dataset": str(ref), "exchange": ref.exchange, "market": ref.market})
    return rid, folder
