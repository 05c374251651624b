"""The order-flow pictures the report embeds, checked for content from hand-made trades: the
footprint chart's cells are the footprint table's bid x ask volumes, imbalances and POC sit on
the right rows; the depth heatmap holds exactly the sampled resting size; the report's volume
profile and CVD charts show the engine's numbers."""

from __future__ import annotations

import datetime as dt

import matplotlib.colors as mcolors
import numpy as np
import polars as pl
import pytest
from matplotlib.patches import Rectangle

from botclave_cli.engine.footprint.builder import FootprintSpec, build_footprint
from botclave_cli.report.charts import BUY_COLOR, SELL_COLOR, ChartGenerator
from botclave_cli.report.footprint_chart import footprint_figure
from botclave_cli.report.heatmap import depth_heatmap
from botclave_cli.report.orderflow import add_footprint, divergence_marks, profile_row
from botclave_cli.report.report import ReportInput

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def trades(rows: list[tuple[int, float, float, str]]) -> pl.DataFrame:
    """(second, price, qty, side) -> trades in the store schema."""
    return pl.DataFrame({
        "ts": [T0 + dt.timedelta(seconds=s) for s, *_ in rows],
        "price": [p for _, p, _, _ in rows], "qty": [q for *_, q, _ in rows],
        "side": [x for *_, x in rows],
    }, schema_overrides={"ts": pl.Datetime("us", "UTC")})


# two 1-minute bars on a 1-tick grid: bar 0 trades 100.00..100.02, bar 1 trades 100.01..100.03
TAPE = trades([
    (1, 100.00, 1.0, "sell"), (2, 100.00, 2.0, "buy"), (3, 100.01, 8.0, "buy"),
    (4, 100.00, 2.0, "sell"), (5, 100.02, 3.0, "buy"), (6, 100.01, 1.0, "sell"),
    (61, 100.02, 4.0, "sell"), (62, 100.03, 1.0, "buy"), (63, 100.01, 5.0, "sell"),
    (64, 100.02, 1.0, "buy"),
])


@pytest.fixture(scope="module")
def result():
    return build_footprint(TAPE, FootprintSpec(bar="1m", tick_size=0.01, row_size=1,
                                               qty_step=0.001))


def test_footprint_cells_equal_the_footprint_table(result):
    fig = footprint_figure(result, n_bars=2)
    ax = fig.axes[0]
    cells = {}
    for text in ax.texts:
        if " x " in text.get_text():
            x, y = text.get_position()
            cells[(round(x), round(y - 0.005, 2))] = text.get_text()
    # hand count: bar 0: 100.00 bid 1+2=3 ask 2; 100.01 bid 1 ask 8; 100.02 bid 0 ask 3
    #             bar 1: 100.01 bid 5 ask 0; 100.02 bid 4 ask 1; 100.03 bid 0 ask 1
    assert cells == {(0, 100.0): "3 x 2", (0, 100.01): "1 x 8", (0, 100.02): "0 x 3",
                     (1, 100.01): "5 x 0", (1, 100.02): "4 x 1", (1, 100.03): "0 x 1"}
    table = {(int(r["bar_id"] - result.bars["bar_id"][0]), round(r["price"], 2)):
             (r["bid_volume"], r["ask_volume"]) for r in result.levels.iter_rows(named=True)}
    assert {k: f"{b:g} x {a:g}" for k, (b, a) in table.items()} == cells


