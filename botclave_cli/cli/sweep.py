"""``botclave backtest --sweep``: the validation's parameter space backtested, one Parquet table.

The backtest command hands over here when ``--sweep`` is given; the work is
``validate.sweep`` through the executor of ``--executor``/``--jobs`` (cluster included).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from botclave_cli.cli.common import Output
from botclave_cli.errors import UsageError


def run_sweep(out: Output, *, config: Path | None, validation: Path, symbol: str,
              exchange: str, market: str, lo: dt.datetime | None, hi: dt.datetime | None,
              set_: list[str] | None, kind: str | None, exchange_config: Path | None,
              out_dir: Path, data_dir: Path, executor: str, jobs: str) -> None:
    from botclave_cli.validate.cluster import open_executor, parse_executor
    from botclave_cli.validate.executor import parse_jobs

    spec, jobs_value = parse_executor(executor), parse_jobs(jobs)
    if lo is None or hi is None:
        raise UsageError("--sweep needs --from and --to (the range every set is backtested on)")
    from botclave_cli.backtest.results import code_version
    from botclave_cli.cli.defaults import CONFIG_DIR
    from botclave_cli.config import load_exchange_config, load_model
    from botclave_cli.data.store import Store, find_trades
    from botclave_cli.strategy.params import StrategyParams, params_with_overrides
    from botclave_cli.validate.backtest_evaluator import backtest_validator
    from botclave_cli.validate.config import ValidationConfig
    from botclave_cli.validate.sweep import sweep_table, write_sweep

    strategy_path = config or CONFIG_DIR / "strategy_params.yaml"
    params = load_model(strategy_path, StrategyParams) if config or strategy_path.exists() \
        else StrategyParams()
    if set_:
        params = params_with_overrides(params, set_)
    vcfg = load_model(validation, ValidationConfig)
    store = Store(data_dir)
    ref = find_trades(store, exchange, market, symbol, kind)
    validator = backtest_validator(store, ref, lo, hi, params, load_exchange_config(
        exchange_config), vcfg, source=str(validation))
    with open_executor(spec, jobs_value) as ex:
        table = sweep_table(validator, ex, out.progress())
        used = ex.report()
    folder = write_sweep(table, validator, out_dir, code_version(),
                         extra={"dataset": str(ref), "validation": str(validation)})
    shown = ["set", "params", "objective", "sharpe", "total_return", "max_drawdown", "trades"]
    rows: list[dict[str, Any]] = table.select(shown).to_dicts()
    data = {"folder": str(folder), "table": str(folder / "sweep.parquet"), "sets": table.height,
            "rows": rows, "jobs": used}
    out.emit(data, f"sweep {symbol}: {table.height} parameter sets -> {folder / 'sweep.parquet'}",
             rows=rows, title=f"sweep {symbol} ({vcfg.objective})")
