"""``botclave paper``: paper trading on the execution core (no keys, no orders sent).

``--replay`` feeds a stored range (like ``backtest``) or a raw capture (``--capture``) through
the live session's path: trades message by message, the strategy deciding each bar as it closes
(strategy/stream.py), paper fills by the backtester's rules. The run folder is a backtest's
(``botclave report --run``); its orders, fills, trades and equity equal ``botclave backtest`` on
the same data. ``--session ID`` without ``--replay`` runs on the live WebSocket
(live/session.py): the recorder's streams, the same trader, the run folder runs/paper-<ID>,
resumed from the store after a restart. ``paper status`` reads a session's status file (its
heartbeat) with a cron-friendly exit code; ``paper stop`` asks a session to stop cleanly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from botclave_cli.cli.common import (
    DEFAULT_DATA_DIR,
    ConfigOpt,
    DataDirOpt,
    FromOpt,
    JsonOpt,
    QuietOpt,
    ToOpt,
    parse_range,
    run,
)

paper_app = typer.Typer(no_args_is_help=False)


@paper_app.callback(invoke_without_command=True)
def paper(
    ctx: typer.Context,
    replay: Annotated[bool, typer.Option("--replay", help="Replay stored trades (or "
                                         "--capture) through the live path.")] = False,
    capture: Annotated[Path | None, typer.Option("--capture", help="A raw WebSocket capture "
                                                 "(record's .gz) to replay instead of the "
                                                 "store.")] = None,
    session: Annotated[str | None, typer.Option("--session", help="Live session id (its "
                                                "state resumes from the store after a "
                                                "restart).")] = None,
    duration: Annotated[str | None, typer.Option("--duration", help="Live: stop after this "
                                                 "long (30s, 15m, 1h).")] = None,
    write_every: Annotated[float, typer.Option("--write-every", help="Live: rewrite the "
                                               "run folder every this many seconds (the "
                                               "dashboard's Live tab reads it).")] = 10.0,
    ws_url: Annotated[str | None, typer.Option("--ws-url", help="Live: combined-stream "
                                               "endpoint (default Binance's).")] = None,
    rest_url: Annotated[str | None, typer.Option("--rest-url", help="Live: scheme and host "
                                                 "for REST snapshots.")] = None,
    store_every: Annotated[str, typer.Option("--store-every", help="Live: store write "
                                             "interval (what a kill -9 can lose).")] = "60s",
    flush_every: Annotated[str, typer.Option("--flush-every", help="Live: capture file "
                                             "append interval.")] = "5s",
    speed: Annotated[float | None, typer.Option("--speed", help="Times real time (1 = real "
                                                "time; default: as fast as possible).")]
    = None,
    config: ConfigOpt = None,
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="ccxt unified symbol.")]
    = "BTC/USDT",
    exchange: Annotated[str, typer.Option("--exchange", "-e", help="Exchange folder in the "
                                          "store (synth for the synthetic market).")]
    = "binance",
    market: Annotated[str, typer.Option("--market", "-m", help="spot | usdm | coinm.")]
    = "spot",
    start: FromOpt = None,
    end: ToOpt = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a parameter: key=value (repeatable).")] = None,
    tick_size: Annotated[float | None, typer.Option("--tick-size", help="With --capture: "
                                                    "the symbol's tick.")] = None,
    lot_size: Annotated[float | None, typer.Option("--lot-size", help="With --capture: "
                                                   "the symbol's lot.")] = None,
    exchange_config: Annotated[Path | None, typer.Option(
        "--exchange-config", help="Fees and tick/lot (default configs/exchange_config.yaml).")]
    = None,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Results go to <out-dir>/runs/"
                                          "<run id>/.")] = Path("reports"),
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Paper-trade the strategy live (--session) or replay stored trades or a capture.

    Example: botclave paper --session s1 --symbol BTC/USDT --market spot --duration 1h

    Example: botclave paper --replay --exchange synth --symbol BTC/USDT --from 2024-01-01
    --to 2024-01-02

    Example: botclave paper --replay --capture spot_btcusdt_20240808.gz --tick-size 0.01
    --lot-size 0.00001 --set bars.timeframe=5s

    Example: botclave paper status --session s1 --json
    """
    if ctx.invoked_subcommand is not None:
        return
    with run(json_, quiet) as out:
        from botclave_cli.backtest.backtester import Backtester
        from botclave_cli.backtest.results import write_results
        from botclave_cli.config import load_exchange_config, load_model
        from botclave_cli.data.store import Store, find_trades
        from botclave_cli.errors import DataError, UsageError
        from botclave_cli.live.paper import PaperTrader
        from botclave_cli.live.replay import replay_capture, replay_trades
        from botclave_cli.strategy.params import StrategyParams, params_with_overrides

        params = load_model(config, StrategyParams) if config else StrategyParams()
        ex_cfg = load_exchange_config(exchange_config)
        if set_:
            params = params_with_overrides(params, set_)
        if not replay:
            if session is None:
                raise UsageError("a live paper session needs --session ID (or use --replay)")
            if not write_every > 0:
                raise UsageError(f"--write-every {write_every}: must be > 0 seconds")
            from botclave_cli.cli.depth import parse_duration_us
            from botclave_cli.exchange.record_config import RecordConfig
            from botclave_cli.exchange.recorder import ccxt_snapshot_fetcher
            from botclave_cli.live.session import run_paper_session

            entry = ex_cfg.symbol_config(symbol)
            cfg = RecordConfig(symbol=symbol, market=market, ws_url=ws_url,
                               duration_s=parse_duration_us(duration, "--duration") / 1e6
                               if duration else None,
                               tick_size=entry.tick_size if entry else tick_size,
                               lot_size=entry.lot_size if entry else lot_size,
                               store_every_s=parse_duration_us(store_every, "--store-every")
                               / 1e6,
                               flush_every_s=parse_duration_us(flush_every, "--flush-every")
                               / 1e6)
            store = Store(data_dir)
            tester = Backtester(params, ex_cfg, symbol=symbol, tick_size=cfg.tick_size,
                                lot_size=cfg.lot_size, market=market)
            from botclave_cli.live.alerts.configure import alerter_from_config

            paper_session, folder = run_paper_session(
                store, cfg, tester, data_dir=data_dir, out_dir=out_dir, session=session,
                capture_dir=store.root / "captures" / "binance",
                fetch_snapshot=ccxt_snapshot_fetcher(market, rest_url),
                alerter=alerter_from_config(ex_cfg.alerts, session=session),
                write_every_s=write_every)
            if folder is None:
                raise DataError(f"paper session {session}: no trade received from {cfg.url()}")
            m = paper_session.trader.result().metrics
            out.emit({"session": session, "folder": str(folder), "metrics": m,
                      "messages": paper_session.messages,
                      "late_trades": paper_session.trader.late_trades},
                     f"paper session {session}: {m['trades']} trade(s), total return "
                     f"{m['total_return']:+.4%} -> {folder}")
            return
        if capture is not None:
            if not capture.exists():
                raise UsageError(f"--capture {capture}: file not found")
            tester = Backtester(params, ex_cfg, symbol=symbol, tick_size=tick_size,
                                lot_size=lot_size, market=market)
            trader = PaperTrader(tester)
            if replay_capture(trader, capture, speed=speed) == 0:
                raise DataError(f"{capture}: no trade message to replay")
            source = str(capture)
        else:
            store = Store(data_dir)
            lo, hi = parse_range(start, end)
            ref = find_trades(store, exchange, market, symbol, None)
            trades = store.scan(ref, lo, hi).select("ts", "price", "qty", "side").collect()
            if trades.height == 0:
                raise DataError(f"no trades in {ref} for the range given")
            manifest = store.manifest(ref)
            tester = Backtester(params, ex_cfg, symbol=symbol,
                                tick_size=manifest.tick_size if manifest else tick_size,
                                lot_size=manifest.lot_size if manifest else lot_size,
                                market=market)
            trader = PaperTrader(tester)
            replay_trades(trader, trades.sort("ts", maintain_order=True), speed=speed)
            source = str(ref)
        result = trader.result()
        rid, folder = write_results(result, out_dir, extra={"dataset": source,
                                                            "exchange": exchange,
                                                            "market": market, "paper": True})
        m = result.metrics
        out.emit({"run_id": rid, "folder": str(folder), "metrics": m,
                  "final_equity": result.final_equity},
                 f"paper run {rid}: {m['trades']} trade(s), total return "
                 f"{m['total_return']:+.4%} -> {folder}")


