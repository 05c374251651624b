"""Order-flow indicators over Polars frames: CVD, volume profile, delta divergence, and the
detectors' entry point ``OrderFlowIndicators`` (absorption and voids live in ``flow_events.py``,
the ``OrderFlowSignal`` row in ``order_flow_signal.py``).

Inputs are the store's trades (ts, price, qty, side) or a footprint's ``bars`` / ``levels``
(``engine.footprint``). Prices in quote currency, volumes in base units, times UTC.

Signals never look ahead: ``time`` is when the pattern is KNOWN (e.g. the bar that confirms the
second swing of a divergence), ``start`` when it began.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np
import polars as pl

from botclave_cli.engine.footprint.profile import poc_index, value_area
from botclave_cli.engine.signals import swings
from botclave_cli.engine.signals.flow_events import absorption, liquidity_voids
from botclave_cli.engine.signals.order_flow_signal import signals_frame
from botclave_cli.errors import UsageError

# ---- CVD -----------------------------------------------------------------------------------------

Reset = Literal["none", "daily"] | list[str]


def session_key(time_col: str = "ts", reset: Reset = "none") -> pl.Expr:
    """A session id per row: constant (``"none"``), the UTC date (``"daily"``), or for a list of
    UTC session start times (``["00:00", "08:00", "16:00"]``) the start of the session the row
    falls in (a session may run past midnight: it lasts until the next start time)."""
    t = pl.col(time_col)
    if reset == "none":
        return pl.lit(0, dtype=pl.Int64)
    if reset == "daily":
        return t.dt.truncate("1d").dt.epoch("us")
    if isinstance(reset, str):
        reset = [x for x in reset.split(",") if x]
    try:
        starts = sorted({int(h) * 60 + int(m) for h, m in (s.strip().split(":") for s in reset)})
    except ValueError:
        raise UsageError(
            f"session reset {reset!r}: expected 'none', 'daily' or HH:MM times") from None
    if not starts or not all(0 <= s < 1440 for s in starts):
        raise UsageError(f"session reset {reset!r}: times must lie in 00:00..23:59")
    first = starts[0]
    shifted = t - pl.duration(minutes=first)
    minute = shifted.dt.hour().cast(pl.Int64) * 60 + shifted.dt.minute().cast(pl.Int64)
    idx = pl.sum_horizontal([(minute >= s - first).cast(pl.Int64) for s in starts])
    return shifted.dt.truncate("1d").dt.epoch("us") + idx


def cvd_trades(trades: pl.LazyFrame | pl.DataFrame, reset: Reset = "none") -> pl.DataFrame:
    """Cumulative volume delta after every trade: ts, delta (signed qty), cvd (base units)."""
    lf = trades.lazy() if isinstance(trades, pl.DataFrame) else trades
    signed = pl.when(pl.col("side") == "buy").then(pl.col("qty")).otherwise(-pl.col("qty"))
    return (lf.select("ts", signed.alias("delta"))
            .with_columns(pl.col("delta").cum_sum().over(session_key("ts", reset)).alias("cvd"))
            .collect())


def cvd_bars(bars: pl.DataFrame, reset: Reset = "none",
             time_col: str = "bar_start") -> pl.DataFrame:
    """Footprint bars plus ``cvd`` (running sum of bar delta, reset per session) and
    ``cvd_high`` / ``cvd_low`` (the CVD's intrabar extremes, from delta_max/delta_min)."""
    cvd = pl.col("delta").cum_sum().over(session_key(time_col, reset))
    before = cvd - pl.col("delta")
    return bars.with_columns(cvd.alias("cvd"), (before + pl.col("delta_max")).alias("cvd_high"),
                             (before + pl.col("delta_min")).alias("cvd_low"))


# ---- volume profile ------------------------------------------------------------------------------

@dataclass
class VolumeProfile:
    """A volume profile over a range: ``levels`` (price, volume, buy_volume, sell_volume, low to
    high, empty rows included), POC, VAH/VAL, and HVN/LVN (price, prominence in base units)."""

    levels: pl.DataFrame
    poc: float
    vah: float
    val: float
    hvn: pl.DataFrame
    lvn: pl.DataFrame


def volume_profile(levels: pl.DataFrame, row_price: float, value_area_share: float = 0.7,
                   smooth: int = 3, min_prominence: float = 0.1,
                   close: float | None = None, lot: float = 1e-8) -> VolumeProfile:
    """Profile of a footprint ``levels`` table (any subset of bars, e.g. one session).

    HVN/LVN are peaks/troughs of the profile smoothed by a centred moving average of ``smooth``
    rows whose prominence is at least ``min_prominence`` x the largest smoothed volume. POC
    ties go to the row nearest ``close`` (default: the middle), then the lower price.
    """
    if not levels.height:
        raise UsageError("volume profile: no levels in range")
    agg = (levels.with_columns((pl.col("price") / row_price).round().cast(pl.Int64).alias("_k"))
           .group_by("_k").agg(pl.col("ask_volume").sum().alias("buy_volume"),
                               pl.col("bid_volume").sum().alias("sell_volume")).sort("_k"))
    k0, k1 = int(agg["_k"][0]), int(agg["_k"][-1])
    grid = pl.DataFrame({"_k": np.arange(k0, k1 + 1, dtype=np.int64)})
    full = grid.join(agg, on="_k", how="left").fill_null(0.0).with_columns(
        (pl.col("buy_volume") + pl.col("sell_volume")).alias("volume"),
        (pl.col("_k").cast(pl.Float64) * row_price).alias("price"))
    vol = full["volume"].to_numpy()
    scaled = np.round(vol / lot).astype(np.int64)  # integer lots: exact sums and ties
    c = (k1 - k0) // 2 if close is None else int(round(close / row_price)) - k0
    p = poc_index(scaled, c)
    a, z = value_area(scaled, p, value_area_share)
    w = min(smooth, len(vol))  # np.convolve "same" returns the longer length: clip the window
    sm = np.convolve(vol, np.ones(w) / w, mode="same") if w > 1 else vol
    floor = min_prominence * sm.max()
    prices = full["price"].to_numpy()

    def nodes(x: np.ndarray, pad: float) -> pl.DataFrame:
        # padding: outside the profile counts as empty (HVN) / never a trough's wall (LVN)
        from scipy.signal import find_peaks  # here only: scipy.signal costs seconds at import

        idx, props = find_peaks(np.concatenate([[pad], x, [pad]]), prominence=floor)
        idx = idx - 1
        return pl.DataFrame({"price": prices[idx], "prominence": props["prominences"]},
                            schema={"price": pl.Float64, "prominence": pl.Float64})

    hvn = nodes(sm, 0.0)
    lvn = nodes(-sm, -sm.max() - 1.0)
    # a trough must lie between two higher rows: drop the padded edges' artefacts
    lvn = lvn.filter((pl.col("price") > prices[0]) & (pl.col("price") < prices[-1]))
    return VolumeProfile(full.select("price", "volume", "buy_volume", "sell_volume"),
                         float(prices[p]), float(prices[z]), float(prices[a]), hvn, lvn)


@numba.njit(cache=True)
def _developing_poc(bar_idx, k, vol, close_k, session, n_bars):
    lo = k.min()
    hi = k.max()
    acc = np.zeros(hi - lo + 1, np.int64)
    out = np.empty(n_bars, np.int64)
    j = 0
    last_session = -1
    for b in range(n_bars):
        if session[b] != last_session:
            acc[:] = 0
            last_session = session[b]
        while j < bar_idx.shape[0] and bar_idx[j] == b:
            acc[k[j] - lo] += vol[j]
            j += 1
        out[b] = poc_index(acc, close_k[b] - lo) + lo
    return out


def developing_poc(bars: pl.DataFrame, levels: pl.DataFrame, row_price: float,
                   reset: Reset = "daily", lot: float = 1e-8) -> pl.DataFrame:
    """Bars plus ``developing_poc``: the POC of the session's profile up to and including each
    bar (POC ties: nearest the bar's close, then lower)."""
    if not bars.height:
        return bars.with_columns(pl.lit(None, pl.Float64).alias("developing_poc"))
    b = bars.with_row_index("_b").with_columns(session_key("bar_start", reset).alias("_s"))
    lv = levels.join(b.select("bar_id", "_b"), on="bar_id").sort("_b", "price")
    k = (lv["price"] / row_price).round().cast(pl.Int64).to_numpy()
    vol = ((lv["bid_volume"] + lv["ask_volume"]) / lot).round().cast(pl.Int64).to_numpy()
    close_k = np.floor(b["close"].to_numpy() / row_price + 1e-9).astype(np.int64)
    sess = b["_s"].rank("dense").cast(pl.Int64).to_numpy()
    out = _developing_poc(lv["_b"].cast(pl.Int64).to_numpy(), k, vol, close_k, sess, b.height)
    return bars.with_columns(pl.Series("developing_poc", out * row_price).round(10))


# ---- delta divergence ----------------------------------------------------------------------------

def delta_divergence(bars: pl.DataFrame, k: int = 3, flow: str = "cvd",
                     reset: Reset = "none") -> pl.DataFrame:
    """Bearish: two consecutive confirmed swing highs, the second higher, while ``flow`` (``cvd``
    or bar ``delta``) at the second is lower; bullish mirrors it on swing lows.

    Signal time = the bar that confirms the second swing (``k`` bars after it); start = the first
    swing's bar; price_low/high = the two swing prices; strength = the flow's change between the
    swings relative to the mean absolute bar delta (units of a typical bar).
    """
    if flow not in ("cvd", "delta"):
        raise UsageError(f"divergence flow {flow!r}: expected 'cvd' or 'delta'")
    b = cvd_bars(bars, reset) if "cvd" not in bars.columns else bars
    sw = swings.swing_points(b, k, time_col="bar_start")
    values = b[flow].to_numpy()
    times = b["bar_start"]
    scale = float(np.abs(b["delta"].to_numpy()).mean()) or 1.0
    rows = []
    for kind, side, sign in (("high", "bearish", 1), ("low", "bullish", -1)):
        pts = sw.filter(pl.col("kind") == kind).sort("bar_index")
        idx = pts["bar_index"].to_numpy()
        price = pts["price"].to_numpy()
        conf = pts["confirmed_at"].to_numpy()
        for i in range(1, len(idx)):
            p1, p2 = price[i - 1], price[i]
            f1, f2 = values[idx[i - 1]], values[idx[i]]
            if sign * (p2 - p1) > 0 and sign * (f2 - f1) < 0:
                rows.append({"time": times[int(conf[i])], "start": times[int(idx[i - 1])],
                             "kind": f"{side}_divergence", "side": side,
                             "price_low": min(p1, p2), "price_high": max(p1, p2),
                             "strength": abs(f2 - f1) / scale})
    return signals_frame(rows)


class OrderFlowIndicators:
    """Convenience wrapper over one footprint result: ``OrderFlowIndicators(result)`` then
    ``.cvd()``, ``.profile()``, ``.divergence()``, ``.absorption(trades)``, ``.voids()``."""

    def __init__(self, result, reset: Reset = "none") -> None:
        self.result = result
        self.reset = reset
        self.row_price = result.spec.row_size * result.spec.tick_size

    def cvd(self) -> pl.DataFrame:
        return cvd_bars(self.result.bars, self.reset)

    def profile(self, **kw) -> VolumeProfile:
        close = float(self.result.bars["close"][-1]) if self.result.bars.height else None
        return volume_profile(self.result.levels, self.row_price, close=close,
                              lot=self.result.spec.step, **kw)

    def developing_poc(self) -> pl.DataFrame:
        return developing_poc(self.result.bars, self.result.levels, self.row_price,
                              self.reset if self.reset != "none" else "daily",
                              lot=self.result.spec.step)

    def divergence(self, k: int = 3, flow: str = "cvd") -> pl.DataFrame:
        return delta_divergence(self.result.bars, k, flow, self.reset)

    def absorption(self, trades, **kw) -> pl.DataFrame:
        return absorption(trades, self.result.spec.tick_size, **kw)

    def voids(self, **kw) -> pl.DataFrame:
        return liquidity_voids(self.result, **kw)
