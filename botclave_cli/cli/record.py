"""``botclave record``: capture live Binance streams into raw capture files and the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from botclave_cli.cli.common import (
    DEFAULT_DATA_DIR,
    ConfigOpt,
    DataDirOpt,
    ExchangeOpt,
    JsonOpt,
    MarketOpt,
    QuietOpt,
    SymbolOpt,
    check_market,
    run,
)
from botclave_cli.cli.depth import parse_duration_us
from botclave_cli.errors import ExchangeUnreachable, UsageError

StreamsOpt = Annotated[str, typer.Option("--streams", help="Comma list of trades, depth, quotes.")]
DurationOpt = Annotated[str | None, typer.Option(
    "--duration", help="Stop after this long (30s, 15m, 1h); default: until SIGINT/SIGTERM.")]
WsUrlOpt = Annotated[str | None, typer.Option(
    "--ws-url", help="Combined-stream endpoint (default: Binance's for the market).")]
RestUrlOpt = Annotated[str | None, typer.Option(
    "--rest-url", help="Scheme and host for REST snapshots (default: Binance's).")]
CaptureDirOpt = Annotated[Path | None, typer.Option(
    "--capture-dir", help="Raw capture files (default: <data dir>/captures/<exchange>).")]
FlushOpt = Annotated[str, typer.Option("--flush-every", help="Capture file append interval.")]
StoreEveryOpt = Annotated[str, typer.Option("--store-every", help="Store write interval.")]


def record(
    symbol: SymbolOpt,
    market: MarketOpt = "spot",
    exchange: ExchangeOpt = "binance",
    streams: StreamsOpt = "trades,depth,quotes",
    duration: DurationOpt = None,
    ws_url: WsUrlOpt = None,
    rest_url: RestUrlOpt = None,
    capture_dir: CaptureDirOpt = None,
    flush_every: FlushOpt = "5s",
    store_every: StoreEveryOpt = "60s",
    config: ConfigOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Record trades, depth diffs (+ REST snapshots on every resync) and bookTickers.

    Writes raw lines in the shared capture format and the store datasets (trades, book_snapshot,
    book_diff, quotes); reconnects with backoff, flushes on SIGINT/SIGTERM, and a restart
    continues the dataset. Example: botclave record --symbol BTC/USDT --market spot --streams
    trades,depth,quotes --duration 1h
    """
    with run(json_, quiet) as out:
        from botclave_cli.data.store import Store
        from botclave_cli.exchange.record_config import RecordConfig
        from botclave_cli.exchange.recorder import record as record_streams

        check_market(market)
        if exchange != "binance":
            raise UsageError(f"--exchange {exchange!r}: record supports binance")
        tick = lot = None
        if config is not None:
            from botclave_cli.config import load_exchange_config

            entry = load_exchange_config(config).symbol_config(symbol)
            if entry is not None:
                tick, lot = entry.tick_size, entry.lot_size
        cfg = RecordConfig(
            symbol=symbol, market=market,
            streams=tuple(s.strip() for s in streams.split(",") if s.strip()),
            duration_s=parse_duration_us(duration, "--duration") / 1e6 if duration else None,
            ws_url=ws_url, flush_every_s=parse_duration_us(flush_every, "--flush-every") / 1e6,
            store_every_s=parse_duration_us(store_every, "--store-every") / 1e6,
            tick_size=tick, lot_size=lot,
        )
        store = Store(data_dir)
        target = capture_dir or store.root / "captures" / exchange
        result = record_streams(store, cfg, capture_dir=target, rest_url=rest_url)
        data = vars(result)
        if not result.messages and result.errors:
            raise ExchangeUnreachable(f"no message received from {cfg.url()}: "
                                      f"{result.errors[-1]}")
        for warning in result.warnings:
            out.warn(warning)
        out.emit(data, f"{symbol}: {result.messages} messages, {result.snapshots} snapshot(s), "
                 f"{result.gaps} gap(s), {result.reconnects} reconnect(s), "
                 f"{result.rows_written} rows stored (seq {result.first_seq}..{result.next_seq}), "
                 f"stopped by {result.stopped_by or 'end of stream'}",
                 rows=[{k: v for k, v in data.items() if not isinstance(v, list)}], title="record")


def register(app: typer.Typer) -> None:
    app.command("record")(record)
