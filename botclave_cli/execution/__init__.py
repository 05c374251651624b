"""Execution layer (wave 2): the one core that backtest, paper and live trading drive - orders,
fills, positions, cash and risk counters advanced event by event. Below the strategy layer and
above the engine; it knows no exchange client."""
