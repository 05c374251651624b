"""The dashboard's small pure pieces against hand-worked values, and the rule that only the
dashboard package imports Streamlit or plotly."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytest.importorskip("plotly", reason="the dashboard extra is not installed (make venv does)")

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


def test_overview_merges_consecutive_bars_k_by_k():
    from botclave_cli.dashboard.flow import overview_bars

    bars = pl.DataFrame({
        "bar_start": [T0 + i * MINUTE for i in range(5)],
        "bar_end": [T0 + (i + 1) * MINUTE for i in range(5)],
        "open": [10.0, 11.0, 12.0, 13.0, 14.0], "high": [11.0, 15.0, 13.0, 14.0, 16.0],
        "low": [9.0, 10.0, 8.0, 12.0, 13.0], "close": [11.0, 12.0, 13.0, 14.0, 15.0],
        "volume": [1.0, 2.0, 3.0, 4.0, 5.0], "delta": [1.0, -2.0, 0.5, 4.0, -1.0]})
    out = overview_bars(bars, max_bars=2)  # k = ceil(5 / 2) = 3: bars 0-2 and 3-4
    assert out["bar_start"].to_list() == [T0, T0 + 3 * MINUTE]
    assert out["bar_end"].to_list() == [T0 + 3 * MINUTE, T0 + 5 * MINUTE]
    assert out["open"].to_list() == [10.0, 13.0]
    assert out["high"].to_list() == [15.0, 16.0]
    assert out["low"].to_list() == [8.0, 12.0]
    assert out["close"].to_list() == [13.0, 15.0]
    assert out["volume"].to_list() == [6.0, 9.0]
    assert out["delta"].to_list() == [-0.5, 3.0]
    assert out["bars"].to_list() == [3, 2]
    assert overview_bars(bars, max_bars=5).height == 5


def test_profile_rows_merge_k_by_k():
    from botclave_cli.dashboard.flow import profile_rows

    rows = pl.DataFrame({"price": [10.0, 11.0, 12.0, 13.0, 14.0],
                         "volume": [1.0, 2.0, 3.0, 4.0, 5.0],
                         "buy_volume": [1.0, 0.0, 3.0, 1.0, 5.0],
                         "sell_volume": [0.0, 2.0, 0.0, 3.0, 0.0]})
    out = profile_rows(rows, max_rows=2)  # k = 3: rows 10-12 and 13-14
    assert out.to_dict(as_series=False) == {"price": [10.0, 13.0], "volume": [6.0, 9.0],
                                            "buy_volume": [4.0, 6.0],
                                            "sell_volume": [2.0, 3.0]}
    assert profile_rows(rows, max_rows=5) is rows


def test_detail_grid_places_each_level_in_its_bar_and_row():
    from botclave_cli.dashboard.flow import detail_grid

    bars = pl.DataFrame({"bar_id": [7, 8], "bar_start": [T0, T0 + MINUTE]})
    levels = pl.DataFrame({"bar_id": [7, 7, 8, 9], "price": [100.0, 101.0, 101.0, 102.0],
                           "bid_volume": [1.5, 0.0, 2.0, 9.0], "ask_volume": [0.5, 3.0, 2.0, 9.0],
                           "delta": [-1.0, 3.0, 0.0, 0.0]})
    xs, ys, z, text = detail_grid(levels, bars)
    assert xs == [T0, T0 + MINUTE] and ys == [100.0, 101.0]  # bar 9 is not shown
    assert z == [[-1.0, None], [3.0, 0.0]]
    assert text == [["1.5 x 0.5", ""], ["0 x 3", "2 x 2"]]


def test_drawdown_is_percent_below_the_running_peak():
    from botclave_cli.dashboard.fig_strategy import drawdown_pct

    np.testing.assert_allclose(drawdown_pct(np.array([100.0, 110.0, 99.0, 121.0, 60.5])),
                               [0.0, 0.0, -10.0, 0.0, -50.0])


def test_connection_state():
    from botclave_cli.dashboard.live import connection_state

    assert connection_state("running", 5.0) == "live"
    assert connection_state("running", 30.0) == "live"
    assert connection_state("running", 30.5) == "stale"
    assert connection_state("stopped", 1.0) == "stopped"
    assert connection_state("complete", 1.0) == "stopped"


def test_heatmap_rows_are_whole_ticks():
    from botclave_cli.dashboard.fig_depth import row_price

    samples = pl.DataFrame({"price": [100.0, 190.0]})
    assert row_price(samples, 1.0) == 1.0  # 90 ticks fit in 200 rows
    assert row_price(samples, 0.1) == pytest.approx(0.5)  # 900 ticks: 5 a row -> 180 rows
    assert row_price(pl.DataFrame({"price": [5.0, 5.0]}), 0.5) == 0.5


def test_markets_lists_every_stored_trades_dataset(store):
    from botclave_cli.dashboard.data import markets
    from botclave_cli.data.manifest import Manifest
    from botclave_cli.data.store import DatasetRef

    for exchange, kind, day in (("binance", "agg_trades", 2), ("synth", "trades", 3)):
        ref = DatasetRef(exchange, "spot", "BTC/USDT", kind)
        df = pl.DataFrame({"ts": [dt.datetime(2024, 1, d, 12, tzinfo=dt.UTC)
                                  for d in (1, day)],
                           "price": [1.0, 2.0], "qty": [1.0, 1.0], "side": ["buy", "sell"],
                           "trade_id" if kind == "trades" else "agg_id": [1, 2]})
        store.write(ref, df, new_manifest=lambda r=ref: Manifest(
            kind=r.kind, exchange=r.exchange, market=r.market, symbol=r.symbol, source="test"))
    found = markets(store)
    assert [(m.label, m.first_day.day, m.last_day.day) for m in found] == [
        ("binance/spot/BTC/USDT", 1, 2), ("synth/spot/BTC/USDT", 1, 3)]


def test_only_the_dashboard_imports_streamlit_or_plotly():
    package = Path(__file__).resolve().parents[1] / "botclave_cli"
    wrong = []
    for path in sorted(package.rglob("*.py")):
        if path.relative_to(package).parts[0] == "dashboard":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            wrong += [f"{path.relative_to(package)}: {n}" for n in names
                      if n.split(".")[0] in ("streamlit", "plotly")]
    assert wrong == []
