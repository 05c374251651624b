"""Pre-trade checks: an order that breaks a rule is refused with one line naming the rule, and
nothing is sent.

Exchange rules come from ccxt's market structure (Binance's filters, loaded by ``load_markets``):
``precision.price`` / ``precision.amount`` (tick and step: ccxt's TICK_SIZE precision mode),
``limits.amount.min|max``, ``limits.cost.min`` (NOTIONAL / MIN_NOTIONAL). Our own rules come from
``exchange_config.yaml`` ``orders:``: the largest order and position in quote currency, the price
band around the last price, and the kill-switch file (while it exists only orders that reduce a
position pass). Prices in quote currency, quantities in base units (contracts on COIN-M, where
notional is contracts x contract size in quote).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botclave_cli.config import OrderLimits
from botclave_cli.errors import BotclaveError
from botclave_cli.exchange.orders.model import OrderRequest


class OrderRefused(BotclaveError):
    """A pre-trade rule refused the order (nothing was sent). The message names the rule."""

    def __init__(self, request: OrderRequest, rule: str, detail: str) -> None:
        super().__init__(f"order {request.client_id} refused by {rule}: {detail}")
        self.rule = rule


def _on_grid(value: float, step: float) -> bool:
    units = value / step
    return abs(units - round(units)) <= 1e-9 * max(1.0, abs(units))


@dataclass(frozen=True)
class MarketRules:
    """The exchange's rules for one symbol, from a ccxt market."""

    symbol: str
    tick: float | None
    step: float | None
    min_qty: float | None
    max_qty: float | None
    min_notional: float | None
    contract_size: float | None  # COIN-M: quote value of one contract

    @classmethod
    def from_ccxt(cls, market: dict[str, Any]) -> MarketRules:
        limits = market.get("limits") or {}
        precision = market.get("precision") or {}

        def num(value: Any) -> float | None:
            return float(value) if value not in (None, "") else None

        inverse = bool(market.get("inverse"))
        return cls(market["symbol"], num(precision.get("price")), num(precision.get("amount")),
                   num((limits.get("amount") or {}).get("min")),
                   num((limits.get("amount") or {}).get("max")),
                   num((limits.get("cost") or {}).get("min")),
                   num(market.get("contractSize")) if inverse else None)

    def notional(self, qty: float, price: float) -> float:
        """Quote value of ``qty`` at ``price`` (COIN-M: contracts x contract size)."""
        return qty * self.contract_size if self.contract_size else qty * price


def check(request: OrderRequest, rules: MarketRules, limits: OrderLimits,
          last_price: float | None, position_qty: float) -> None:
    """Raise ``OrderRefused`` for the first rule ``request`` breaks. ``position_qty``: the
    symbol's signed position before the order (base units; spot: the base balance)."""
    signed = request.qty or 0.0
    signed = signed if request.side == "buy" else -signed
    reducing = request.reduce_only or request.close_position or (
        position_qty != 0 and abs(position_qty + signed) < abs(position_qty)
        and position_qty * (position_qty + signed) >= 0)
    if limits.kill_switch_file is not None and limits.kill_switch_file.exists():
        if not reducing:
            raise OrderRefused(request, "kill switch",
                               f"{limits.kill_switch_file} exists; only reducing orders pass")
    for name, price in (("price", request.price), ("stop_price", request.stop_price)):
        if price is not None and rules.tick and not _on_grid(price, rules.tick):
            raise OrderRefused(request, "tick size",
                               f"{name} {price:g} is not a multiple of {rules.tick:g}")
    if request.qty is not None:
        if rules.step and not _on_grid(request.qty, rules.step):
            raise OrderRefused(request, "step size",
                               f"qty {request.qty:g} is not a multiple of {rules.step:g}")
        if rules.min_qty is not None and request.qty < rules.min_qty:
            raise OrderRefused(request, "min quantity",
                               f"qty {request.qty:g} < {rules.min_qty:g}")
        if rules.max_qty is not None and request.qty > rules.max_qty:
            raise OrderRefused(request, "max quantity",
                               f"qty {request.qty:g} > {rules.max_qty:g}")
    ref = request.price or request.stop_price or last_price
    if request.qty is not None and ref is not None:
        notional = rules.notional(request.qty, ref)
        if rules.min_notional is not None and notional < rules.min_notional and not (
                request.reduce_only):
            raise OrderRefused(request, "min notional",
                               f"{notional:g} < {rules.min_notional:g} quote")
        if limits.max_order_notional is not None and notional > limits.max_order_notional:
            raise OrderRefused(request, "max order notional",
                               f"{notional:g} > {limits.max_order_notional:g} quote "
                               "(exchange_config.yaml orders.max_order_notional)")
        after = rules.notional(abs(position_qty + signed), ref)
        if (limits.max_position_notional is not None and not reducing
                and after > limits.max_position_notional):
            raise OrderRefused(request, "max position",
                               f"position after the order {after:g} > "
                               f"{limits.max_position_notional:g} quote "
                               "(exchange_config.yaml orders.max_position_notional)")
    if last_price is not None:
        for name, price in (("price", request.price), ("stop_price", request.stop_price)):
            if price is None:
                continue
            off = abs(price / last_price - 1) * 100
            if off > limits.price_band_pct:
                raise OrderRefused(request, "price band",
                                   f"{name} {price:g} is {off:.2f} % from the last price "
                                   f"{last_price:g} (orders.price_band_pct "
                                   f"{limits.price_band_pct:g})")
