"""``botclave fetch trades|ohlcv|book|funding|my-trades``: exchange data into the store via ccxt."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from botclave_cli.cli.common import (
    DEFAULT_DATA_DIR,
    ConfigOpt,
    DataDirOpt,
    FromOpt,
    JsonOpt,
    Output,
    QuietOpt,
    SymbolOpt,
    ToOpt,
    check_market,
    parse_range,
    run,
)
from botclave_cli.cli.defaults import DEFAULT_CHUNK_ROWS
from botclave_cli.errors import UsageError
from botclave_cli.secrets import env_credentials

if TYPE_CHECKING:  # the library is imported in the commands (cli/defaults.py says why)
    from botclave_cli.config import ExchangeConfig
    from botclave_cli.exchange.writer import FetchResult

fetch_app = typer.Typer(
    help=(
        "Fetch exchange data through ccxt into the dataset store (resumable, gap-checked).\n\n"
        "Example: botclave fetch trades --symbol BTC/USDT --from 2024-08-08 --to 2024-08-09"
    ),
    no_args_is_help=True,
)

ExchangeOpt = Annotated[
    str | None, typer.Option("--exchange", "-e", help="ccxt exchange id (default: the config's).")
]
MarketOpt = Annotated[
    str | None, typer.Option("--market", "-m", help="spot | usdm | coinm (default: the config's).")
]
ChunkOpt = Annotated[
    int, typer.Option("--chunk-rows", min=1, help="Rows per store write (a resumable step).")
]


def _setup(config: Path | None, exchange: str | None, market: str | None) -> ExchangeConfig:
    from botclave_cli.config import load_exchange_config

    cfg = load_exchange_config(config)
    if exchange is not None:
        cfg = cfg.model_copy(update={"exchange": exchange})
    if market is not None:
        cfg = cfg.model_copy(update={"market": check_market(market)})
    return cfg


def _start(start: str | None, end: str | None) -> tuple[dt.datetime, dt.datetime | None]:
    lo, hi = parse_range(start, end)
    if lo is None:
        raise UsageError("--from is required (ISO date or datetime, UTC)")
    return lo, hi


def _credentials(exchange: str, why: str) -> tuple[str, str]:
    found = env_credentials(exchange)
    if found is None:
        prefix = f"BOTCLAVE_{exchange.upper()}_"
        raise UsageError(f"{why} needs credentials: set {prefix}API_KEY and {prefix}SECRET in "
                         "the environment")
    return found


def _emit(out: Output, result: FetchResult) -> None:
    rows = [{"dataset": result.dataset, "new rows": result.rows_new,
             "rows": result.rows_total, "gaps": len(result.gaps),
             "requests": result.requests, "retries": result.retries}]
    out.emit(result.as_dict(), result.summary(), rows=rows, title="fetch")
    if result.gaps:
        first = result.gaps[0]
        out.warn(f"{result.dataset}: {len(result.gaps)} gap(s) recorded in the manifest; first: "
                 f"{first.kind} {first.start}..{first.end} ({first.detail})")


@fetch_app.command("trades")
def trades(
    symbol: SymbolOpt,
    start: FromOpt = None,
    end: ToOpt = None,
    raw: Annotated[bool, typer.Option("--raw", help="Single trades (historicalTrades, needs an "
                                      "API key) instead of aggregate trades.")] = False,
    exchange: ExchangeOpt = None,
    market: MarketOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    chunk_rows: ChunkOpt = DEFAULT_CHUNK_ROWS,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Trades in [from, to): aggregate trades (kind agg_trades), or --raw trades (kind trades).

    Pages by trade id; a rerun resumes where the dataset's coverage ends.

    Example: botclave fetch trades --symbol BTC/USDT --from 2024-08-08 --to 2024-08-09
    """
    from botclave_cli.data.store import Store
    from botclave_cli.exchange.connector import Connector
    from botclave_cli.exchange.trades import fetch_trades

    with run(json_, quiet) as out:
        cfg = _setup(config, exchange, market)
        lo, hi = _start(start, end)
        creds = _credentials(cfg.exchange, "fetch trades --raw") if raw else None
        conn = Connector(cfg, credentials=creds, sandbox=False)
        result = fetch_trades(conn, Store(data_dir), symbol, lo, hi, raw=raw,
                              chunk_rows=chunk_rows, progress=out.progress())
        _emit(out, result)


