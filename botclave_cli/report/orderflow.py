"""Order-flow sections of a report: footprint picture, volume profile, CVD with divergences.

``add_footprint`` takes a built ``FootprintResult`` (engine) and adds the three charts and the
findings tables (profile levels, divergences, stacked imbalances) to a ``ReportInput``. The
footprint picture itself is drawn by ``report.footprint_chart``; the indicators come from
``engine.signals.indicators``. The pipeline and ``botclave report --run`` both call it.
"""

from __future__ import annotations

import io
import math
from typing import Any

import polars as pl

from botclave_cli.data.manifest import Manifest
from botclave_cli.report.charts import Chart, ChartGenerator
from botclave_cli.report.report import ReportInput

SWING_K = 3  # bars that confirm a swing for the divergence marks (the engine's default)


def footprint_spec(manifest: Manifest | None, bar: str, row_size: int) -> Any:
    """Footprint parameters on the dataset's own grid (tick and lot from its manifest)."""
    from botclave_cli.engine.footprint.builder import FootprintSpec
    from botclave_cli.engine.footprint.store import resolve_tick

    return FootprintSpec(bar=bar, tick_size=resolve_tick(manifest, None), row_size=row_size,
                         qty_step=manifest.lot_size if manifest else None)


def figure_chart(name: str, title: str, fig: Any, data: dict[str, Any]) -> Chart:
    """A Chart from a figure drawn by another module (same PNG settings as ChartGenerator)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return Chart(name=name, title=title, png=buffer.getvalue(), data=data, figure=fig)


def profile_row(row_price: float, low: float, high: float, max_rows: int = 150) -> float:
    """A profile row that is a multiple of the footprint row and keeps the chart <= max_rows."""
    rows = max(1.0, (high - low) / row_price)
    return row_price * max(1, math.ceil(rows / max_rows))


def divergence_marks(cvd: pl.DataFrame, divergences: pl.DataFrame, k: int = SWING_K
                     ) -> list[dict[str, Any]]:
    """Divergence rows -> the two swing bars' times (the second swing is ``k`` bars before the
    confirming bar the signal is stamped with)."""
    if not divergences.height:
        return []
    starts = cvd["bar_start"]
    marks = []
    for row in divergences.iter_rows(named=True):
        confirm = int(starts.search_sorted(row["time"]))
        marks.append({"kind": row["kind"], "start_ts": row["start"],
                      "end_ts": starts[max(confirm - k, 0)]})
    return marks


def _rows(frame: pl.DataFrame, limit: int = 50) -> list[dict[str, Any]]:
    return frame.head(limit).to_dicts() if frame.height else []


def add_footprint(report: ReportInput, charts: ChartGenerator, result: Any, png_bars: int,
                  quote: str = "quote", base: str = "base") -> dict[str, int]:
    """Footprint picture, volume profile and CVD charts plus findings; returns counts."""
    from botclave_cli.engine.signals.indicators import OrderFlowIndicators, volume_profile
    from botclave_cli.report.footprint_chart import footprint_figure

    bar = result.spec.bar
    n = min(png_bars, result.bars.height)
    report.charts.append(figure_chart(
        "footprint", f"Footprint of the last {n} {bar} bars", footprint_figure(result, png_bars),
        {"bars": result.bars.tail(n), "levels": result.levels}))
    ind = OrderFlowIndicators(result)
    low, high = float(result.bars["low"].min()), float(result.bars["high"].max())
    prow = profile_row(ind.row_price, low, high)
    profile = volume_profile(result.levels, prow, close=float(result.bars["close"][-1]),
                             lot=result.spec.step)
    report.charts.append(charts.volume_profile(
        profile.levels["price"], profile.levels["volume"], poc=profile.poc, vah=profile.vah,
        val=profile.val, hvn=profile.hvn["price"].to_list(), lvn=profile.lvn["price"].to_list(),
        row_height=prow, buy_volume=profile.levels["buy_volume"],
        title=f"Volume profile (row {prow:g} {quote})", quote=quote, base=base))
    cvd = ind.cvd()
    divergences = ind.divergence(k=SWING_K)
    marks = divergence_marks(cvd, divergences)
    report.charts.append(charts.cvd(
        cvd["bar_start"], cvd["close"], cvd["cvd"], marks,
        title=f"Close and cumulative volume delta ({bar} bars, {len(marks)} divergence(s))",
        quote=quote, base=base))
    stacked = result.stacked_runs()
    report.findings += [
        ("Volume profile", [{"POC": profile.poc, "VAH": profile.vah, "VAL": profile.val,
                             "HVN": ", ".join(f"{p:g}" for p in profile.hvn["price"]),
                             "LVN": ", ".join(f"{p:g}" for p in profile.lvn["price"])}]),
        ("Delta divergences (CVD, confirmed swings)", _rows(divergences)),
        ("Stacked imbalances", _rows(stacked)),
    ]
    report.summary["footprint bars"] = result.bars.height
    return {"divergences": len(marks), "stacked": stacked.height}
