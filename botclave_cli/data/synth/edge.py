"""The planted edge: what follows an absorption, and what a trade of it is expected to earn.

With ``SynthConfig.edge`` on, every absorption has a follow-through drawn by the generator:

- with probability ``p_reversal`` price turns away from the absorbed level (up from a bid, down
  from an ask) by ``reversal_ticks`` within ``reversal_s`` of the event's end;
- otherwise it breaks through the level by ``break_ticks`` within ``break_s``.

Both paths carry the plan's small noise (at most 2 ticks), so a reversal never comes back to the
level by more than that, and a break never turns away first. With the edge off (``--no-edge``)
the same draw is made (so the same seed gives the same events, flow and later draws) but the
background random walk simply continues from the level: a martingale, on which no trade has a
positive expectation.

The *reference trade* is how truth.json prices the edge: fade the absorption (long a bid, short
an ask) at the absorbed level at the end of the event's first minute, paying ``slippage_bps`` on
the entry; a resting target ``target_ticks`` beyond the level (filled at its price); a stop
``stop_ticks`` through the level (filled ``slippage_bps`` worse); ``fee_bps`` on each side's
notional. ``trade_return`` is its net return on the entry notional for one outcome, and
``expected_edge`` weighs the two outcomes by ``p_reversal``. The fee is Binance spot's taker fee
(configs/exchange_config.yaml), the slippage the backtester's default (strategy_params.yaml).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class FollowThrough:
    """Follow-through of an absorption. Ticks of the market's tick size, seconds, bps."""

    p_reversal: float = 0.7
    reversal_ticks: int = 450
    reversal_s: int = 480
    break_ticks: int = 160
    break_s: int = 180
    # the reference trade
    target_ticks: int = 400
    stop_ticks: int = 100
    fee_bps: float = 10.0
    slippage_bps: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FOLLOW_THROUGH = FollowThrough()


def trade_return(level: float, side: str, outcome: str, tick_size: float,
                 ft: FollowThrough = FOLLOW_THROUGH) -> float:
    """Net return (fraction of the entry notional) of the reference trade of an absorption at
    ``level`` (price) on the passive ``side`` ("bid" -> long, "ask" -> short) for ``outcome``
    "reversal" (the target fills) or "break" (the stop fills)."""
    d = 1 if side == "bid" else -1
    s, f = ft.slippage_bps / 1e4, ft.fee_bps / 1e4
    entry = level * (1 + d * s)
    if outcome == "reversal":
        exit_ = level + d * ft.target_ticks * tick_size
    elif outcome == "break":
        exit_ = (level - d * ft.stop_ticks * tick_size) * (1 - d * s)
    else:
        raise ValueError(f"outcome {outcome!r}: expected reversal or break")
    return d * (exit_ - entry) / entry - f * (entry + exit_) / entry


def expected_edge(level: float, side: str, tick_size: float, edge: bool,
                  ft: FollowThrough = FOLLOW_THROUGH) -> float:
    """Expected net return of the reference trade of one absorption (fraction of notional).

    Edge on: ``p_reversal`` x the reversal's return + the rest x the break's. Edge off: the
    background after the event is a martingale, so the expected gross move is 0 whatever the
    exit rule and the trade expects its costs only: the entry and exit slippage and both fees
    (to first order in the price move)."""
    if not edge:
        return -2 * (ft.slippage_bps + ft.fee_bps) / 1e4
    p = ft.p_reversal
    return (p * trade_return(level, side, "reversal", tick_size, ft)
            + (1 - p) * trade_return(level, side, "break", tick_size, ft))
