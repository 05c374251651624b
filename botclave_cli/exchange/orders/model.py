"""What an order is: the request we make, its status and the transitions a status may take.

``OrderRequest`` is what a strategy (or a person) asks for, in ccxt's units: ``qty`` in base units
(contracts on COIN-M), prices in quote currency. Its ``client_id`` is deterministic from the
session, the signal and the leg (``client_order_id``), so asking again after a crash names the same
order and can never place a second one.

Status machine (``ALLOWED``)::

    new -> submitted -> acknowledged -> partially_filled -> filled | canceled | rejected | expired

``new``: journaled, not sent. ``submitted``: being sent, outcome unknown until the exchange
answers (a crash or a timeout here is resolved by asking the exchange for the client id).
``acknowledged``: resting or accepted. A pre-trade refusal goes ``new -> rejected`` and sends
nothing. Terminal statuses never change again.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from botclave_cli.errors import UsageError


class OrderStatus(StrEnum):
    NEW = "new"
    SUBMITTED = "submitted"
    ACKNOWLEDGED = "acknowledged"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


S = OrderStatus
TERMINAL = frozenset({S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED})
#: status -> the statuses it may move to
ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.NEW: frozenset({S.SUBMITTED, S.REJECTED}),
    S.SUBMITTED: frozenset({S.ACKNOWLEDGED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED,
                            S.REJECTED, S.EXPIRED}),
    S.ACKNOWLEDGED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}),
    **{t: frozenset() for t in TERMINAL},
}

#: Binance's order status -> ours (PENDING_CANCEL is still working: acknowledged)
BINANCE_STATUS: dict[str, OrderStatus] = {
    "NEW": S.ACKNOWLEDGED, "PENDING_NEW": S.ACKNOWLEDGED, "PENDING_CANCEL": S.ACKNOWLEDGED,
    "PARTIALLY_FILLED": S.PARTIALLY_FILLED, "FILLED": S.FILLED, "CANCELED": S.CANCELED,
    "REJECTED": S.REJECTED, "EXPIRED": S.EXPIRED, "EXPIRED_IN_MATCH": S.EXPIRED,
}


def algo_status(raw: str, filled: float, qty: float | None) -> OrderStatus | None:
    """The status of a futures conditional (algo service) order: NEW until triggered,
    TRIGGERING/TRIGGERED while its order works, FINISHED when that order is done (filled, or
    canceled after a partial fill); ``qty`` None or 0: a close-position order."""
    if raw in ("NEW", "TRIGGERING", "TRIGGERED"):
        return S.ACKNOWLEDGED
    if raw == "FINISHED":
        if filled > 0 and (not qty or filled >= qty - 1e-12):
            return S.FILLED
        return S.CANCELED
    return BINANCE_STATUS.get(raw)


def allowed(old: OrderStatus, new: OrderStatus) -> bool:
    return new in ALLOWED[old]


OrderType = Literal["market", "limit", "stop_market", "take_profit_market", "stop_limit",
                    "take_profit_limit"]
LEGS = {"entry": "en", "exit": "ex", "stop": "sl", "target": "tp", "oco": "oc"}
CLIENT_ID = re.compile(r"^[A-Za-z0-9._:/-]{1,36}$")


def session_tag(session: str) -> str:
    """Six characters naming a session: the id itself when it is six safe characters, else
    the start of its SHA-1 (deterministic)."""
    if re.fullmatch(r"[a-z0-9]{6}", session):
        return session
    return hashlib.sha1(session.encode()).hexdigest()[:6]


def client_order_id(session: str, signal: int, leg: str) -> str:
    """``bc-<session 6>-<signal 10>-<leg 2>`` (23 characters of Binance's alphabet)."""
    if leg not in LEGS:
        raise UsageError(f"order leg {leg!r}: expected one of {', '.join(LEGS)}")
    if not 0 <= signal < 10**10:
        raise UsageError(f"signal number {signal}: expected 0 .. 9999999999")
    return f"bc-{session_tag(session)}-{signal:010d}-{LEGS[leg]}"


class OrderRequest(BaseModel):
    """One order to place (module docstring). ``stop_price`` triggers stop/take-profit types;
    ``time_in_force`` applies to limits; ``post_only`` makes a limit maker-only (spot
    LIMIT_MAKER, futures GTX); ``reduce_only`` / ``close_position`` are futures-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(pattern=CLIENT_ID.pattern)
    symbol: str = Field(min_length=3)
    side: Literal["buy", "sell"]
    type: OrderType
    qty: float | None = Field(None, gt=0)
    price: float | None = Field(None, gt=0)
    stop_price: float | None = Field(None, gt=0)
    time_in_force: Literal["GTC", "IOC", "FOK"] = "GTC"
    post_only: bool = False
    reduce_only: bool = False
    close_position: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> OrderRequest:
        limit = self.type in ("limit", "stop_limit", "take_profit_limit")
        if limit and self.price is None:
            raise ValueError(f"{self.type} order needs a price")
        if self.type not in ("market", "limit") and self.stop_price is None:
            raise ValueError(f"{self.type} order needs a stop_price")
        if self.qty is None and not self.close_position:
            raise ValueError("qty is required (or close_position for a futures stop)")
        if self.post_only and (self.type != "limit" or self.time_in_force != "GTC"):
            raise ValueError("post_only is for GTC limit orders")
        if self.close_position and self.type not in ("stop_market", "take_profit_market"):
            raise ValueError("close_position is for stop_market / take_profit_market")
        return self
