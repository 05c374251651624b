"""Engine: footprint, indicators, DOM builder and depth analysis. Knows neither ccxt nor the terminal."""
