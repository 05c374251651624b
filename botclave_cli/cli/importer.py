"""``botclave import capture|binance-archive|tardis``: files traders already have -> datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from botclave_cli.cli.common import (
    DEFAULT_DATA_DIR,
    ConfigOpt,
    DataDirOpt,
    JsonOpt,
    Output,
    QuietOpt,
    SkipBadOpt,
    check_market,
    run,
)
from botclave_cli.cli.defaults import DEFAULT_MAX_DISORDER_MS
from botclave_cli.errors import UsageError

if TYPE_CHECKING:  # the library is imported in the commands (cli/defaults.py says why)
    from botclave_cli.data.importers.writer import ImportResult

import_app = typer.Typer(
    help=(
        "Import Binance WebSocket captures, Binance public archives and Tardis.dev CSV.\n\n"
        "Example: botclave import capture usdm_btcusdt_20240808.gz"
    ),
    no_args_is_help=True,
)

FilesArg = Annotated[list[Path], typer.Argument(help="Input files, read in the order given.")]
MarketOverride = Annotated[
    str | None, typer.Option("--market", "-m", help="spot | usdm | coinm (default: detected).")
]
SymbolOverride = Annotated[
    str | None,
    typer.Option("--symbol", "-s", help="ccxt unified symbol (default: from the data/file name)."),
]
TickOpt = Annotated[
    float | None, typer.Option("--tick-size", help="Price tick (default: config, else inferred).")
]
LotOpt = Annotated[
    float | None, typer.Option("--lot-size", help="Quantity step (default: config, else inferred).")
]
DisorderOpt = Annotated[
    float,
    typer.Option(
        "--max-disorder", help="Ms a trade may lie behind an earlier one (else bad)."
    ),
]


def _files(files: list[Path]) -> list[Path]:
    for f in files:
        if not f.is_file():
            raise UsageError(f"{f}: no such file")
    return files


def _import(
    out: Output,
    source: str,
    what: str,
    files: list[Path],
    *,
    config: Path | None,
    data_dir: Path,
    market: str | None,
    tick_size: float | None,
    lot_size: float | None,
    **parse: Any,
) -> None:
    """Shared by the three commands: check the common options, import, report."""
    from botclave_cli.config import load_exchange_config
    from botclave_cli.data.importers.imports import import_files
    from botclave_cli.data.importers.writer import finite
    from botclave_cli.data.store import Store

    if market is not None:
        check_market(market)
    exchange_config = load_exchange_config(config)
    tick = finite(tick_size, "--tick-size")
    lot = finite(lot_size, "--lot-size")
    result = import_files(
        source,
        Store(data_dir),
        _files(files),
        progress=out.progress(),
        market=market,
        config=exchange_config,
        tick_size=tick,
        lot_size=lot,
        **parse,
    )
    _emit(out, result, what)


def _emit(out: Output, result: ImportResult, what: str) -> None:
    for warning in result.warnings:
        out.warn(warning)
    rows = sum(d["rows"] for d in result.datasets)
    summary = f"imported {rows} row(s) of {what} into {len(result.datasets)} dataset(s)"
    if result.bad_rows:
        summary += f"; skipped {result.bad_rows} bad row(s), listed in {result.report}"
    out.emit(result.as_dict(), summary, rows=result.datasets, title=f"import {what}")


@import_app.command("capture")
def capture(
    files: FilesArg,
    market: MarketOverride = None,
    symbol: SymbolOverride = None,
    tick_size: TickOpt = None,
    lot_size: LotOpt = None,
    skip_bad: SkipBadOpt = False,
    max_disorder: DisorderOpt = DEFAULT_MAX_DISORDER_MS,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Import raw Binance WebSocket captures ("<receive time> <JSON>" per line, plain or gzip).

    Trades -> trades, depth diffs -> book_diff, the REST snapshot -> book_snapshot, bookTickers
    -> quotes. Files that continue one another are one stream: give them in order.

    Example: botclave import capture usdm_btcusdt_20240808.gz usdm_btcusdt_20240809.gz
    """
    with run(json_, quiet) as out:
        _import(out, "capture", "capture", files, config=config, data_dir=data_dir,
                market=market, tick_size=tick_size, lot_size=lot_size, skip_bad=skip_bad,
                symbol=symbol, max_disorder_ms=max_disorder)


@import_app.command("binance-archive")
def binance_archive(
    files: FilesArg,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="trades | aggTrades | klines (default: from the file name)."),
    ] = None,
    timeframe: Annotated[
        str | None, typer.Option("--timeframe", help="Kline interval (default: from file name).")
    ] = None,
    market: MarketOverride = None,
    symbol: SymbolOverride = None,
    tick_size: TickOpt = None,
    lot_size: LotOpt = None,
    skip_bad: SkipBadOpt = False,
    max_disorder: DisorderOpt = DEFAULT_MAX_DISORDER_MS,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Import Binance public data CSV (data.binance.vision): trades, aggTrades, klines.

    Zipped or not, with or without header; ms or us times are detected per file and checked
    against the date in the file name.

    Example: botclave import binance-archive BTCUSDT-aggTrades-2024-08-08.zip --market spot
    """
    with run(json_, quiet) as out:
        _import(out, "binance-archive", "Binance archive", files, config=config,
                data_dir=data_dir, market=market, tick_size=tick_size, lot_size=lot_size,
                skip_bad=skip_bad, symbol=symbol, kind=kind, timeframe=timeframe,
                max_disorder_ms=max_disorder)


@import_app.command("tardis")
def tardis(
    files: FilesArg,
    exchange: Annotated[
        str | None, typer.Option("--exchange", "-e", help="ccxt exchange id (default: mapped).")
    ] = None,
    market: MarketOverride = None,
    symbol: SymbolOverride = None,
    qty_unit: Annotated[
        str | None,
        typer.Option("--qty-unit", help="base | contracts (default: contracts for inverse)."),
    ] = None,
    tick_size: TickOpt = None,
    lot_size: LotOpt = None,
    skip_bad: SkipBadOpt = False,
    max_disorder: DisorderOpt = DEFAULT_MAX_DISORDER_MS,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Import Tardis.dev CSV: trades, incremental_book_L2, book_snapshot_N, quotes.

    Example: botclave import tardis bitmex_trades_2020-03-01_XBTUSD.csv.gz --tick-size 0.5
    """
    with run(json_, quiet) as out:
        if qty_unit not in (None, "base", "contracts"):
            raise UsageError(f"--qty-unit {qty_unit!r}: expected base or contracts")
        _import(out, "tardis", "Tardis CSV", files, config=config, data_dir=data_dir,
                market=market, tick_size=tick_size, lot_size=lot_size, skip_bad=skip_bad,
                exchange=exchange, symbol=symbol, qty_unit=qty_unit,
                max_disorder_ms=max_disorder)


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
