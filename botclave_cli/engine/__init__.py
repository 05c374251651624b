"""Engine: footprint, indicators, DOM builder and depth analysis.

It knows neither ccxt nor the terminal.
"""
