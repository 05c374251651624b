"""Footprint: trades -> bars (``bars``) -> bid x ask volume per price level (``kernel``,
``builder.FootprintChart``), volume profile (``profile``) and the footprint datasets (``store``)."""

from typing import TYPE_CHECKING

from botclave_cli.lazy import lazy_names

if TYPE_CHECKING:
    from botclave_cli.engine.footprint.builder import FootprintChart

__all__ = ["FootprintChart"]
__getattr__, __dir__ = lazy_names(__name__, {
    "FootprintChart": "botclave_cli.engine.footprint.builder",
})
