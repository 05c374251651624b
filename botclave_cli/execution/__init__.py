"""Execution layer: the one core that backtest, paper and live trading drive - orders, fills,
positions, cash and risk counters advanced event by event (``core.ExecutionCore``; its state in
``state``, its compiled steps in ``kernel``, ``steps``, ``matching``, ``queue``, ``orders``;
``replay`` feeds a recorded stream just in time). Below the strategy layer and above the
engine; it knows no exchange client."""

from typing import TYPE_CHECKING

from botclave_cli.lazy import lazy_names

if TYPE_CHECKING:
    from botclave_cli.execution.core import ExecutionCore

__all__ = ["ExecutionCore"]
__getattr__, __dir__ = lazy_names(__name__, {
    "ExecutionCore": "botclave_cli.execution.core",
})
