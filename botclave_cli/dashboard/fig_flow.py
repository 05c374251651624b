"""Plotly figures of the Order Flow tab: footprint (candles + delta far out, bid x ask levels
close in), CVD and the volume profile. Prices in quote currency, volumes in base units."""

from __future__ import annotations

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


def _signed_colors(values: list[float]) -> list[str]:
    return [BUY if v >= 0 else SELL for v in values]


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
            x=shown["bar_start"].to_list(), open=shown["open"].to_list(),
            high=shown["high"].to_list(), low=shown["low"].to_list(),
            close=shown["close"].to_list(), name="candles",
            increasing_line_color=BUY, decreasing_line_color=SELL), row=1, col=1)
    delta = shown["delta"].to_list()
    fig.add_trace(go.Bar(x=shown["bar_start"].to_list(), y=delta, name="delta",
                         marker_color=_signed_colors(delta)), row=2, col=1)
    cvd = view.cvd.filter(pl.col("bar_start").is_between(bars["bar_start"].min(),
                                                         bars["bar_start"].max()))
    fig.add_trace(go.Scatter(x=cvd["bar_start"].to_list(), y=cvd["cvd"].to_list(), name="CVD",
                             mode="lines", line={"color": "#4575b4"}), row=3, col=1)
    _signals(fig, view.signals, bars)
    mode = "levels (bid x ask)" if detail else (
        f"candles, {bars.height} bars" + (f" merged into {shown.height}"
                                          if shown.height < bars.height else ""))
    fig.update_layout(title=f"{title}: {mode}", height=720, showlegend=False,
                      xaxis_rangeslider_visible=False, margin={"l": 50, "r": 20, "t": 50,
                                                               "b": 30},
                      uirevision="footprint")
    fig.update_yaxes(title_text="price", row=1, col=1)
    fig.update_yaxes(title_text="delta", row=2, col=1)
    fig.update_yaxes(title_text="CVD", row=3, col=1)
    return fig


def _levels(fig: go.Figure, view: FlowView, bars: pl.DataFrame) -> None:
    """Heatmap of delta per level with "bid x ask" text, POC, value area, imbalances, stacks."""
    xs, ys, z, text = detail_grid(view.result.levels, bars)
    fig.add_trace(go.Heatmap(
        x=xs, y=ys, z=z, text=text, texttemplate="%{text}", textfont={"size": 9},
        colorscale=[[0, SELL], [0.5, "#f7f7f7"], [1, BUY]], zmid=0, showscale=False,
        name="footprint", hovertemplate="%{x}<br>price %{y}<br>bid x ask %{text}"
        "<br>delta %{z}<extra></extra>"), row=1, col=1)
    half = view.row_price / 2
    fig.add_trace(go.Scatter(
        x=bars["bar_start"].to_list(), y=bars["poc"].to_list(), mode="markers", name="POC",
        marker={"symbol": "line-ew-open", "size": 18, "color": POC, "line": {"width": 3}},
        hovertemplate="POC %{y}<extra></extra>"), row=1, col=1)
    va_x: list = []
    va_y: list = []
    for start, val, vah in bars.select("bar_start", "val", "vah").iter_rows():
        va_x += [start, start, None]
        va_y += [val - half, vah + half, None]
    fig.add_trace(go.Scatter(x=va_x, y=va_y, mode="lines", name="value area",
                             line={"color": "#555", "width": 1, "dash": "dot"},
                             hoverinfo="skip"), row=1, col=1)
    lv = view.result.levels.filter(pl.col("bar_id").is_in(bars["bar_id"].implode()))
    for flag, color, symbol in (("imbalance_buy", BUY, "triangle-right"),
                                ("imbalance_sell", SELL, "triangle-left")):
        hit = lv.filter(pl.col(flag))
        fig.add_trace(go.Scatter(
            x=hit["bar_start"].to_list(), y=hit["price"].to_list(), mode="markers",
            name=flag.replace("_", " "), marker={"symbol": symbol, "size": 7, "color": color},
            hovertemplate=f"{flag} %{{y}}<extra></extra>"), row=1, col=1)
    for flag, color in (("stacked_buy", BUY), ("stacked_sell", SELL)):
        hit = lv.filter(pl.col(flag))
        fig.add_trace(go.Scatter(
            x=hit["bar_start"].to_list(), y=hit["price"].to_list(), mode="markers",
            name=flag.replace("_", " "),
            marker={"symbol": "square-open", "size": 14, "color": color, "line": {"width": 2}},
            hovertemplate=f"{flag} %{{y}}<extra></extra>"), row=1, col=1)


def _signals(fig: go.Figure, signals: pl.DataFrame, bars: pl.DataFrame) -> None:
    if not signals.height or not bars.height:
        return
    lo, hi = bars["bar_start"].min(), bars["bar_end"].max()
    shown = signals.filter(pl.col("time").is_between(lo, hi))
    for (kind,), part in shown.group_by("kind", maintain_order=True):
        mid = ((part["price_low"] + part["price_high"]) / 2).to_list()
        fig.add_trace(go.Scatter(
            x=part["time"].to_list(), y=mid, mode="markers", name=str(kind),
            marker={"symbol": SIGNAL_SYMBOLS.get(str(kind), "star"), "size": 11,
                    "color": "#7b3294", "line": {"color": "white", "width": 1}},
            text=part["side"].to_list(),
            hovertemplate=f"{kind} %{{text}}<br>%{{x}}<br>%{{y}}<extra></extra>"), row=1, col=1)


def profile_figure(view: FlowView) -> go.Figure:
    """Horizontal volume profile (buy / sell stacked) with POC, VAH/VAL, HVN and LVN."""
    p = view.profile
    lv = profile_rows(p.levels)
    fig = go.Figure()
    fig.add_trace(go.Bar(y=lv["price"].to_list(), x=lv["sell_volume"].to_list(),
                         orientation="h", name="sell", marker_color=SELL))
    fig.add_trace(go.Bar(y=lv["price"].to_list(), x=lv["buy_volume"].to_list(),
                         orientation="h", name="buy", marker_color=BUY))
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
    fig.update_layout(barmode="stack", title=title, height=720, bargap=0,
                      margin={"l": 50, "r": 10, "t": 50, "b": 30},
                      legend={"orientation": "h"})
    return fig
