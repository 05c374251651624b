"""Plotly figures of the Order Flow tab: footprint (candles + delta far out, bid x ask levels
close in), CVD and the volume profile. Prices in quote currency, volumes in base units.

Made to be cheap for the browser (every SVG node costs it time on the first paint): times go
as float64 milliseconds since the epoch (a typed array, no date strings to parse) on date
axes, the signals are one trace of markers, and the profile is two stacked step areas (two
paths) rather than two bars per price row; the delta likewise."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from botclave_cli.dashboard.flow import (
    DETAIL_MAX_BARS,
    PROFILE_MAX_ROWS,
    FlowView,
    detail_grid,
    overview_bars,
    profile_rows,
)

BUY = "#1a9850"
SELL = "#d73027"
POC = "#ffb000"
SIGNAL_SYMBOLS = {"absorption": "diamond", "bullish_divergence": "triangle-up",
                  "bearish_divergence": "triangle-down"}


def epoch_ms(times: pl.Series | list) -> np.ndarray:
    """UTC datetimes as float64 milliseconds since the epoch (what a plotly date axis reads)."""
    return pl.Series(times, dtype=pl.Datetime("us", "UTC")).dt.epoch("us").to_numpy() / 1e3


def _delta(fig: go.Figure, x_ms: np.ndarray, delta: np.ndarray) -> None:
    """Delta per bar as two step areas in row 2, "delta buy" (the positive part) and "delta
    sell" (the negative part): two SVG paths where bars would be one per bar."""
    for name, part, color in (("delta buy", np.maximum(delta, 0.0), BUY),
                              ("delta sell", np.minimum(delta, 0.0), SELL)):
        fig.add_trace(go.Scatter(x=x_ms, y=part, name=name, mode="lines", fill="tozeroy",
                                 fillcolor=color, line={"shape": "hv", "width": 0,
                                                        "color": color},
                                 hovertemplate=f"{name} %{{y:g}}<extra></extra>"),
                      row=2, col=1)


def footprint_figure(view: FlowView, bars: pl.DataFrame, title: str) -> go.Figure:
    """Rows: price (levels when ``bars`` fit DETAIL_MAX_BARS, else candles), delta per bar,
    CVD. ``bars`` is the visible window of ``view.result.bars``."""
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.03,
                        row_heights=[0.64, 0.18, 0.18])
    detail = bars.height <= DETAIL_MAX_BARS
    if detail:
        _levels(fig, view, bars)
        shown = bars
    else:
        shown = overview_bars(bars)
        fig.add_trace(go.Candlestick(
            x=epoch_ms(shown["bar_start"]), open=shown["open"].to_numpy(),
            high=shown["high"].to_numpy(), low=shown["low"].to_numpy(),
            close=shown["close"].to_numpy(), name="candles",
            increasing_line_color=BUY, decreasing_line_color=SELL), row=1, col=1)
    _delta(fig, epoch_ms(shown["bar_start"]), shown["delta"].to_numpy())
    cvd = view.cvd.filter(pl.col("bar_start").is_between(bars["bar_start"].min(),
                                                         bars["bar_start"].max()))
    fig.add_trace(go.Scatter(x=epoch_ms(cvd["bar_start"]), y=cvd["cvd"].to_numpy(),
                             name="CVD", mode="lines", line={"color": "#4575b4"}),
                  row=3, col=1)
    _signals(fig, view.signals, bars)
    mode = "levels (bid x ask)" if detail else (
        f"candles, {bars.height} bars" + (f" merged into {shown.height}"
                                          if shown.height < bars.height else ""))
    fig.update_layout(title=f"{title}: {mode}", height=720, showlegend=False,
                      xaxis_rangeslider_visible=False, margin={"l": 50, "r": 20, "t": 50,
                                                               "b": 30},
                      uirevision="footprint")
    fig.update_xaxes(type="date")
    fig.update_yaxes(title_text="price", row=1, col=1)
    fig.update_yaxes(title_text="delta", row=2, col=1)
    fig.update_yaxes(title_text="CVD", row=3, col=1)
    return fig


