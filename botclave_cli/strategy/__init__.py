"""Strategy layer: market structure, OrderFlowStrategy, risk and position sizing."""
