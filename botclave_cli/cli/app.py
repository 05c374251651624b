"""The ``botclave`` command: root options and the command groups.

Each command group lives in its own module of this package and exposes ``register(app)``.
Building the app imports no polars, numpy or ccxt: ``--help`` answers fast (cli/defaults.py).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

from botclave_cli import __version__
from botclave_cli.cli.defaults import default_data_dir
from botclave_cli.logs import setup_logging

#: command modules in help order; each defines ``register(app: typer.Typer)``
COMMAND_MODULES = (
    "synth", "fetch", "importer", "record", "footprint", "depth", "backtest", "paper", "live",
    "validate",
    "report", "orders", "datasets", "config_cmd",
    "alerts", "dashboard",
)

app = typer.Typer(
    name="botclave",
    help=(
        "Order-flow research toolkit: fetch market data into Parquet, build footprints and "
        "book analytics, backtest, validate and report.\n\n"
        "Example: botclave synth && botclave footprint --symbol BTC/USDT --bar 1m"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"botclave {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="Log INFO (-v) or DEBUG (-vv).")
    ] = 0,
    log_file: Annotated[
        Path | None,
        typer.Option("--log-file", help="JSON-lines log (default: <data dir>/botclave.log)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    """Order-flow research toolkit."""
    target = log_file if log_file is not None else default_data_dir() / "botclave.log"
    try:
        setup_logging(target, verbose)
    except OSError:
        setup_logging(None, verbose)


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"botclave_cli.cli.{_name}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"botclave_cli.cli.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    app()