@fetch_app.command("ohlcv")
def ohlcv(
    symbol: SymbolOpt,
    start: FromOpt = None,
    end: ToOpt = None,
    timeframe: Annotated[str, typer.Option("--timeframe", "-t", help="Candle length.")] = "1m",
    exchange: ExchangeOpt = None,
    market: MarketOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    chunk_rows: ChunkOpt = DEFAULT_CHUNK_ROWS,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Closed candles with open time in [from, to) (kind ohlcv, level timeframe=).

    Example: botclave fetch ohlcv --symbol BTC/USDT --timeframe 1m --from 2024-08-01 --to 2024-08-09
    """
    from botclave_cli.data.store import Store
    from botclave_cli.exchange.connector import Connector
    from botclave_cli.exchange.series import fetch_ohlcv

    with run(json_, quiet) as out:
        cfg = _setup(config, exchange, market)
        lo, hi = _start(start, end)
        conn = Connector(cfg)
        result = fetch_ohlcv(conn, Store(data_dir), symbol, lo, hi, timeframe=timeframe,
                             chunk_rows=chunk_rows, progress=out.progress())
        _emit(out, result)


@fetch_app.command("book")
def book(
    symbol: SymbolOpt,
    limit: Annotated[int, typer.Option("--limit", help="Levels per side (spot 1-5000; futures "
                                       "5, 10, 20, 50, 100, 500 or 1000).")] = 100,
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="Number of snapshots.")] = 1,
    interval: Annotated[float, typer.Option("--interval", min=0.0,
                                            help="Seconds between snapshots.")] = 1.0,
    exchange: ExchangeOpt = None,
    market: MarketOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """REST order-book snapshot(s) now (kind book_snapshot); continuous books come from record.

    Example: botclave fetch book --symbol BTC/USDT --limit 1000 --repeat 10 --interval 6
    """
    from botclave_cli.data.store import Store
    from botclave_cli.exchange.connector import Connector
    from botclave_cli.exchange.series import fetch_book

    with run(json_, quiet) as out:
        cfg = _setup(config, exchange, market)
        conn = Connector(cfg)
        result = fetch_book(conn, Store(data_dir), symbol, limit=limit, repeat=repeat,
                            interval_s=interval, progress=out.progress())
        _emit(out, result)


@fetch_app.command("funding")
def funding(
    symbol: SymbolOpt,
    start: FromOpt = None,
    end: ToOpt = None,
    exchange: ExchangeOpt = None,
    market: MarketOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Funding-rate history of a perpetual in [from, to) (kind funding; usdm or coinm).

    Example: botclave fetch funding --market usdm --symbol BTC/USDT:USDT --from 2024-01-01
    """
    from botclave_cli.data.store import Store
    from botclave_cli.exchange.connector import Connector
    from botclave_cli.exchange.series import fetch_funding

    with run(json_, quiet) as out:
        cfg = _setup(config, exchange, market)
        lo, hi = _start(start, end)
        conn = Connector(cfg)
        result = fetch_funding(conn, Store(data_dir), symbol, lo, hi, progress=out.progress())
        _emit(out, result)


@fetch_app.command("my-trades")
def my_trades(
    symbol: SymbolOpt,
    start: FromOpt = None,
    end: ToOpt = None,
    exchange: ExchangeOpt = None,
    market: MarketOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Your own trades in [from, to) (kind my_trades; the testnet unless testnet: false).

    Credentials come only from BOTCLAVE_BINANCE_API_KEY and BOTCLAVE_BINANCE_SECRET.

    Example: botclave fetch my-trades --symbol BTC/USDT --from 2024-08-01
    """
    from botclave_cli.data.store import Store
    from botclave_cli.exchange.connector import Connector
    from botclave_cli.exchange.series import fetch_my_trades

    with run(json_, quiet) as out:
        cfg = _setup(config, exchange, market)
        lo, hi = _start(start, end)
        creds = _credentials(cfg.exchange, "fetch my-trades")
        conn = Connector(cfg, credentials=creds)
        result = fetch_my_trades(conn, Store(data_dir), symbol, lo, hi,
                                 account="testnet" if cfg.testnet else "live",
                                 progress=out.progress())
        _emit(out, result)


def register(app: typer.Typer) -> None:
    app.add_typer(fetch_app, name="fetch")
