"""What an alert says: one event (kind, one-line text, time) and the disconnect rule.

Texts are short and plain (no Markdown: nothing to escape), one line each, e.g.
``FILL BTC/USDT buy 0.001 @ 60000 fee 0.06 (bc-3f2a1c-0000000007-en)``. Numbers print with up
to 10 significant digits, so float noise (0.30000000000000004) never reaches a phone.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class AlertEvent:
    """One thing worth a message: ``kind`` one of config.ALERT_KINDS (or "test"), ``text`` one
    line, ``ts`` seconds since the epoch (UTC)."""

    kind: str
    text: str
    ts: float


def num(value: float) -> str:
    """A price or quantity for a human: up to 10 significant digits, no exponent for usual
    magnitudes (``num(0.1 + 0.2) == "0.3"``, ``num(60000.0) == "60000"``)."""
    return f"{value:.10g}"


def utc(ts: float) -> str:
    """``ts`` (seconds since the epoch) as ``2024-08-08 23:59:01 UTC``."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fill_text(symbol: str, side: str, qty: float, price: float, *, fee: float | None = None,
              client_id: str | None = None, pnl: float | None = None) -> str:
    """``FILL BTC/USDT buy 0.001 @ 60000 fee 0.06 pnl -1.5 (bc-...)``; qty in base units (or
    contracts), price in quote currency, fee and pnl in quote currency."""
    parts = [f"FILL {symbol} {side} {num(qty)} @ {num(price)}"]
    if fee is not None:
        parts.append(f"fee {num(fee)}")
    if pnl is not None:
        parts.append(f"pnl {num(pnl)}")
    if client_id:
        parts.append(f"({client_id})")
    return " ".join(parts)


def halt_text(reason: str, detail: str | None = None) -> str:
    """``HALT daily loss: -512.3 <= -500 (no new orders)``."""
    return f"HALT {reason}" + (f": {detail}" if detail else "")


def error_text(where: str, message: str) -> str:
    """``ERROR order manager: binance 503 Service Unavailable``."""
    return f"ERROR {where}: {' '.join(str(message).split())}"


def seconds(value: float) -> str:
    """A duration for a human: ``42 s``, ``3 min 5 s``, ``2 h 1 min``."""
    whole = int(round(value))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {(whole % 3600) // 60} min"


@dataclass
class _Down:
    since: float
    reason: str
    alerted: bool = False


class DisconnectWatch:
    """Decides which disconnects are worth a message: only one that lasts longer than
    ``threshold_s`` seconds. Timestamps are the caller's, in seconds (any one clock per stream).

    ``check(now)`` alerts once while a stream is still down; ``connected`` then says how long
    it lasted. A disconnect shorter than the threshold says nothing at all. Thread-safe.
    """

    def __init__(self, threshold_s: float) -> None:
        self.threshold_s = threshold_s
        self._down: dict[str, _Down] = {}
        self._lock = threading.Lock()

    def disconnected(self, ts: float, reason: str = "", stream: str = "market data") -> None:
        """``stream`` went down at ``ts``; a second call while down keeps the first time."""
        with self._lock:
            self._down.setdefault(stream, _Down(ts, reason))

    def check(self, now: float) -> list[AlertEvent]:
        """Events for streams down longer than the threshold at ``now`` not yet alerted."""
        events = []
        with self._lock:
            for stream, down in self._down.items():
                if not down.alerted and now - down.since > self.threshold_s:
                    down.alerted = True
                    text = (f"DISCONNECTED {stream} for {seconds(now - down.since)} since "
                            f"{utc(down.since)}" + (f": {down.reason}" if down.reason else ""))
                    events.append(AlertEvent("disconnect", text, now))
        return events

    def connected(self, ts: float, stream: str = "market data") -> AlertEvent | None:
        """``stream`` is back at ``ts``: an event when the outage was alerted or lasted longer
        than the threshold, else None."""
        with self._lock:
            down = self._down.pop(stream, None)
        if down is None:
            return None
        lasted = ts - down.since
        if not down.alerted and lasted <= self.threshold_s:
            return None
        text = f"RECONNECTED {stream} after {seconds(lasted)} down"
        if not down.alerted and down.reason:
            text += f" ({down.reason})"
        return AlertEvent("disconnect", text, ts)

    def down_streams(self) -> list[str]:
        with self._lock:
            return sorted(self._down)
