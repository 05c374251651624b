"""Engine: what the market data says, one room per concept. It knows neither ccxt nor the terminal.

- ``footprint/``: bars (time, volume, tick, range), the footprint kernel and ``FootprintChart``,
  volume profile (POC, value area), the footprint datasets in the store;
- ``book/``: the order book rebuilt from snapshots and diffs (``DOMBuilder``, its numba kernel and
  price ladder, stream sequencing, replay and its report);
- ``depth/``: what resting liquidity shows (``DepthAnalyzer``, depth series, walls, absorption
  zones, support/resistance, the depth datasets);
- ``signals/``: order-flow signals (``OrderFlowIndicators``: CVD, divergences, absorption, voids;
  swings).

The seed's class names are importable from here and from their room (imported on first use).
"""

from typing import TYPE_CHECKING

from botclave_cli.lazy import lazy_names

if TYPE_CHECKING:
    from botclave_cli.engine.book.dom_builder import DOMBuilder
    from botclave_cli.engine.depth.analyzer import DepthAnalyzer
    from botclave_cli.engine.footprint.builder import FootprintChart
    from botclave_cli.engine.signals.indicators import OrderFlowIndicators

__all__ = ["DOMBuilder", "DepthAnalyzer", "FootprintChart", "OrderFlowIndicators"]
__getattr__, __dir__ = lazy_names(__name__, {
    "DOMBuilder": "botclave_cli.engine.book.dom_builder",
    "DepthAnalyzer": "botclave_cli.engine.depth.analyzer",
    "FootprintChart": "botclave_cli.engine.footprint.builder",
    "OrderFlowIndicators": "botclave_cli.engine.signals.indicators",
})
