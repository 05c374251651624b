"""A running session's status file: its heartbeat, what ``paper status`` / ``live status`` show.

The session rewrites ``<data dir>/sessions/<session>/status.json`` atomically about once a
second (the heartbeat): state (running, halted, stopped), the halt's reason, connection state
and reconnects, the receive time of the last market message, equity and PnL, the position and
the working orders. ``status`` reads it, adds the ages (heartbeat, last event) and gives the
exit code a cron job checks: 0 running and current; 1 not running (stopped, halted, or no
heartbeat for ``max_age_s``: the process is gone or hung); 3 running but its market data is
stale (no message for ``max_event_age_s``). ``stop`` asks a session to stop: it writes
``stop.request`` beside the status, which the session reads on its next tick (as SIGTERM).
Times in ms UTC.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from botclave_cli.data import atomic
from botclave_cli.errors import UsageError
from botclave_cli.exchange.orders.session import journal_path

State = Literal["running", "halted", "stopped"]


class SessionStatus(BaseModel):
    """``status.json`` (module docstring)."""

    session: str
    mode: Literal["paper", "live"]
    symbol: str
    market: str
    pid: int
    state: State = "running"
    halt: str | None = Field(None, description="why entries are halted (daily loss, drawdown, "
                             "kill switch)")
    started_ms: int
    heartbeat_ms: int
    last_event_ms: int | None = None
    connected: bool = False
    reconnects: int = 0
    messages: int = 0
    equity: float | None = None
    initial_equity: float | None = None
    position_qty: float = 0.0
    positions: list[dict[str, Any]] = Field(default_factory=list)
    open_orders: list[dict[str, Any]] = Field(default_factory=list)
    trades: int = 0
    signals: int = 0
    bars_without_book: dict[str, int] = Field(default_factory=dict, description="bars that "
                                              "closed on an invalid or stale book")
    run_folder: str | None = None

    @property
    def pnl(self) -> float | None:
        if self.equity is None or self.initial_equity is None:
            return None
        return self.equity - self.initial_equity


def status_path(data_dir: Path, session: str) -> Path:
    return journal_path(data_dir, session).with_name("status.json")


def stop_path(data_dir: Path, session: str) -> Path:
    return journal_path(data_dir, session).with_name("stop.request")


def write_status(path: Path, status: SessionStatus) -> None:
    atomic.write_text(path, status.model_dump_json(indent=2) + "\n")


def read_status(data_dir: Path, session: str) -> SessionStatus:
    path = status_path(data_dir, session)
    if not path.exists():
        raise UsageError(f"session {session}: no status file {path} (never started here, or "
                         "another --data-dir)")
    try:
        return SessionStatus.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UsageError(f"{path}: not a session status file ({str(exc).splitlines()[0]})"
                         ) from None


def request_stop(data_dir: Path, session: str, reason: str = "stop requested") -> Path:
    read_status(data_dir, session)  # a session that exists
    path = stop_path(data_dir, session)
    atomic.write_text(path, json.dumps({"reason": reason, "ts_ms": int(time.time() * 1000)})
                      + "\n")
    return path


def report(status: SessionStatus, now_ms: int, max_age_s: float, max_event_age_s: float
           ) -> tuple[int, dict[str, Any], str]:
    """(exit code, JSON-ready dict, one summary line) of a status read at ``now_ms``."""
    heartbeat_age = (now_ms - status.heartbeat_ms) / 1000
    event_age = None if status.last_event_ms is None else (now_ms - status.last_event_ms) / 1000
    alive = status.state != "stopped" and heartbeat_age <= max_age_s
    if not alive or status.state == "halted":
        code = 1
    elif event_age is None or event_age > max_event_age_s:
        code = 3
    else:
        code = 0
    state = status.state if alive or status.state == "stopped" else "not responding"
    out = {**status.model_dump(), "pnl": status.pnl, "heartbeat_age_s": heartbeat_age,
           "last_event_age_s": event_age, "alive": alive, "exit_code": code}
    pnl = f"{status.pnl:+.2f}" if status.pnl is not None else "n/a"
    age = f"{event_age:.1f} s" if event_age is not None else "never"
    line = (f"{status.mode} session {status.session} {status.symbol}: {state}"
            f"{' (' + status.halt + ')' if status.halt else ''}, "
            f"{'connected' if status.connected else 'disconnected'}, last event {age} ago, "
            f"position {status.position_qty:g}, {len(status.open_orders)} open order(s), "
            f"PnL {pnl}, heartbeat {heartbeat_age:.1f} s ago")
    return code, out, line
