"""``ChartGenerator``: the report's charts as PNG bytes, with the plotted data kept beside them.

Every chart is drawn on a pyplot-free ``matplotlib.figure.Figure`` (no global state, safe in worker
processes and cron), rendered to PNG without a timestamp in its metadata (same inputs -> same
bytes), and returned as a ``Chart`` that keeps the figure and the arrays it plotted, so tests and
callers can check what is drawn (the equity line's last point is the final equity) rather than
only that a file exists.

Conventions shared by all charts: time axes are UTC (labelled so), prices in quote currency,
quantities in base units, buys (aggressor bought, ask side hit) in ``BUY_COLOR`` and sells in
``SELL_COLOR``. The footprint chart and the depth heatmap are drawn by the engine helpers'
``report.footprint_chart`` and ``report.heatmap`` modules; the pipeline calls them directly.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)  # never open a window; cron has no display

import matplotlib.dates as mdates  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

BUY_COLOR = "#1a9850"  # aggressive buys, up candles, winning trades
SELL_COLOR = "#d73027"  # aggressive sells, down candles, losing trades
LINE_COLOR = "#1f4e79"  # equity, price and CVD lines
IS_COLOR = "#4c72b0"  # walk-forward in-sample windows
OOS_COLOR = "#dd8452"  # walk-forward out-of-sample windows
UTC_LABEL = "time (UTC)"
#: numbers a chart accepts: a sequence, a numpy array or a Polars series
Numbers = Sequence[float] | np.ndarray | pl.Series


@dataclass
class Chart:
    """One rendered chart: file stem, title, PNG bytes, the figure and the plotted arrays."""

    name: str
    title: str
    png: bytes
    data: dict[str, Any] = field(default_factory=dict)
    figure: Figure | None = field(default=None, repr=False)

    @property
    def filename(self) -> str:
        return f"{self.name}.png"


def to_datetime64(values: Any) -> np.ndarray:
    """Polars Datetime series, list of datetimes or microsecond ints -> ``datetime64[us]`` (UTC)."""
    if isinstance(values, pl.Series):
        if values.dtype.is_integer():
            return values.to_numpy().astype("datetime64[us]")
        return values.dt.replace_time_zone(None).to_numpy().astype("datetime64[us]")
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype("datetime64[us]")
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[us]")
    out = [v.astimezone(dt.UTC).replace(tzinfo=None) if v.tzinfo else v for v in arr.tolist()]
    return np.array(out, dtype="datetime64[us]")


def _utc_axis(ax: Any) -> None:
    locator = mdates.AutoDateLocator(tz=dt.UTC)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=dt.UTC))
    ax.set_xlabel(UTC_LABEL)


def _rects(ax: Any, x: np.ndarray, bottom: np.ndarray, height: np.ndarray, width: float,
           colors: Any, label: str | None = None) -> PolyCollection:
    """Vertical bars as one PolyCollection (thousands of ``ax.bar`` patches render slowly)."""
    left, right, top = x - width / 2, x + width / 2, bottom + height
    verts: Any = np.stack([np.column_stack([left, bottom]), np.column_stack([left, top]),
                      np.column_stack([right, top]), np.column_stack([right, bottom])], axis=1)
    rects = PolyCollection(verts, facecolors=colors, edgecolors="none", label=label)
    ax.add_collection(rects)
    ax.update_datalim(np.column_stack([np.r_[left, right], np.r_[bottom, top]]))
    ax.autoscale_view()
    return rects


def _bar_width_days(ts: np.ndarray) -> float:
    """Candle/bar width in matplotlib date units (days): 70% of the median bar spacing."""
    if len(ts) < 2:
        return 1 / 1440 * 0.7
    spacing_us = float(np.median(np.diff(ts).astype("int64")))
    return max(spacing_us, 1.0) / 86_400e6 * 0.7


class ChartGenerator:
    """Draws the report's charts; ``dpi`` x ``width_in`` sets the PNG width (1100 px)."""

    def __init__(self, dpi: int = 100, width_in: float = 11.0) -> None:
        self.dpi = dpi
        self.width_in = width_in

    # rendering --------------------------------------------------------------------------------
    def _figure(self, height_in: float) -> Figure:
        fig = Figure(figsize=(self.width_in, height_in), dpi=self.dpi, layout="constrained")
        FigureCanvasAgg(fig)
        return fig

    def _chart(self, name: str, title: str, fig: Figure, data: dict[str, Any]) -> Chart:
        fig.suptitle(title, fontsize=12, fontweight="bold")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=self.dpi, metadata={"Software": None})
        return Chart(name=name, title=title, png=buffer.getvalue(), data=data, figure=fig)

    # market charts ----------------------------------------------------------------------------
    def candlesticks(self, bars: pl.DataFrame, title: str = "Price and volume",
                     quote: str = "quote", base: str = "base") -> Chart:
        """OHLC candles (up in BUY_COLOR, down in SELL_COLOR) over a volume panel.

        ``bars``: columns ts (UTC), open, high, low, close, volume (base units); when
        ``buy_volume``/``sell_volume`` exist the volume bars are split by aggressor side.
        """
        ts = to_datetime64(bars["ts"])
        o, h, lo, c = (bars[k].to_numpy().astype(float) for k in ("open", "high", "low", "close"))
        volume = bars["volume"].to_numpy().astype(float)
        up = c >= o
        width = _bar_width_days(ts)
        x = mdates.date2num(ts)
        fig = self._figure(6.0)
        price_ax, vol_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        colors = np.where(up, BUY_COLOR, SELL_COLOR)
        price_ax.vlines(x, lo, h, colors=colors, linewidth=0.6)
        _rects(price_ax, x, np.minimum(o, c), np.abs(c - o), width, colors)
        price_ax.set_ylabel(f"price ({quote})")
        price_ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        price_ax.grid(alpha=0.3)
        data: dict[str, Any] = {"ts": ts, "open": o, "high": h, "low": lo, "close": c,
                                "volume": volume}
        if "buy_volume" in bars.columns and "sell_volume" in bars.columns:
            buy = bars["buy_volume"].to_numpy().astype(float)
            sell = bars["sell_volume"].to_numpy().astype(float)
            _rects(vol_ax, x, np.zeros_like(buy), buy, width, BUY_COLOR, "buy (aggressor)")
            _rects(vol_ax, x, buy, sell, width, SELL_COLOR, "sell (aggressor)")
            vol_ax.legend(loc="upper left", fontsize=8)
            data.update(buy_volume=buy, sell_volume=sell)
        else:
            _rects(vol_ax, x, np.zeros_like(volume), volume, width, colors)
        vol_ax.set_ylim(bottom=0)
        vol_ax.set_ylabel(f"volume ({base})")
        vol_ax.grid(alpha=0.3)
        _utc_axis(vol_ax)
        return self._chart("candlesticks", title, fig, data)

    def volume_profile(self, price: Numbers, volume: Numbers, *, poc: float,
                       vah: float, val: float, hvn: Numbers = (),
                       lvn: Numbers = (), row_height: float | None = None,
                       buy_volume: Numbers | None = None,
                       title: str = "Volume profile", quote: str = "quote",
                       base: str = "base") -> Chart:
        """Horizontal volume per price level (level labelled by its lower price), POC, value area
        (VAL..VAH shaded), high- and low-volume nodes marked."""
        p = np.asarray(price, dtype=float)
        v = np.asarray(volume, dtype=float)
        height = row_height if row_height else (float(np.min(np.diff(np.sort(p))))
                                                if len(p) > 1 else 1.0)
        fig = self._figure(6.0)
        ax = fig.subplots()
        data: dict[str, Any] = {"price": p, "volume": v, "poc": poc, "vah": vah, "val": val,
                                "hvn": np.asarray(hvn, float), "lvn": np.asarray(lvn, float)}
        if buy_volume is not None:
            b = np.asarray(buy_volume, dtype=float)
            ax.barh(p, b, height=height * 0.9, align="edge", color=BUY_COLOR, label="buy")
            ax.barh(p, v - b, left=b, height=height * 0.9, align="edge", color=SELL_COLOR,
                    label="sell")
            data["buy_volume"] = b
        else:
            ax.barh(p, v, height=height * 0.9, align="edge", color="#8c8c8c", label="volume")
        ax.axhspan(val, vah + height, color="#ffd54f", alpha=0.25, zorder=0,
                   label="value area (VAL..VAH)")
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        ax.axhline(poc + height / 2, color="black", linewidth=1.5, label=f"POC {poc:g}")
        for i, level in enumerate(hvn):
            ax.axhline(level + height / 2, color="#6a3d9a", linestyle="--", linewidth=0.9,
                       label="HVN" if i == 0 else None)
        for i, level in enumerate(lvn):
            ax.axhline(level + height / 2, color="#ff7f00", linestyle=":", linewidth=0.9,
                       label="LVN" if i == 0 else None)
        ax.set_xlabel(f"volume ({base})")
        ax.set_ylabel(f"price level ({quote})")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)
        return self._chart("volume_profile", title, fig, data)

    def cvd(self, ts: Any, close: Numbers, cvd: Numbers,
            divergences: Sequence[dict[str, Any]] = (), title: str = "Price and CVD",
            quote: str = "quote", base: str = "base") -> Chart:
        """Close price over cumulative volume delta (base units), divergences drawn on both panels.

        A divergence is a mapping with ``kind`` ("bearish_divergence"/"bullish_divergence" or
        "bearish"/"bullish") and ``start_ts``/``end_ts`` (the two swing bars); its price and CVD
        points are read from the series at those times.
        """
        t = to_datetime64(ts)
        price = np.asarray(close, dtype=float)
        delta = np.asarray(cvd, dtype=float)
        x = mdates.date2num(t)
        fig = self._figure(6.0)
        price_ax, cvd_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
        price_ax.plot(x, price, color=LINE_COLOR, linewidth=0.9)
        price_ax.set_ylabel(f"close ({quote})")
        price_ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        cvd_ax.plot(x, delta, color="#444444", linewidth=0.9)
        cvd_ax.fill_between(x, delta, 0, where=delta >= 0, color=BUY_COLOR, alpha=0.25)
        cvd_ax.fill_between(x, delta, 0, where=delta < 0, color=SELL_COLOR, alpha=0.25)
        cvd_ax.set_ylabel(f"CVD ({base})")
        marked = []
        for div in divergences:
            ends = to_datetime64([div["start_ts"], div["end_ts"]])
            idx = np.clip(np.searchsorted(t, ends), 0, len(t) - 1)
            bearish = str(div.get("kind", "")).startswith("bear")
            color = SELL_COLOR if bearish else BUY_COLOR
            label = "bearish divergence" if bearish else "bullish divergence"
            price_ax.plot(x[idx], price[idx], color=color, linewidth=2, marker="o", label=label)
            cvd_ax.plot(x[idx], delta[idx], color=color, linewidth=2, marker="o")
            marked.append({"kind": label, "x": x[idx], "price": price[idx], "cvd": delta[idx]})
        if marked:
            handles, labels = price_ax.get_legend_handles_labels()
            unique = dict(zip(labels, handles, strict=True))
            price_ax.legend(unique.values(), unique.keys(), loc="upper left", fontsize=8)
        for ax in (price_ax, cvd_ax):
            ax.grid(alpha=0.3)
        _utc_axis(cvd_ax)
        return self._chart("cvd", title, fig, {"ts": t, "close": price, "cvd": delta,
                                               "divergences": marked})

    # backtest charts --------------------------------------------------------------------------
    def equity(self, ts: Any, equity: Numbers, trade_exit_ts: Any = (),
               trade_pnl: Numbers = (), title: str = "Equity curve",
               quote: str = "quote") -> Chart:
        """Equity (quote currency) over time; each closed trade marked at its exit, green when it
        won and red when it lost, on the equity value at that time."""
        t = to_datetime64(ts)
        eq = np.asarray(equity, dtype=float)
        x = mdates.date2num(t)
        fig = self._figure(4.5)
        ax = fig.subplots()
        ax.plot(x, eq, color=LINE_COLOR, linewidth=1.0, label="equity")
        exits = to_datetime64(trade_exit_ts) if len(trade_exit_ts) else np.array([], "M8[us]")
        pnl = np.asarray(trade_pnl, dtype=float)
        idx = np.clip(np.searchsorted(t, exits, side="right") - 1, 0, max(len(t) - 1, 0))
        marks_y = eq[idx] if len(t) else np.array([])
        if len(exits):
            won = pnl > 0
            ax.scatter(mdates.date2num(exits[won]), marks_y[won], color=BUY_COLOR, s=14,
                       zorder=3, label="winning trade (exit)")
            ax.scatter(mdates.date2num(exits[~won]), marks_y[~won], color=SELL_COLOR, s=14,
                       zorder=3, label="losing trade (exit)")
        ax.set_ylabel(f"equity ({quote})")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
        _utc_axis(ax)
        data = {"ts": t, "equity": eq, "final_equity": float(eq[-1]) if len(eq) else None,
                "trade_exit_ts": exits, "trade_mark_equity": marks_y}
        return self._chart("equity", title, fig, data)

    def drawdown(self, ts: Any, equity: Numbers,
                 title: str = "Drawdown (underwater)") -> Chart:
        """Drawdown in percent below the running equity peak."""
        t = to_datetime64(ts)
        eq = np.asarray(equity, dtype=float)
        dd_pct = underwater_pct(eq)
        x = mdates.date2num(t)
        fig = self._figure(3.5)
        ax = fig.subplots()
        ax.fill_between(x, dd_pct, 0, color=SELL_COLOR, alpha=0.4, linewidth=0)
        ax.plot(x, dd_pct, color=SELL_COLOR, linewidth=0.8)
        ax.set_ylabel("drawdown (% of peak equity)")
        ax.grid(alpha=0.3)
        _utc_axis(ax)
        worst = float(dd_pct.min()) if len(dd_pct) else 0.0
        return self._chart("drawdown", title, fig, {"ts": t, "drawdown_pct": dd_pct,
                                                    "max_drawdown_pct": worst})

    # validation charts ------------------------------------------------------------------------
    def monte_carlo_fan(self, paths: np.ndarray, initial_equity: float | None = None,
                        title: str = "Monte Carlo equity paths",
                        quote: str = "quote") -> Chart:
        """Percentile bands (5-95, 25-75) and median of equity paths (runs x trades) by trade
        number; ``paths`` may also be given as returns-free equity already starting at step 0."""
        runs = np.atleast_2d(np.asarray(paths, dtype=float))
        if initial_equity is not None:
            runs = np.hstack([np.full((runs.shape[0], 1), initial_equity), runs])
        steps = np.arange(runs.shape[1])
        p5, p25, p50, p75, p95 = np.percentile(runs, [5, 25, 50, 75, 95], axis=0)
        fig = self._figure(4.5)
        ax = fig.subplots()
        ax.fill_between(steps, p5, p95, color=LINE_COLOR, alpha=0.15, label="5th-95th percentile")
        ax.fill_between(steps, p25, p75, color=LINE_COLOR, alpha=0.3, label="25th-75th percentile")
        ax.plot(steps, p50, color=LINE_COLOR, linewidth=1.5, label="median")
        ax.set_xlabel("trade number")
        ax.set_ylabel(f"equity ({quote})")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
        data = {"p5": p5, "p25": p25, "median": p50, "p75": p75, "p95": p95,
                "runs": runs.shape[0]}
        return self._chart("monte_carlo_fan", f"{title} ({runs.shape[0]} runs)", fig, data)

    def drawdown_distribution(self, max_drawdowns_pct: Numbers,
                              ruin_pct: float | None = None,
                              title: str = "Monte Carlo max drawdown distribution") -> Chart:
        """Histogram of the runs' maximum drawdowns (positive percent of peak), with the median,
        the 95th percentile and the ruin threshold marked."""
        dd = np.abs(np.asarray(max_drawdowns_pct, dtype=float))
        fig = self._figure(3.5)
        ax = fig.subplots()
        counts, edges, _ = ax.hist(dd, bins=min(40, max(5, len(dd) // 5)), color=SELL_COLOR,
                                   alpha=0.6)
        med, p95 = (float(np.percentile(dd, q)) for q in (50, 95))
        ax.axvline(med, color="black", linewidth=1.2, label=f"median {med:.2f}%")
        ax.axvline(p95, color="black", linestyle="--", linewidth=1.2, label=f"95th pct {p95:.2f}%")
        if ruin_pct is not None:
            ax.axvline(abs(ruin_pct), color="#6a3d9a", linestyle=":", linewidth=1.5,
                       label=f"ruin at {abs(ruin_pct):.1f}%")
        ax.set_xlabel("max drawdown (% of peak equity)")
        ax.set_ylabel("runs")
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
        return self._chart("drawdown_distribution", title, fig,
                           {"max_drawdown_pct": dd, "counts": counts, "edges": edges,
                            "median": med, "p95": p95})

    def walk_forward(self, folds: Sequence[dict[str, Any]], oos_ts: Any = (),
                     oos_equity: Numbers = (), title: str = "Walk-forward folds",
                     quote: str = "quote") -> Chart:
        """In-sample and out-of-sample windows per fold, over the stitched out-of-sample equity.

        A fold is a mapping with ``is_start``, ``is_end``, ``oos_start``, ``oos_end`` (UTC
        datetimes or microseconds); windows are half-open [start, end)."""
        fig = self._figure(5.5)
        fold_ax, eq_ax = fig.subplots(2, 1, sharex=True, height_ratios=[1, 2])
        spans = []
        for i, fold in enumerate(folds):
            is_s, is_e, oos_s, oos_e = mdates.date2num(to_datetime64(
                [fold["is_start"], fold["is_end"], fold["oos_start"], fold["oos_end"]]))
            fold_ax.broken_barh([(is_s, is_e - is_s)], (i - 0.4, 0.8), color=IS_COLOR,
                                label="in-sample" if i == 0 else None)
            fold_ax.broken_barh([(oos_s, oos_e - oos_s)], (i - 0.4, 0.8), color=OOS_COLOR,
                                label="out-of-sample" if i == 0 else None)
            spans.append((is_s, is_e, oos_s, oos_e))
        fold_ax.set_yticks(range(len(folds)), [f"fold {i + 1}" for i in range(len(folds))])
        fold_ax.invert_yaxis()
        fold_ax.legend(loc="upper right", fontsize=8)
        t = to_datetime64(oos_ts) if len(oos_ts) else np.array([], "M8[us]")
        eq = np.asarray(oos_equity, dtype=float)
        if len(t):
            eq_ax.plot(mdates.date2num(t), eq, color=OOS_COLOR, linewidth=1.0,
                       label="stitched out-of-sample equity")
            eq_ax.legend(loc="upper left", fontsize=8)
        for span in spans:
            eq_ax.axvline(span[2], color="#999999", linewidth=0.6, linestyle=":")
        eq_ax.set_ylabel(f"equity ({quote})")
        for ax in (fold_ax, eq_ax):
            ax.grid(alpha=0.3)
        _utc_axis(eq_ax)
        return self._chart("walk_forward", title, fig,
                           {"spans": np.asarray(spans), "oos_ts": t, "oos_equity": eq})


def underwater_pct(equity: np.ndarray) -> np.ndarray:
    """Percent below the running peak (0 at a new high, negative below it)."""
    if len(equity) == 0:
        return np.asarray(equity, dtype=float)
    peak = np.maximum.accumulate(equity)
    return (equity / peak - 1.0) * 100.0
