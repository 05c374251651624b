"""Plotly figures of the Strategy tab: equity and drawdown, price with entries and exits, the
Monte Carlo fan, walk-forward folds and the comparison of two runs. Money in quote currency."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from botclave_cli.dashboard.fig_flow import BUY, SELL

FAN_PERCENTILES = (5, 25, 50, 75, 95)


def drawdown_pct(equity: np.ndarray) -> np.ndarray:
    """Drawdown from the running peak in percent (<= 0)."""
    if not equity.size:
        return equity
    peak = np.maximum.accumulate(equity)
    return (equity / peak - 1.0) * 100.0


def equity_figure(equity: pl.DataFrame, title: str) -> go.Figure:
    """Equity (top) and drawdown in percent of the running peak (bottom)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3],
                        vertical_spacing=0.04)
    x = equity["ts"].to_list()
    y = equity["equity"].to_numpy()
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name="equity",
                             line={"color": "#4575b4"}), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=drawdown_pct(y), mode="lines", name="drawdown %",
                             fill="tozeroy", line={"color": SELL}), row=2, col=1)
    fig.update_layout(title=title, height=460, showlegend=False,
                      margin={"l": 50, "r": 20, "t": 50, "b": 30})
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="drawdown %", row=2, col=1)
    return fig


def price_trades_figure(bars: pl.DataFrame, trades: pl.DataFrame, title: str) -> go.Figure:
    """Candles (``bars``: bar_start, open, high, low, close) with each trade's entry (triangle,
    up for long, down for short) and exit (x), joined by a line coloured by its P&L sign."""
    fig = go.Figure(go.Candlestick(
        x=bars["bar_start"].to_list(), open=bars["open"].to_list(), high=bars["high"].to_list(),
        low=bars["low"].to_list(), close=bars["close"].to_list(), name="price",
        increasing_line_color="#7fbf7b", decreasing_line_color="#f1a340"))
    if trades.height:
        for side, symbol, color in (("long", "triangle-up", BUY), ("short", "triangle-down",
                                                                   SELL)):
            part = trades.filter(pl.col("side") == side)
            fig.add_trace(go.Scatter(
                x=part["entry_ts"].to_list(), y=part["entry_price"].to_list(), mode="markers",
                name=f"{side} entry", marker={"symbol": symbol, "size": 11, "color": color},
                text=part["trade_id"].to_list(),
                hovertemplate="trade %{text} entry %{y}<extra></extra>"))
        closed = trades.filter(pl.col("exit_ts").is_not_null())
        fig.add_trace(go.Scatter(
            x=closed["exit_ts"].to_list(), y=closed["exit_price"].to_list(), mode="markers",
            name="exit", marker={"symbol": "x", "size": 9, "color": "#333"},
            text=closed["exit_reason"].to_list(),
            hovertemplate="exit %{text} %{y}<extra></extra>"))
        for win, color in ((True, BUY), (False, SELL)):
            part = closed.filter((pl.col("pnl") > 0) == win)
            xs: list[Any] = []
            ys: list[Any] = []
            for t0, p0, t1, p1 in part.select("entry_ts", "entry_price", "exit_ts",
                                              "exit_price").iter_rows():
                xs += [t0, t1, None]
                ys += [p0, p1, None]
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip",
                                     name="won" if win else "lost",
                                     line={"color": color, "width": 1, "dash": "dot"}))
    fig.update_layout(title=title, height=460, xaxis_rangeslider_visible=False,
                      margin={"l": 50, "r": 20, "t": 50, "b": 30}, legend={"orientation": "h"})
    return fig


def fan_bands(paths: np.ndarray) -> dict[int, np.ndarray]:
    """Percentiles (FAN_PERCENTILES) of equity paths [runs, steps] at each step."""
    return {p: np.percentile(paths, p, axis=0) for p in FAN_PERCENTILES}


