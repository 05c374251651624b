"""A trading session's order manager: where its journal lives, which exchange it reaches.

The journal is ``<data dir>/sessions/<session>/journal.sqlite``. The testnet is the default:
the mainnet needs BOTH ``testnet: false`` in exchange_config.yaml and ``live=True`` (the CLI's
``--live``), and keys from the environment (BOTCLAVE_<EXCHANGE>_API_KEY / _SECRET) in either
case; a missing piece is named in the error. Client ids of the session start
``bc-<session tag>-`` (model.client_order_id).
"""

from __future__ import annotations

import re
from pathlib import Path

from botclave_cli.config import ExchangeConfig
from botclave_cli.errors import UsageError
from botclave_cli.exchange.connector import Clock, Connector
from botclave_cli.exchange.orders.journal import Journal
from botclave_cli.exchange.orders.manager import OrderManager
from botclave_cli.exchange.orders.model import session_tag
from botclave_cli.secrets import env_credentials

SESSION_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def journal_path(data_dir: Path, session: str) -> Path:
    if not SESSION_ID.match(session):
        raise UsageError(f"--session {session!r}: expected 1-64 characters of A-Z a-z 0-9 . _ -")
    return data_dir / "sessions" / session / "journal.sqlite"


def client_prefix(session: str) -> str:
    return f"bc-{session_tag(session)}-"


def open_manager(config: ExchangeConfig, data_dir: Path, session: str, *, live: bool = False,
                 environ: dict[str, str] | None = None, clock: Clock | None = None
                 ) -> OrderManager:
    """The session's OrderManager (module docstring)."""
    mainnet = not config.testnet
    if mainnet and not live:
        raise UsageError("exchange_config.yaml says testnet: false but --live was not given; "
                         "orders go to the mainnet only with both")
    if live and not mainnet:
        raise UsageError("--live needs testnet: false in exchange_config.yaml")
    creds = env_credentials(config.exchange, environ)
    if creds is None:
        prefix = f"BOTCLAVE_{config.exchange.upper()}_"
        raise UsageError(f"orders need credentials: set {prefix}API_KEY and {prefix}SECRET in "
                         f"the environment ({'mainnet' if mainnet else 'testnet'} keys)")
    conn = Connector(config, credentials=creds, sandbox=not mainnet, clock=clock)
    conn.load_markets()
    return OrderManager(conn, Journal(journal_path(data_dir, session),
                                      sync=config.orders.journal_sync))
