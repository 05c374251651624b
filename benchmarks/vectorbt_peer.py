"""vectorbt's moving-average cross on our bars: the peer of the bars-only SmaCross and its sweep.

The same rule as ``strategy.SmaCross``, long only: enter when the fast SMA of closes crosses
above the slow one, exit when it crosses below; decided at a bar's close and filled at the next
bar's open (signals shifted one bar, ``price=open``), half the cash per entry, 0.1 % fees,
10,000 cash. vectorbt sizes in whole fractions of cash and never rounds to our 1e-8 lot, so its
final equity is close to ours, not equal; the trade count matches. Timed: indicators, crossings,
``Portfolio.from_signals`` and the final value and trade count (what a sweep reads), warm (after
a first call that compiles vectorbt's numba kernels). Needs the ``bench`` extra.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import polars as pl


def _frames(bars: pl.DataFrame) -> tuple[pd.Series, pd.Series]:
    index = pd.DatetimeIndex(bars["bar_start"].dt.replace_time_zone(None).to_numpy())
    return (pd.Series(bars["close"].to_numpy(), index=index),
            pd.Series(bars["open"].to_numpy(), index=index))


def sma_cross(close: pd.Series, open_: pd.Series, fast: Sequence[int], slow: Sequence[int]
              ) -> tuple[np.ndarray, np.ndarray]:
    """One broadcast call over the (fast[i], slow[i]) pairs: (final values, trade counts)."""
    import vectorbt as vbt

    fast_ma = vbt.MA.run(close, window=list(fast), short_name="fast")
    slow_ma = vbt.MA.run(close, window=list(slow), short_name="slow")
    entries = fast_ma.ma_crossed_above(slow_ma).vbt.fshift(1, fill_value=False)
    exits = fast_ma.ma_crossed_below(slow_ma).vbt.fshift(1, fill_value=False)
    pf = vbt.Portfolio.from_signals(close, entries, exits, price=open_, size=0.5,
                                    size_type="percent", fees=0.001, init_cash=10_000,
                                    freq="1min")
    return np.atleast_1d(np.asarray(pf.final_value())), \
        np.atleast_1d(np.asarray(pf.trades.count()))


def timed(bars: pl.DataFrame, fast: Sequence[int], slow: Sequence[int]
          ) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(first call s, warm call s, final values, trade counts) of ``sma_cross``."""
    close, open_ = _frames(bars)
    started = time.perf_counter()
    sma_cross(close, open_, fast, slow)
    first = time.perf_counter() - started
    started = time.perf_counter()
    values, counts = sma_cross(close, open_, fast, slow)
    return first, time.perf_counter() - started, values, counts
