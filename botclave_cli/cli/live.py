"""``botclave live``: the paper session's loop with the core's fills mirrored to the exchange
through the order manager (live/live_session.py). Testnet unless exchange_config.yaml says
``testnet: false`` AND ``--live`` is given; keys from the environment in either case.
``live status`` / ``live stop`` are ``paper status`` / ``paper stop`` on a live session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from botclave_cli.cli.common import DEFAULT_DATA_DIR, ConfigOpt, DataDirOpt, JsonOpt, QuietOpt, run
from botclave_cli.cli.paper import status as paper_status
from botclave_cli.cli.paper import stop as paper_stop

live_app = typer.Typer(no_args_is_help=False)


@live_app.callback(invoke_without_command=True)
def live(
    ctx: typer.Context,
    session: Annotated[str | None, typer.Option("--session", help="Session id (journal, "
                                                "status and run folder live-<ID>).")] = None,
    live_: Annotated[bool, typer.Option("--live", help="The mainnet (also needs testnet: "
                                        "false in the exchange config).")] = False,
    flatten: Annotated[bool, typer.Option("--flatten-on-stop", help="Close the position with "
                                          "a market order when the session stops.")] = False,
    protect: Annotated[bool, typer.Option("--protect/--no-protect", help="Exchange-side stop "
                                          "and target for every position.")] = True,
    duration: Annotated[str | None, typer.Option("--duration", help="Stop after this long "
                                                 "(30s, 15m, 1h).")] = None,
    ws_url: Annotated[str | None, typer.Option("--ws-url", help="Combined-stream endpoint "
                                               "(default Binance's).")] = None,
    rest_url: Annotated[str | None, typer.Option("--rest-url", help="Scheme and host for REST "
                                                 "book snapshots.")] = None,
    config: ConfigOpt = None,
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="ccxt unified symbol.")]
    = "BTC/USDT",
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a parameter: key=value (repeatable).")] = None,
    exchange_config: Annotated[Path | None, typer.Option(
        "--exchange-config", help="Exchange, testnet flag, limits, alerts (default "
        "configs/exchange_config.yaml).")] = None,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Results go to <out-dir>/runs/"
                                          "live-<ID>/.")] = Path("reports"),
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Trade the strategy live: the paper session's decisions, real orders (testnet default).

    Example: botclave live --session l1 --symbol BTC/USDT --duration 1h --flatten-on-stop

    Example: botclave live status --session l1 --json
    """
    if ctx.invoked_subcommand is not None:
        return
    with run(json_, quiet) as out:
        from botclave_cli.backtest.backtester import Backtester
        from botclave_cli.cli.depth import parse_duration_us
        from botclave_cli.config import load_exchange_config, load_model
        from botclave_cli.data.store import Store
        from botclave_cli.errors import DataError, UsageError
        from botclave_cli.exchange.orders.session import open_manager
        from botclave_cli.exchange.record_config import RecordConfig
        from botclave_cli.exchange.recorder import ccxt_snapshot_fetcher
        from botclave_cli.live.alerts.configure import alerter_from_config
        from botclave_cli.live.live_session import run_live_session
        from botclave_cli.strategy.params import StrategyParams, params_with_overrides

        if session is None:
            raise UsageError("botclave live needs --session ID")
        params = load_model(config, StrategyParams) if config else StrategyParams()
        if set_:
            params = params_with_overrides(params, set_)
        ex_cfg = load_exchange_config(exchange_config)
        manager = open_manager(ex_cfg, data_dir, session, live=live_)
        unified = manager.connector.resolve_symbol(symbol)
        market = manager.exchange.markets[unified]
        tick = float(market["precision"]["price"])
        lot = float(market["precision"]["amount"])
        cfg = RecordConfig(symbol=symbol, market=ex_cfg.market, ws_url=ws_url,
                           duration_s=parse_duration_us(duration, "--duration") / 1e6
                           if duration else None, tick_size=tick, lot_size=lot)
        tester = Backtester(params, ex_cfg, symbol=symbol, tick_size=tick, lot_size=lot,
                            market=ex_cfg.market)
        store = Store(data_dir)
        live_session, folder = run_live_session(
            manager, flatten=flatten, protect=protect, store=store, cfg=cfg, tester=tester,
            data_dir=data_dir, out_dir=out_dir, session=session,
            capture_dir=store.root / "captures" / ex_cfg.exchange,
            fetch_snapshot=ccxt_snapshot_fetcher(ex_cfg.market, rest_url),
            alerter=alerter_from_config(ex_cfg.alerts, session=session))
        if folder is None:
            raise DataError(f"live session {session}: no trade received from {cfg.url()}")
        stats = live_session.mirror.stats
        out.emit({"session": session, "folder": str(folder), "orders_sent": stats.placed,
                  "protections": stats.protections, "refused": stats.refused,
                  "position": live_session.mirror.position(),
                  "testnet": manager.connector.sandbox},
                 f"live session {session} ({'testnet' if manager.connector.sandbox else 'MAINNET'}"
                 f"): {stats.placed} order(s) sent, {stats.protections} protection(s), position "
                 f"{live_session.mirror.position():g} -> {folder}")


@live_app.command("status")
def status(
    session: Annotated[str, typer.Option("--session", help="The session id.")],
    max_age: Annotated[float, typer.Option("--max-age", help="Seconds without a heartbeat "
                                           "after which the session counts as gone.")] = 30.0,
    max_event_age: Annotated[float, typer.Option("--max-event-age", help="Seconds without a "
                                                 "market message: stale data (exit 3).")]
    = 60.0,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Show a live session's state, connection, position, open orders and PnL (exit 0 running
    and current, 1 stopped, halted or not responding, 3 stale market data).

    Example: botclave live status --session l1 --json
    """
    paper_status(session, max_age, max_event_age, data_dir, json_, quiet)


@live_app.command("stop")
def stop(
    session: Annotated[str, typer.Option("--session", help="The session id.")],
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Kill switch: ask a live session to stop; it cancels its open orders (and flattens with
    --flatten-on-stop) before it exits, as on SIGTERM.

    Example: botclave live stop --session l1
    """
    paper_stop(session, data_dir, json_, quiet)


def register(app: typer.Typer) -> None:
    app.add_typer(live_app, name="live")
