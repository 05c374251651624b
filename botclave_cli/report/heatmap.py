"""Depth heatmap: resting size on a price x time grid (log colour), trades as bubbles.

Input: sampled books in the ``book_snapshot`` long form (ts, side, price, qty; valid samples
only) and trades (ts, price, qty, side = aggressor). Columns are the sample times, rows are price
bins of ``row_price`` (quote units; default: a 200-row grid over the traded/visible range);
a cell holds the resting size (base units) at that price at that time. Buys are drawn in
``BUY_COLOR`` and sells in ``SELL_COLOR``, bubble area proportional to trade size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from botclave_cli.data import atomic
from botclave_cli.data.scalars import as_float
from botclave_cli.report.charts import (
    BUY_COLOR,
    SELL_COLOR,
    UTC_LABEL,
    Chart,
    ChartGenerator,
    to_datetime64,
)


def heatmap_matrix(samples: pl.DataFrame, row_price: float | None = None, rows: int = 200
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times us [n_t], price bin lower edges [n_p], size matrix [n_p, n_t]) from samples."""
    ts_us = samples["ts"].dt.epoch("us").to_numpy()
    price = samples["price"].to_numpy()
    qty = samples["qty"].to_numpy()
    times = np.unique(ts_us)
    lo, hi = float(price.min()), float(price.max())
    step = row_price or max((hi - lo) / rows, 1e-12)
    edges = np.arange(np.floor(lo / step) * step, hi + step, step)
    col = np.searchsorted(times, ts_us)
    # a small epsilon: 99.4 - 99.0 is 0.3999... in floats and must land in row 4, not 3
    row = np.clip(np.floor((price - edges[0]) / step + 1e-6).astype(np.int64), 0, len(edges) - 1)
    matrix = np.zeros((len(edges), len(times)))
    np.add.at(matrix, (row, col), qty)
    return times, edges, matrix


def depth_heatmap(samples: pl.DataFrame, trades: pl.DataFrame | None = None, *,
                  title: str = "Depth heatmap", row_price: float | None = None,
                  max_bubbles: int = 20_000) -> Chart:
    """Render the heatmap; the returned Chart keeps the matrix and the plotted trades."""
    if samples.is_empty():
        raise ValueError("no valid book samples to draw")
    gen = ChartGenerator()
    times, edges, matrix = heatmap_matrix(samples, row_price)
    fig: Figure = gen._figure(6.0)
    ax = fig.add_subplot(1, 1, 1)
    x = to_datetime64(times)
    positive = matrix[matrix > 0]
    norm = LogNorm(vmin=max(positive.min(), 1e-12), vmax=positive.max()) if positive.size else None
    step = edges[1] - edges[0] if len(edges) > 1 else 1.0
    mesh = ax.pcolormesh(
        np.append(x, x[-1] + (x[-1] - x[-2] if len(x) > 1 else np.timedelta64(1, "s"))),
        np.append(edges, edges[-1] + step), np.ma.masked_less_equal(matrix, 0),
        cmap="viridis", norm=norm, shading="flat")
    fig.colorbar(mesh, ax=ax, label="resting size (base units, log scale)")
    plotted = {"buy": 0, "sell": 0}
    if trades is not None and trades.height:
        lo_t, hi_t = int(times[0]), int(times[-1])
        tr = trades.filter(pl.col("ts").dt.epoch("us").is_between(lo_t, hi_t)).tail(max_bubbles)
        scale = 200.0 / max(as_float(tr["qty"].max(), "heatmap: largest trade") or 1.0, 1e-12) \
            if tr.height else 1.0
        for side, color in (("buy", BUY_COLOR), ("sell", SELL_COLOR)):
            part = tr.filter(pl.col("side") == side)
            plotted[side] = part.height
            if part.height:
                ax.scatter(to_datetime64(part["ts"]), part["price"].to_numpy(),
                           s=np.maximum(part["qty"].to_numpy() * scale, 2.0), c=color,
                           alpha=0.6, edgecolors="none", label=f"{side}s")
        if tr.height:
            ax.legend(loc="upper left", fontsize=8)
    ax.set_ylabel("price")
    ax.set_xlabel(UTC_LABEL)
    return gen._chart("depth_heatmap", title, fig, {"times_us": times, "price_edges": edges,
                                                     "matrix": matrix, "trades": plotted})


def write_heatmap(path: Path | str, samples: pl.DataFrame, trades: pl.DataFrame | None = None,
                  **kwargs) -> Chart:
    """Render and write the PNG atomically (a half-written image never appears)."""
    chart = depth_heatmap(samples, trades, **kwargs)
    atomic.write_bytes(Path(path), chart.png)
    return chart
