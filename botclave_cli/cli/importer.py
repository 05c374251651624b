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
    from botclave_cli.data.importers.imports import CaptureImport
    from botclave_cli.data.importers.writer import ImportResult

import_app = typer.Typer(
    help=(
        "Import Binance WebSocket captures, Binance public archives and Tardis.dev CSV.\n\n"
        "Example: botclave import capture usdm_btcusdt_20240808.gz"
    ),
    no_args_is_help=True,
)

FilesArg = Annotated[list[Path], typer.Argument(help="Input files, read in the order given.")]
CaptureArgs = Annotated[
    list[str],
    typer.Argument(
        help="Capture files, folders (every .gz/.txt/.jsonl/.json/.log/.zip under them) or "
        "glob patterns; grouped by stream, each stream's files in time order.",
    ),
]
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
#: ms without a message between two files that is a gap (kept equal to
#: ``botclave_cli.data.importers.capture_streams.DEFAULT_MAX_FILE_GAP_MS`` by a test; light here
#: for the reason cli/defaults.py gives)
DEFAULT_MAX_FILE_GAP_MS = 1000
FileGapOpt = Annotated[
    float,
    typer.Option(
        "--max-file-gap",
        help="Ms without any message between two files of a stream that is a gap.",
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
    files: CaptureArgs,
    market: MarketOverride = None,
    symbol: SymbolOverride = None,
    tick_size: TickOpt = None,
    lot_size: LotOpt = None,
    skip_bad: SkipBadOpt = False,
    max_disorder: DisorderOpt = DEFAULT_MAX_DISORDER_MS,
    max_file_gap: FileGapOpt = DEFAULT_MAX_FILE_GAP_MS,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Import raw Binance WebSocket captures ("<receive time> <JSON>" per line, plain or gzip).

    Trades -> trades, depth diffs -> book_diff, the REST snapshot -> book_snapshot, bookTickers
    -> quotes. Files are grouped by stream (market + symbol, from their messages); each stream's
    files are read in time order as one capture, messages repeated by overlapping files once.

    Example: botclave import capture captures/  (or: captures/*.gz, or one file)
    """
    from botclave_cli.config import load_exchange_config
    from botclave_cli.data.importers.files import CAPTURE_SUFFIXES, expand_paths
    from botclave_cli.data.importers.imports import import_capture
    from botclave_cli.data.importers.writer import finite
    from botclave_cli.data.store import Store

    with run(json_, quiet) as out:
        if market is not None:
            check_market(market)
        exchange_config = load_exchange_config(config)
        result = import_capture(
            Store(data_dir),
            expand_paths(files, CAPTURE_SUFFIXES),
            progress=out.progress(),
            market=market,
            symbol=symbol,
            config=exchange_config,
            tick_size=finite(tick_size, "--tick-size"),
            lot_size=finite(lot_size, "--lot-size"),
            skip_bad=skip_bad,
            max_disorder_ms=max_disorder,
            max_file_gap_ms=max_file_gap,
        )
        _emit_streams(out, result)


def _emit_streams(out: Output, result: CaptureImport) -> None:
    """One line per stream (rows, days, gaps, bad rows), then the totals."""
    for warning in result.warnings:
        out.warn(warning)
    rows, lines = [], []
    for stream in result.streams:
        s = stream.summary()
        days = s["days"]
        span = f" ({days[0]}..{days[-1]})" if len(days) > 1 else f" ({days[0]})" if days else ""
        lines.append(
            f"{s['market']} {s['symbol']}: {s['rows']} row(s), {len(days)} day(s){span}, "
            f"{s['gaps']} gap(s), {s['bad_rows']} bad row(s), {s['files']} file(s)"
            + (f", {s['repeated_lines']} repeated line(s) read once" if s["repeated_lines"] else "")
        )
        rows.append({k: s[k] for k in ("market", "symbol", "files", "rows", "gaps", "bad_rows")}
                    | {"days": len(days)})
    total = sum(r["rows"] for r in rows)
    summary = (f"imported {total} row(s) of capture from {len(rows)} stream(s) into "
               f"{len(result.datasets)} dataset(s)")
    if result.bad_rows:
        reports = ", ".join(str(s.report) for s in result.streams if s.report)
        summary += f"; skipped {result.bad_rows} bad row(s), listed in {reports}"
    out.emit(result.as_dict(), "\n".join([*lines, summary]), rows=rows, title="import capture")


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
