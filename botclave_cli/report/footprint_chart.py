"""A footprint picture of the last N bars (matplotlib, PNG): one column per bar, one cell per
price row with "bid x ask" volumes, imbalanced sides coloured (buy green, sell red), the POC row
outlined, the value area shaded, and the bar's delta under each column.

Drawn on a pyplot-free ``Figure`` with the Agg canvas (no display, no global state).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from botclave_cli.data.atomic import atomic_path  # noqa: E402
from botclave_cli.data.scalars import as_float  # noqa: E402
from botclave_cli.engine.footprint.builder import FootprintResult  # noqa: E402
from botclave_cli.errors import DataError, UsageError  # noqa: E402

BUY = "#1a9850"
SELL = "#d73027"
VALUE_AREA = "#e8eef7"


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v / 1000:.1f}k"
    if abs(v) >= 10:
        return f"{v:.0f}"
    return f"{v:.2g}"


def footprint_figure(result: FootprintResult, n_bars: int = 30, max_rows: int = 60) -> Figure:
    """The figure of the last ``n_bars`` bars. Rows are the footprint's levels; when the window
    spans more than ``max_rows`` rows the cell text is left out (colours stay)."""
    if n_bars < 1:
        raise UsageError(f"--png-bars {n_bars}: must be >= 1")
    bars = result.bars.tail(n_bars)
    if not bars.height:
        raise DataError("footprint picture: no bars to draw")
    ids = bars["bar_id"].to_list()
    levels = result.levels.filter(result.levels["bar_id"].is_in(ids))
    row = result.spec.row_size * result.spec.tick_size
    lo = as_float(levels["price"].min(), "footprint picture: lowest level")
    hi = as_float(levels["price"].max(), "footprint picture: highest level")
    n_rows = int(round((hi - lo) / row)) + 1
    text = n_rows <= max_rows
    # about one inch per bar column and a tall enough price axis: 30 bars stay readable when
    # the picture is shown scaled down to a report's width
    fig = Figure(figsize=(max(6.0, 0.85 * bars.height + 1.5),
                          max(7.0, 0.3 * min(n_rows, 80) + 2.5)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    col = {bid: i for i, bid in enumerate(ids)}
    for b in bars.iter_rows(named=True):
        x = col[b["bar_id"]]
        ax.add_patch(Rectangle((x - 0.45, b["val"]), 0.9, b["vah"] - b["val"] + row,
                               facecolor=VALUE_AREA, edgecolor="none", zorder=0))
        ax.add_patch(Rectangle((x - 0.45, b["poc"]), 0.9, row, fill=False, edgecolor="black",
                               linewidth=1.2, zorder=3))
        ax.plot([x - 0.48, x - 0.48], [b["low"], b["high"]], color="grey", linewidth=1)
        colour = BUY if b["delta"] >= 0 else SELL
        ax.text(x, lo - 1.5 * row, _fmt(b["delta"]), ha="center", va="top", fontsize=7,
                color=colour)
    for lv in levels.iter_rows(named=True):
        x = col[lv["bar_id"]]
        y = lv["price"]
        if lv["imbalance_sell"]:
            ax.add_patch(Rectangle((x - 0.45, y), 0.45, row, facecolor=SELL, alpha=0.35,
                                   edgecolor="none", zorder=1))
        if lv["imbalance_buy"]:
            ax.add_patch(Rectangle((x, y), 0.45, row, facecolor=BUY, alpha=0.35,
                                   edgecolor="none", zorder=1))
        if text:
            ax.text(x, y + row / 2, f"{_fmt(lv['bid_volume'])} x {_fmt(lv['ask_volume'])}",
                    ha="center", va="center", fontsize=6, zorder=4)
    ax.set_xlim(-0.6, bars.height - 0.4)
    ax.set_ylim(lo - 3 * row, hi + 2 * row)
    ax.set_xticks(range(bars.height))
    fmt = "%H:%M" if result.spec.bar_spec.kind == "time" else "%H:%M:%S"
    ax.set_xticklabels([t.strftime(fmt) for t in bars["bar_start"].to_list()], rotation=60,
                       fontsize=7)
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.set_ylabel("price")
    ax.set_title(f"footprint {result.spec.bar}, row {row:g} (bid x ask; POC boxed, "
                 "value area shaded; delta below)", fontsize=9)
    fig.tight_layout()
    return fig


def write_footprint_png(result: FootprintResult, path: Path | str, n_bars: int = 30) -> Path:
    """Render and write the PNG atomically; returns the path."""
    fig = footprint_figure(result, n_bars)
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png")
    return target
