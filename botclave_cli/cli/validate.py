"""``botclave validate oos|walk-forward|monte-carlo|pbo|all``: is the backtest real?

A thin shell over ``botclave_cli.validate.validator``: it loads the three configs, runs the
validator on the stored trades with a worker pool, writes ``reports/runs/<run id>/validation/``
(Parquet tables + ``validation.json``) beside the base backtest of the same run id, and turns
the verdict into the exit code: 0 pass or warn (reasons printed), 1 fail.

Resumable: each evaluation is saved as it completes in ``<run folder>/.validation-partial/``
(``validate/checkpoint.py``); a rerun of an interrupted command takes those instead of
evaluating again (``--no-resume`` discards them), and the folder goes once the results are in.
"""

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
from botclave_cli.errors import UsageError, ValidationFailed
from botclave_cli.logs import get_logger

if TYPE_CHECKING:  # the library is imported in the command (cli/defaults.py says why)
    from botclave_cli.validate.verdict import ValidationResult

MODES = ("rolling", "anchored")
#: in the run folder: the evaluations of a validation still running (or interrupted)
PARTIAL_DIR = ".validation-partial"
log = get_logger(__name__)


def _rows(result: ValidationResult) -> list[dict[str, Any]]:
    return [{"figure": k, "value": v} for k, v in result.figures.items()]


def validate(
    which: Annotated[str, typer.Argument(help="oos | walk-forward | monte-carlo | pbo | all")],
    config: ConfigOpt = None,
    validation: Annotated[Path, typer.Option(
        "--validation", help="Parameter space, objective, folds and verdict thresholds.")]
    = CONFIG_DIR / VALIDATION_CONFIG,
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="ccxt unified symbol.")]
    = "BTC/USDT",
    exchange: Annotated[str, typer.Option("--exchange", "-e", help="Exchange folder in the "
                                          "store (synth for the synthetic market).")] = "binance",
    market: Annotated[str, typer.Option("--market", "-m", help="spot | usdm | coinm.")] = "spot",
    start: FromOpt = None,
    end: ToOpt = None,
    folds: Annotated[int | None, typer.Option("--folds", help="Walk-forward folds (default "
                                              "from the validation config).")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="Walk-forward windows: rolling | "
                                             "anchored.")] = None,
    runs: Annotated[int | None, typer.Option("--runs", help="Monte Carlo runs.")] = None,
    jobs: Annotated[str, typer.Option("--jobs", "-j", help="Worker processes: auto = a pool "
                                      "only when the timed work pays for its start-up, "
                                      "0 = all cores, 1 = serial (results are identical).")]
    = "auto",
    executor_: ExecutorOpt = "auto",
    seed: Annotated[int | None, typer.Option("--seed", help="Monte Carlo seed.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a base strategy parameter: key=value (repeatable).")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="trades or agg_trades (default: "
                                             "trades where present).")] = None,
    exchange_config: Annotated[Path | None, typer.Option(
        "--exchange-config", help="Fees and tick/lot (default configs/exchange_config.yaml).")]
    = None,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Results go to <out-dir>/runs/<run "
                                          "id>/validation/.")] = Path("reports"),
    no_resume: Annotated[bool, typer.Option(
        "--no-resume", help="Evaluate everything again: discard the evaluations an "
        "interrupted run of the same command saved.")] = False,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Validate a strategy: out-of-sample, walk-forward, Monte Carlo, PBO/DSR, and a verdict.

    Exit code 0 for pass or warn (reasons printed), 1 for fail, 2 for bad input. An
    interrupted run resumes: its finished evaluations are reused by the same command, on any
    executor (a run cut short on a cluster resumes serially, and the other way round); a
    cluster scheduler that cannot be reached exits 4.
    Example: botclave validate all --config configs/strategy_params.yaml --exchange synth
    --symbol BTC/USDT --from 2024-01-01 --to 2024-01-02 --folds 3 --runs 200 --json

    Example (on a Dask cluster): botclave validate walk-forward --exchange synth
    --from 2024-01-01 --to 2024-01-02 --executor dask=tcp://head:8786
    """
    with run(json_, quiet) as out:
        from botclave_cli.validate.cluster import open_executor, parse_executor  # light
        from botclave_cli.validate.executor import parse_jobs

        jobs_value = parse_jobs(jobs)  # a bad --jobs stops before the heavy imports below
        spec = parse_executor(executor_)
        from botclave_cli.backtest.results import code_version
        from botclave_cli.config import load_exchange_config, load_model
        from botclave_cli.data.store import Store, find_trades
        from botclave_cli.strategy.params import StrategyParams, params_with_overrides
        from botclave_cli.validate.backtest_evaluator import backtest_validator, base_backtest
        from botclave_cli.validate.checkpoint import Checkpoint, run_key
        from botclave_cli.validate.config import WHICH, ValidationConfig

        if which not in WHICH:
            raise UsageError(f"validate {which!r}: expected one of {', '.join(WHICH)}")
        if mode is not None and mode not in MODES:
            raise UsageError(f"--mode {mode!r}: expected rolling or anchored")
        if folds is not None and folds < 1:
            raise UsageError(f"--folds {folds}: expected at least 1")
        if runs is not None and runs < 1:
            raise UsageError(f"--runs {runs}: expected at least 1")
        check_market(market)
        lo, hi = parse_range(start, end, required=True)
        assert lo is not None and hi is not None  # required=True
        strategy_path = config or CONFIG_DIR / "strategy_params.yaml"
        params = load_model(strategy_path, StrategyParams) if config or strategy_path.exists() \
            else StrategyParams()
        if set_:
            params = params_with_overrides(params, set_)
        vcfg = load_model(validation, ValidationConfig)
        ex_cfg = load_exchange_config(exchange_config)
        store = Store(data_dir)
        ref = find_trades(store, exchange, market, symbol, kind)
        with open_executor(spec, jobs_value) as executor:
            validator = backtest_validator(store, ref, lo, hi, params, ex_cfg, vcfg,
                                           source=str(validation), executor=executor,
                                           progress=out.progress())
            validator.plan(which, folds, mode)  # windows that do not fit: before any write
            # the run folder first: the checkpoint of the evaluations lives in it
            rid, run_folder = base_backtest(validator, params, out_dir)
            checkpoint = Checkpoint(run_folder / PARTIAL_DIR,
                                    run_key(validator.evaluator, code_version()),
                                    resume=not no_resume)
            validator.checkpoint = checkpoint
            result = validator.run(which, folds=folds, mode=mode, runs=runs, seed=seed)
            jobs_used = executor.report()
        log.info("validate jobs", extra={"jobs": jobs_used, "resume": checkpoint.report()})
        folder = run_folder / "validation"
        result.write(folder)
        checkpoint.remove()  # the results are in: nothing left to resume
        for warning in checkpoint.warnings:
            out.warn(warning)
        # beside the results, not in validation.json: that file is the same for every --jobs
        # and for a resumed run
        data = {"run_id": rid, "folder": str(folder), **result.as_dict(), "jobs": jobs_used,
                "resume": checkpoint.report()}
        reasons = f" ({len(result.reasons)} reason(s))" if result.reasons else ""
        out.emit(data, f"validate {which}: {result.verdict}{reasons} -> {folder}",
                 rows=_rows(result), title=f"validation {which}: {result.verdict}")
        if result.verdict == "warn" and not json_:
            for reason in result.reasons:
                out.warn(reason)
        if result.verdict == "fail":
            raise ValidationFailed(f"validation verdict fail: {'; '.join(result.reasons)}")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)  # `botclave config check` knows validation.yaml (config_cmd)