def test_footprint_imbalance_and_poc_rows(result):
    levels = result.levels.sort("bar_id", "price")
    ax = footprint_figure(result, n_bars=2).axes[0]
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    buy = mcolors.to_rgba(BUY_COLOR, 0.35)
    sell = mcolors.to_rgba(SELL_COLOR, 0.35)
    first_bar = result.bars["bar_id"][0]
    drawn_buy = sorted((round(r.get_x()), round(r.get_y(), 2)) for r in rects
                       if r.get_facecolor() == buy)
    drawn_sell = sorted((round(r.get_x() + 0.45), round(r.get_y(), 2)) for r in rects
                        if r.get_facecolor() == sell)
    want_buy = sorted((int(r["bar_id"] - first_bar), round(r["price"], 2))
                      for r in levels.filter(pl.col("imbalance_buy")).iter_rows(named=True))
    want_sell = sorted((int(r["bar_id"] - first_bar), round(r["price"], 2))
                       for r in levels.filter(pl.col("imbalance_sell")).iter_rows(named=True))
    assert drawn_buy == want_buy and drawn_sell == want_sell
    # 3 bought at 100.02 against 1 sold one row below: ratio 3 (8 vs 3 at 100.01 is not)
    assert want_buy == [(0, 100.02)]
    outlined = sorted(round(r.get_y(), 2) for r in rects if not r.get_fill())
    assert outlined == sorted(round(p, 2) for p in result.bars["poc"])
    # bar 0: 100.01 holds 9 (the most); bar 1: 100.01 and 100.02 tie at 5, the close (100.02)
    # decides
    assert list(result.bars["poc"].round(2)) == [100.01, 100.02]


def test_report_sections_show_the_engines_numbers(result):
    from botclave_cli.engine.signals.indicators import OrderFlowIndicators

    report = ReportInput("r", "t", {})
    found = add_footprint(report, ChartGenerator(dpi=40), result, png_bars=5, quote="USDT",
                          base="BTC")
    charts = {c.name: c for c in report.charts}
    assert list(charts) == ["footprint", "volume_profile", "cvd"]
    profile = charts["volume_profile"].data
    # profile rows of one tick: 100.00: 5, 100.01: 14, 100.02: 8, 100.03: 1 (base units)
    assert dict(zip(np.round(profile["price"], 2), profile["volume"], strict=True)) == {
        100.0: 5.0, 100.01: 14.0, 100.02: 8.0, 100.03: 1.0}
    assert profile["poc"] == pytest.approx(100.01)
    cvd = charts["cvd"].figure.axes[1].lines[0].get_ydata()
    # bar deltas (ask - bid): bar 0: 13 - 4 = 9; bar 1: 2 - 9 = -7
    assert list(cvd) == [9.0, 2.0]
    assert list(OrderFlowIndicators(result).cvd()["cvd"]) == [9.0, 2.0]
    assert found == {"divergences": 0, "stacked": result.stacked_runs().height}
    assert report.summary["footprint bars"] == 2


def test_divergence_marks_and_profile_row():
    cvd = pl.DataFrame({"bar_start": [T0 + dt.timedelta(minutes=i) for i in range(10)]})
    div = pl.DataFrame({"time": [T0 + dt.timedelta(minutes=8)], "start": [T0],
                        "kind": ["bearish_divergence"]})
    (mark,) = divergence_marks(cvd, div, k=3)
    assert mark["end_ts"] == T0 + dt.timedelta(minutes=5) and mark["start_ts"] == T0
    assert profile_row(0.1, 100.0, 110.0) == pytest.approx(0.1)  # 100 rows fit
    assert profile_row(0.1, 100.0, 200.0) == pytest.approx(0.7)  # 1000 rows -> 143 rows


def test_depth_heatmap_holds_the_sampled_size():
    ts = [T0 + dt.timedelta(seconds=s) for s in (0, 0, 0, 1, 1)]
    samples = pl.DataFrame({"ts": ts, "price": [99.0, 99.5, 100.5, 99.0, 100.5],
                            "qty": [2.0, 1.0, 4.0, 3.0, 5.0]},
                           schema_overrides={"ts": pl.Datetime("us", "UTC")})
    tape = trades([(0, 100.5, 0.5, "buy"), (1, 99.0, 0.25, "sell"), (1, 99.0, 0.5, "sell")])
    chart = depth_heatmap(samples, tape, row_price=0.5)
    matrix = chart.data["matrix"]
    assert matrix.sum() == pytest.approx(15.0)
    edges = list(chart.data["price_edges"])
    assert matrix[edges.index(99.0)].tolist() == [2.0, 3.0]
    assert matrix[edges.index(100.5)].tolist() == [4.0, 5.0]
    assert chart.data["trades"] == {"buy": 1, "sell": 2}
