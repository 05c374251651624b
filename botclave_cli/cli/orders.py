"""``botclave orders``: place, cancel, list and reconcile real orders of a trading session.

The testnet is the default; the mainnet needs ``testnet: false`` in exchange_config.yaml AND
``--live``. Keys come from BOTCLAVE_BINANCE_API_KEY / BOTCLAVE_BINANCE_SECRET only. Every event
goes to the session's journal (<data dir>/sessions/<session>/journal.sqlite).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from botclave_cli.cli.common import (
    DEFAULT_DATA_DIR,
    ConfigOpt,
    DataDirOpt,
    JsonOpt,
    MarketOpt,
    QuietOpt,
    SymbolOpt,
    run,
)

orders_app = typer.Typer(help="Real orders through ccxt, journaled per session (testnet by "
                         "default).\n\nExample: botclave orders list --session s1 --open",
                         no_args_is_help=True)

SessionOpt = Annotated[str, typer.Option("--session", help="Trading session id (its journal "
                                         "is <data dir>/sessions/<id>/journal.sqlite).")]
LiveOpt = Annotated[bool, typer.Option("--live", help="Use the mainnet (also needs testnet: "
                                       "false in exchange_config.yaml).")]


def _manager(config, market: str | None, data_dir, session: str, live: bool):
    from botclave_cli.config import ExchangeConfig, load_model
    from botclave_cli.exchange.orders.session import open_manager

    cfg = load_model(config, ExchangeConfig) if config else ExchangeConfig()
    if market is not None:
        cfg = cfg.model_copy(update={"market": market})
    return open_manager(cfg, data_dir, session, live=live)


def _row(o) -> dict[str, Any]:
    r = o.request
    return {"client_id": o.client_id, "symbol": o.symbol, "side": r.side if r else None,
            "type": r.type if r else None, "qty": r.qty if r else None,
            "price": r.price if r else None, "status": str(o.status),
            "filled": o.filled, "exchange_id": o.exchange_id, "fees": o.fees}


@orders_app.command("place")
def place(
    session: SessionOpt,
    symbol: SymbolOpt = "BTC/USDT",
    side: Annotated[str, typer.Option("--side", help="buy | sell.")] = "buy",
    type_: Annotated[str, typer.Option("--type", help="market | limit | stop_market | "
                                       "take_profit_market | stop_limit | take_profit_limit.")]
    = "limit",
    qty: Annotated[float | None, typer.Option("--qty", help="Base units (contracts on "
                                              "COIN-M).")] = None,
    price: Annotated[float | None, typer.Option("--price", help="Limit price.")] = None,
    stop_price: Annotated[float | None, typer.Option("--stop-price", help="Trigger price.")]
    = None,
    tif: Annotated[str, typer.Option("--tif", help="GTC | IOC | FOK.")] = "GTC",
    post_only: Annotated[bool, typer.Option("--post-only", help="Maker only.")] = False,
    reduce_only: Annotated[bool, typer.Option("--reduce-only", help="Futures.")] = False,
    signal: Annotated[int, typer.Option("--signal", help="Signal number (client id).")] = 0,
    leg: Annotated[str, typer.Option("--leg", help="entry | exit | stop | target.")] = "entry",
    market: MarketOpt = "spot",
    config: ConfigOpt = None,
    live: LiveOpt = False,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Place one order (once: the same --session/--signal/--leg never places a second).

    Example: botclave orders place --session s1 --symbol BTC/USDT --side buy --type limit
    --qty 0.001 --price 60000
    """
    with run(json_, quiet) as out:
        from pydantic import ValidationError

        from botclave_cli.errors import UsageError
        from botclave_cli.exchange.orders.model import OrderRequest, client_order_id

        try:
            request = OrderRequest(client_id=client_order_id(session, signal, leg),
                                   symbol=symbol, side=side, type=type_, qty=qty, price=price,
                                   stop_price=stop_price, time_in_force=tif,
                                   post_only=post_only, reduce_only=reduce_only)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "order"
            raise UsageError(f"order: {where}: {first['msg']}") from None
        manager = _manager(config, market, data_dir, session, live)
        result = manager.place(request)
        row = _row(result.order)
        out.emit({"order": row, "sent": result.sent},
                 f"{row['client_id']} {row['status']} (filled {row['filled']:g})", [row])


