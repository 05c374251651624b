"""Strategy layer: market structure (swings, BOS/CHoCH, order blocks, FVG), the
``strategy.OrderFlowStrategy`` and the strategy base class, parameters and position sizing."""

from typing import TYPE_CHECKING

from botclave_cli.lazy import lazy_names

if TYPE_CHECKING:
    from botclave_cli.strategy.strategy import OrderFlowStrategy

__all__ = ["OrderFlowStrategy"]
__getattr__, __dir__ = lazy_names(__name__, {
    "OrderFlowStrategy": "botclave_cli.strategy.strategy",
})
