"""Plotly figures of the Depth tab: the heatmap of resting liquidity with trades, walls and
absorption zones, and the imbalance / OFI / microprice series. Prices in quote currency, sizes
in base units, times UTC."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from botclave_cli.dashboard.fig_flow import BUY, SELL
from botclave_cli.data.store import from_us
from botclave_cli.engine.depth.analyzer import DepthResult


def row_price(samples: pl.DataFrame, tick: float, rows: int = 200) -> float:
    """A whole number of ticks per heatmap row, at most ``rows`` rows over the price range."""
    span = float(samples["price"].max()) - float(samples["price"].min())  # type: ignore[arg-type]
    return tick * max(1, math.ceil(span / tick / rows))


def heatmap_grid(samples: pl.DataFrame, tick: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times us, price rows, log10(1 + size) with NaN where nothing rests): the report's
    ``heatmap_matrix`` on rows of whole ticks, on a log scale for the colour."""
    from botclave_cli.report.heatmap import heatmap_matrix

    times, edges, matrix = heatmap_matrix(samples, row_price(samples, tick))
    with np.errstate(divide="ignore"):
        z = np.where(matrix > 0, np.round(np.log10(1.0 + matrix), 3), np.nan)
    return times, edges, z


def depth_figure(result: DepthResult, samples: pl.DataFrame, trades: pl.DataFrame | None,
                 title: str) -> go.Figure:
    """Heatmap (top), trades as bubbles, walls as lines, absorption zones as boxes; below it
    the book imbalance, OFI and microprice minus mid."""
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, row_heights=[0.6, 0.2, 0.2],
                        vertical_spacing=0.03)
    times, edges, z = heatmap_grid(samples, result.tick_size)
    x = [from_us(int(t)) for t in times]
    cells = [[None if np.isnan(v) else float(v) for v in row] for row in z]
    fig.add_trace(go.Heatmap(x=x, y=edges.tolist(), z=cells,
                             colorscale="Viridis", name="resting size",
                             colorbar={"title": "log10(1+qty)", "len": 0.55, "y": 0.75},
                             hovertemplate="%{x}<br>price %{y}<br>log10(1+qty) %{z:.2f}"
                             "<extra></extra>"), row=1, col=1)
    if trades is not None and trades.height:
        for side, color in (("buy", BUY), ("sell", SELL)):
            part = trades.filter(pl.col("side") == side)
            qty = part["qty"].to_numpy()
            size = 3 + 9 * np.sqrt(qty / max(float(trades["qty"].to_numpy().max()), 1e-12))
            fig.add_trace(go.Scatter(
                x=part["ts"].to_list(), y=part["price"].to_list(), mode="markers",
                name=f"{side} trades", marker={"size": size, "color": color, "opacity": 0.6},
                customdata=qty, hovertemplate=f"{side} %{{customdata}} @ %{{y}}<extra></extra>"),
                row=1, col=1)
    wx: list = []
    wy: list = []
    for w in result.walls:
        wx += [from_us(w.first_seen_us), from_us(w.last_seen_us), None]
        wy += [w.price, w.price, None]
    if wx:
        fig.add_trace(go.Scatter(x=wx, y=wy, mode="lines", name="walls",
                                 line={"color": "#ff7f00", "width": 3}), row=1, col=1)
    zx: list = []
    zy: list = []
    for zone in result.zones:
        a, b = from_us(zone.start_us), from_us(zone.end_us)
        zx += [a, b, b, a, a, None]
        zy += [zone.price_low, zone.price_low, zone.price_high, zone.price_high,
               zone.price_low, None]
    if zx:
        fig.add_trace(go.Scatter(x=zx, y=zy, mode="lines", name="absorption zones",
                                 fill="toself", line={"color": "#e7298a", "width": 2}),
                      row=1, col=1)
    s = result.series
    ts = s["ts"].to_list()
    fig.add_trace(go.Scatter(x=ts, y=s["imbalance"].to_list(), name="imbalance",
                             mode="lines"), row=2, col=1)
    fig.add_trace(go.Bar(x=ts, y=s["ofi"].to_list(), name="OFI"), row=2, col=1)
    fig.add_trace(go.Scatter(x=ts, y=(s["microprice"] - s["mid"]).to_list(),
                             name="microprice - mid", mode="lines"), row=3, col=1)
    fig.update_layout(title=title, height=760, legend={"orientation": "h"},
                      margin={"l": 50, "r": 20, "t": 50, "b": 30})
    fig.update_yaxes(title_text="price", row=1, col=1)
    fig.update_yaxes(title_text="imbalance / OFI", row=2, col=1)
    fig.update_yaxes(title_text="micro - mid", row=3, col=1)
    return fig