def fan_figure(paths: np.ndarray, initial: float, actual: np.ndarray, title: str) -> go.Figure:
    """The Monte Carlo fan: 5-95 and 25-75 percentile bands of the reshuffled equity paths
    (after each closed trade), their median and the run's own path."""
    bands = fan_bands(paths)
    x = list(range(paths.shape[1] + 1))

    def path(a: np.ndarray) -> list[float]:
        return [initial, *a.tolist()]

    fig = go.Figure()
    for lo, hi, alpha in ((5, 95, 0.15), (25, 75, 0.3)):
        fig.add_trace(go.Scatter(x=x, y=path(bands[hi]), mode="lines", line={"width": 0},
                                 showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=path(bands[lo]), mode="lines", line={"width": 0},
                                 fill="tonexty", fillcolor=f"rgba(69,117,180,{alpha})",
                                 name=f"p{lo}-p{hi}"))
    fig.add_trace(go.Scatter(x=x, y=path(bands[50]), mode="lines", name="median",
                             line={"color": "#4575b4"}))
    fig.add_trace(go.Scatter(x=x, y=path(actual), mode="lines", name="this run",
                             line={"color": "#333", "dash": "dash"}))
    fig.update_layout(title=title, height=380, xaxis_title="closed trades",
                      yaxis_title="equity", margin={"l": 50, "r": 20, "t": 50, "b": 40})
    return fig


def walk_forward_figure(folds: pl.DataFrame, oos: pl.DataFrame | None, title: str
                        ) -> go.Figure:
    """Each fold's in-sample (grey) and out-of-sample (blue) window as a bar on its own row,
    and the stitched out-of-sample equity (growth multiple) above."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.6, 0.4],
                        vertical_spacing=0.05)
    if oos is not None and oos.height:
        fig.add_trace(go.Scatter(x=oos["ts"].to_list(), y=oos["equity"].to_list(),
                                 mode="lines", name="out-of-sample equity"), row=1, col=1)
    for i, row in enumerate(folds.to_dicts()):
        for start, end, color, label in (("is_start", "is_end", "#bbbbbb", "in-sample"),
                                         ("oos_start", "oos_end", "#4575b4", "out-of-sample")):
            if not row.get(start) or not row.get(end):
                continue
            a = dt.datetime.fromisoformat(str(row[start]))
            b = dt.datetime.fromisoformat(str(row[end]))
            fig.add_trace(go.Scatter(x=[a, b], y=[i, i], mode="lines", name=label,
                                     line={"color": color, "width": 12}, showlegend=i == 0,
                                     hovertemplate=f"fold {i} {label}<extra></extra>"),
                          row=2, col=1)
    fig.update_layout(title=title, height=420, margin={"l": 50, "r": 20, "t": 50, "b": 30})
    fig.update_yaxes(title_text="x start", row=1, col=1)
    fig.update_yaxes(title_text="fold", row=2, col=1)
    return fig


def mc_drawdown_figure(tables: dict[str, pl.DataFrame]) -> go.Figure:
    """Histogram of the Monte Carlo runs' max drawdown (percent) per method."""
    fig = go.Figure()
    for method, mc in sorted(tables.items()):
        if "max_drawdown" not in mc.columns or not mc.height:
            continue
        dd = np.abs(mc["max_drawdown"].to_numpy().astype(float))
        dd = dd * 100 if np.nanmax(dd) <= 1 else dd
        fig.add_trace(go.Histogram(x=dd, name=method, opacity=0.6))
    fig.update_layout(title="Monte Carlo max drawdown (%)", barmode="overlay", height=340,
                      xaxis_title="max drawdown %", margin={"l": 50, "r": 20, "t": 50, "b": 40})
    return fig


def compare_figure(curves: dict[str, pl.DataFrame]) -> go.Figure:
    """Equity of several runs, each divided by its first value (growth multiple)."""
    fig = go.Figure()
    for name, eq in curves.items():
        y = eq["equity"].to_numpy()
        if not y.size:
            continue
        fig.add_trace(go.Scatter(x=eq["ts"].to_list(), y=y / y[0], mode="lines", name=name))
    fig.update_layout(title="Equity, growth multiple (1 = start)", height=380,
                      margin={"l": 50, "r": 20, "t": 50, "b": 30}, legend={"orientation": "h"})
    return fig