SessionOpt = Annotated[str, typer.Option("--session", help="The session id.")]


@paper_app.command("status")
def status(
    session: SessionOpt,
    max_age: Annotated[float, typer.Option("--max-age", help="Seconds without a heartbeat "
                                           "after which the session counts as gone.")] = 30.0,
    max_event_age: Annotated[float, typer.Option("--max-event-age", help="Seconds without a "
                                                 "market message after which its data counts "
                                                 "as stale (exit 3).")] = 60.0,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Show a session's state, connection, last event age, position, open orders and PnL.

    Exit code for cron: 0 running and current, 1 stopped, halted or not responding, 3 its market
    data is stale.

    Example: botclave paper status --session s1 --json
    """
    with run(json_, quiet) as out:
        import time

        from botclave_cli.live.status import read_status, report

        code, body, line = report(read_status(data_dir, session), int(time.time() * 1000),
                                  max_age, max_event_age)
        out.emit(body, line)
    if code:
        raise typer.Exit(code)


@paper_app.command("stop")
def stop(
    session: SessionOpt,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Ask a running session to stop cleanly (as SIGTERM): it closes the open bar, writes its
    run folder and its status "stopped".

    Example: botclave paper stop --session s1
    """
    with run(json_, quiet) as out:
        from botclave_cli.live.status import request_stop

        path = request_stop(data_dir, session)
        out.emit({"session": session, "request": str(path)},
                 f"stop requested for session {session} ({path})")


def register(app: typer.Typer) -> None:
    app.add_typer(paper_app, name="paper")
