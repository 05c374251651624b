"""Order-flow signals: ``indicators.OrderFlowIndicators`` (CVD, volume profile, divergences),
flow events (absorption, liquidity voids), swings, and the ``OrderFlowSignal`` row they emit."""

from typing import TYPE_CHECKING

from botclave_cli.lazy import lazy_names

if TYPE_CHECKING:
    from botclave_cli.engine.signals.indicators import OrderFlowIndicators

__all__ = ["OrderFlowIndicators"]
__getattr__, __dir__ = lazy_names(__name__, {
    "OrderFlowIndicators": "botclave_cli.engine.signals.indicators",
})
