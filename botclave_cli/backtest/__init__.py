"""Backtest layer: the trade-level simulation - ``backtester.Backtester``, the fill kernel
(``fills``), book sampling for limit orders (``book``), run results (``results``) and
``metrics.MetricsCalculator``. Validation against overfitting lives in ``validate/``."""

from typing import TYPE_CHECKING

from botclave_cli.lazy import lazy_names

if TYPE_CHECKING:
    from botclave_cli.backtest.backtester import Backtester
    from botclave_cli.backtest.metrics import MetricsCalculator

__all__ = ["Backtester", "MetricsCalculator"]
__getattr__, __dir__ = lazy_names(__name__, {
    "Backtester": "botclave_cli.backtest.backtester",
    "MetricsCalculator": "botclave_cli.backtest.metrics",
})
