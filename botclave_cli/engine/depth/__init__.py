"""Depth: what resting liquidity shows - ``analyzer.DepthAnalyzer`` over depth series
(``series``), walls, absorption zones, support/resistance, and the depth datasets (``store``)."""

from typing import TYPE_CHECKING

from botclave_cli.lazy import lazy_names

if TYPE_CHECKING:
    from botclave_cli.engine.depth.analyzer import DepthAnalyzer

__all__ = ["DepthAnalyzer"]
__getattr__, __dir__ = lazy_names(__name__, {
    "DepthAnalyzer": "botclave_cli.engine.depth.analyzer",
})