@orders_app.command("cancel")
def cancel(
    client_id: Annotated[str, typer.Argument(help="The order's client id.")],
    session: SessionOpt,
    market: MarketOpt = "spot",
    config: ConfigOpt = None,
    live: LiveOpt = False,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Cancel an open order of the session.

    Example: botclave orders cancel bc-3f2a1c-0000000000-en --session s1
    """
    with run(json_, quiet) as out:
        from botclave_cli.errors import UsageError

        manager = _manager(config, market, data_dir, session, live)
        if manager.journal.order(client_id) is None:
            raise UsageError(f"{client_id}: not an order of session {session}")
        row = _row(manager.cancel(client_id))
        out.emit({"order": row}, f"{client_id} {row['status']}", [row])


@orders_app.command("list")
def list_(
    session: SessionOpt,
    open_only: Annotated[bool, typer.Option("--open", help="Only open orders.")] = False,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """The session's orders as its journal says (no exchange call, no keys).

    Example: botclave orders list --session s1 --open --json
    """
    with run(json_, quiet) as out:
        from botclave_cli.errors import UsageError
        from botclave_cli.exchange.orders.journal import Journal
        from botclave_cli.exchange.orders.session import journal_path

        path = journal_path(data_dir, session)
        if not path.exists():
            raise UsageError(f"--session {session}: no journal at {path}")
        orders = [o for o in Journal(path).orders().values() if o.is_open or not open_only]
        rows = [_row(o) for o in orders]
        out.emit({"orders": rows}, f"{len(rows)} order(s) in session {session}", rows)


def _journal(data_dir: Path, session: str) -> Any:
    from botclave_cli.errors import UsageError
    from botclave_cli.exchange.orders.journal import Journal
    from botclave_cli.exchange.orders.session import journal_path

    path = journal_path(data_dir, session)
    if not path.exists():
        raise UsageError(f"--session {session}: no journal at {path}")
    return Journal(path)


EVENT_FIELDS = ("seq", "ts_ms", "client_id", "kind", "status", "exchange_id", "qty", "price",
                "filled", "fee", "fee_asset", "trade_id", "reason")


@orders_app.command("show")
def show(
    client_id: Annotated[str, typer.Argument(help="The order's client id.")],
    session: SessionOpt,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """One order from the journal: its request, state, fills and every event (no keys).

    Example: botclave orders show bc-abc123-0000000001-en --session s1 --json
    """
    with run(json_, quiet) as out:
        from botclave_cli.errors import UsageError

        journal = _journal(data_dir, session)
        order = journal.order(client_id)
        if order is None:
            raise UsageError(f"order {client_id}: not in the journal of session {session}")
        events = [{k: e[k] for k in EVENT_FIELDS} for e in journal.events(client_id)]
        body = {**_row(order), "request": order.request.model_dump() if order.request else None,
                "fills": [f.__dict__ for f in order.fills], "events": events}
        out.emit(body, f"{client_id}: {order.status.value}, filled {order.filled:g}, "
                       f"{len(events)} event(s)", events)


@orders_app.command("history")
def history(
    session: SessionOpt,
    client_id: Annotated[str | None, typer.Option("--order", help="Only this order's "
                                                  "events.")] = None,
    last: Annotated[int | None, typer.Option("--last", help="Only the last N events.")] = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """The journal's events in order: the session's audit trail (raw answers left out).

    Example: botclave orders history --session s1 --last 50 --json
    """
    with run(json_, quiet) as out:
        journal = _journal(data_dir, session)
        events = [{k: e[k] for k in EVENT_FIELDS} for e in journal.events(client_id)]
        if last is not None:
            events = events[-last:]
        out.emit({"events": events}, f"{len(events)} event(s) in session {session}", events)


@orders_app.command("reconcile")
def reconcile(
    session: SessionOpt,
    symbol: Annotated[list[str], typer.Option("--symbol", "-s", help="Symbol(s) to settle.")],
    market: MarketOpt = "spot",
    config: ConfigOpt = None,
    live: LiveOpt = False,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Settle the journal against the exchange: adopt, settle, flag, catch up fills.

    Example: botclave orders reconcile --session s1 --symbol BTC/USDT --json
    """
    with run(json_, quiet) as out:
        from botclave_cli.exchange.orders.reconcile import reconcile as settle
        from botclave_cli.exchange.orders.session import client_prefix

        manager = _manager(config, market, data_dir, session, live)
        report = settle(manager, symbol, client_prefix(session))
        lines = report.lines()
        out.emit(report.as_dict(), "; ".join(lines[-1:]),
                 [{"what": line} for line in lines])


def register(app: typer.Typer) -> None:
    app.add_typer(orders_app, name="orders")
