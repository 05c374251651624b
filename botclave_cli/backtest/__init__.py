"""Backtest layer: trade-level backtester, fills, metrics and validation."""
