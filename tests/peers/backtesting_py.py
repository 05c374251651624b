"""backtesting.py's SmaCross on our bars: the peer of the bars-only moving-average cross.

Long only: buy half the equity when the fast mean of closes crosses above the slow mean, close
the position when it crosses back below; backtesting.py decides on a bar's close and fills at
the next bar's open. ``FractionalBacktest`` trades whole 1e-8 BTC units (a satoshi = our lot),
cash 10,000, 0.1 % commission per side. Importing this module needs ``backtesting`` (a test
extra); callers skip or leave the peer out when it is missing.
"""

from __future__ import annotations

import warnings

import pandas as pd
import polars as pl
from backtesting import Strategy
from backtesting.lib import FractionalBacktest, crossover


def sma(values: pd.Series, n: int) -> pd.Series:
    return pd.Series(values).rolling(n).mean()


class SmaCross(Strategy):
    n_fast = 10  # bars; backtesting.py sets both per run from ``Backtest.run(**params)``
    n_slow = 30

    def init(self) -> None:
        self.fast = self.I(sma, self.data.Close, self.n_fast)
        self.slow = self.I(sma, self.data.Close, self.n_slow)

    def next(self) -> None:
        if crossover(self.fast, self.slow):
            self.buy(size=0.5)
        elif crossover(self.slow, self.fast):
            self.position.close()


def sma_cross_backtest(bars: pl.DataFrame) -> FractionalBacktest:
    """The peer's backtest over our bars (``bar_start``, open, high, low, close, volume)."""
    df = bars.select(
        pl.col("bar_start").dt.replace_time_zone(None).alias("time"),
        pl.col("open").alias("Open"), pl.col("high").alias("High"), pl.col("low").alias("Low"),
        pl.col("close").alias("Close"), pl.col("volume").alias("Volume"),
    ).to_pandas().set_index("time")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FractionalBacktest(df, SmaCross, cash=10_000, commission=0.001,
                                  fractional_unit=1e-8)


def run_sma_cross(bt: FractionalBacktest, fast: int, slow: int) -> pd.Series:
    """backtesting.py's statistics of one run (``_trades`` holds the trade list)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. the open position left at the end
        return bt.run(n_fast=fast, n_slow=slow)