def _levels(fig: go.Figure, view: FlowView, bars: pl.DataFrame) -> None:
    """Heatmap of delta per level with "bid x ask" text, POC, value area, imbalances, stacks."""
    xs, ys, z, text = detail_grid(view.result.levels, bars)
    fig.add_trace(go.Heatmap(
        x=epoch_ms(xs), y=ys, z=z, text=text, texttemplate="%{text}", textfont={"size": 9},
        colorscale=[[0, SELL], [0.5, "#f7f7f7"], [1, BUY]], zmid=0, showscale=False,
        name="footprint", hovertemplate="%{x}<br>price %{y}<br>bid x ask %{text}"
        "<br>delta %{z}<extra></extra>"), row=1, col=1)
    half = view.row_price / 2
    fig.add_trace(go.Scatter(
        x=epoch_ms(bars["bar_start"]), y=bars["poc"].to_numpy(), mode="markers", name="POC",
        marker={"symbol": "line-ew-open", "size": 18, "color": POC, "line": {"width": 3}},
        hovertemplate="POC %{y}<extra></extra>"), row=1, col=1)
    va_x = np.repeat(epoch_ms(bars["bar_start"]), 3)
    va_x[2::3] = np.nan  # one gap after each bar's segment
    va_y = np.full(va_x.size, np.nan)
    va_y[0::3] = bars["val"].to_numpy() - half
    va_y[1::3] = bars["vah"].to_numpy() + half
    fig.add_trace(go.Scatter(x=va_x, y=va_y, mode="lines", name="value area",
                             line={"color": "#555", "width": 1, "dash": "dot"},
                             hoverinfo="skip"), row=1, col=1)
    lv = view.result.levels.filter(pl.col("bar_id").is_in(bars["bar_id"].implode()))
    for flag, color, symbol in (("imbalance_buy", BUY, "triangle-right"),
                                ("imbalance_sell", SELL, "triangle-left")):
        hit = lv.filter(pl.col(flag))
        fig.add_trace(go.Scatter(
            x=epoch_ms(hit["bar_start"]), y=hit["price"].to_numpy(), mode="markers",
            name=flag.replace("_", " "), marker={"symbol": symbol, "size": 7, "color": color},
            hovertemplate=f"{flag} %{{y}}<extra></extra>"), row=1, col=1)
    for flag, color in (("stacked_buy", BUY), ("stacked_sell", SELL)):
        hit = lv.filter(pl.col(flag))
        fig.add_trace(go.Scatter(
            x=epoch_ms(hit["bar_start"]), y=hit["price"].to_numpy(), mode="markers",
            name=flag.replace("_", " "),
            marker={"symbol": "square-open", "size": 14, "color": color, "line": {"width": 2}},
            hovertemplate=f"{flag} %{{y}}<extra></extra>"), row=1, col=1)


def _signals(fig: go.Figure, signals: pl.DataFrame, bars: pl.DataFrame) -> None:
    """The window's signals as one trace of markers (the symbol tells the kind)."""
    if not signals.height or not bars.height:
        return
    lo, hi = bars["bar_start"].min(), bars["bar_end"].max()
    shown = signals.filter(pl.col("time").is_between(lo, hi))
    kinds = shown["kind"].cast(pl.String).to_list()
    fig.add_trace(go.Scatter(
        x=epoch_ms(shown["time"]), y=((shown["price_low"] + shown["price_high"]) / 2).to_numpy(),
        mode="markers", name="signals",
        marker={"symbol": [SIGNAL_SYMBOLS.get(k, "star") for k in kinds], "size": 11,
                "color": "#7b3294", "line": {"color": "white", "width": 1}},
        text=[f"{k} {side or ''}".strip()
              for k, side in zip(kinds, shown["side"].to_list(), strict=True)],
        hovertemplate="%{text}<br>%{x}<br>%{y}<extra></extra>"), row=1, col=1)


def profile_figure(view: FlowView) -> go.Figure:
    """Horizontal volume profile (sell, then buy stacked on it: step areas, a step per price
    row) with POC, VAH/VAL, HVN and LVN."""
    p = view.profile
    lv = profile_rows(p.levels)
    fig = go.Figure()
    for side, color in (("sell", SELL), ("buy", BUY)):
        fig.add_trace(go.Scatter(
            y=lv["price"].to_numpy(), x=lv[f"{side}_volume"].to_numpy(), name=side,
            orientation="h", stackgroup="profile", mode="lines", fillcolor=color,
            line={"shape": "vhv", "width": 0, "color": color},
            hovertemplate=f"{side} %{{x:g}} at %{{y}}<extra></extra>"))
    top = float(lv["volume"].to_numpy().max(initial=0.0))
    for price, label, color in ((p.poc, "POC", POC), (p.vah, "VAH", "#555"),
                                (p.val, "VAL", "#555")):
        fig.add_trace(go.Scatter(x=[0, top], y=[price, price], mode="lines", name=label,
                                 line={"color": color, "dash": "dash"},
                                 hovertemplate=f"{label} %{{y}}<extra></extra>"))
    for nodes, label, symbol in ((p.hvn, "HVN", "circle"), (p.lvn, "LVN", "x")):
        fig.add_trace(go.Scatter(x=[top] * nodes.height, y=nodes["price"].to_list(),
                                 mode="markers", name=label, marker={"symbol": symbol, "size": 9},
                                 hovertemplate=f"{label} %{{y}}<extra></extra>"))
    merged = -(-p.levels.height // PROFILE_MAX_ROWS)
    title = "Volume profile" + (f" ({merged} rows a bar)" if merged > 1 else "")
    fig.update_layout(title=title, height=720,
                      margin={"l": 50, "r": 10, "t": 50, "b": 30},
                      legend={"orientation": "h"})
    return fig
