"""The dashboard under Streamlit's AppTest: every tab renders from the store and the run
folders, and the figures it shows hold the store's numbers (recomputed here independently of
the dashboard's own code where it is cheap: footprints rebuilt from the stored trades, equity
and trades read back from the run's Parquet files)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.dashboard_helpers import (
    DAY,
    app_test,
    figures,
    frames_with,
    no_traceback,
    numbers,
    shared_world,
    times,
    trace,
)

pytest.importorskip("streamlit", reason="the dashboard extra is not installed (make venv does)")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return shared_world(tmp_path_factory)


def stored_footprint(data: Path):
    from botclave_cli.data.store import DatasetRef, Store
    from botclave_cli.engine.footprint.builder import FootprintSpec, build_footprint

    store = Store(data)
    ref = DatasetRef("synth", "spot", "BTC/USDT", "trades")
    trades = store.scan(ref, DAY, DAY + dt.timedelta(days=1)).collect()
    spec = FootprintSpec(bar="1m", tick_size=1.0, qty_step=store.manifest(ref).lot_size)
    return build_footprint(trades, spec)


def test_order_flow_far_out_shows_the_stored_days_candles_delta_and_cvd(world, monkeypatch):
    at = app_test(monkeypatch, world["data"], world["runs"])
    no_traceback(at)
    fp, profile = figures(at)
    result = stored_footprint(world["data"])
    bars = result.bars
    assert bars.height == 1440
    # far out a day of 1m bars goes to the browser as 360 candles of four bars each
    quads = {k: bars[k].to_numpy().reshape(360, 4) for k in ("open", "high", "low", "close",
                                                             "delta")}
    candles = trace(fp, "candles")
    assert times(candles["x"]) == bars["bar_start"].to_list()[::4]
    np.testing.assert_array_equal(numbers(candles["open"]), quads["open"][:, 0])
    np.testing.assert_array_equal(numbers(candles["high"]), quads["high"].max(axis=1))
    np.testing.assert_array_equal(numbers(candles["low"]), quads["low"].min(axis=1))
    np.testing.assert_array_equal(numbers(candles["close"]), quads["close"][:, 3])
    # the delta: its positive part in one area, its negative part in the other
    delta = quads["delta"].sum(axis=1)
    np.testing.assert_allclose(numbers(trace(fp, "delta buy")["y"]), np.maximum(delta, 0),
                               atol=1e-9)
    np.testing.assert_allclose(numbers(trace(fp, "delta sell")["y"]), np.minimum(delta, 0),
                               atol=1e-9)
    assert times(trace(fp, "delta sell")["x"]) == times(candles["x"])
    # one day, reset daily: the CVD is the running sum of the bars' delta (every bar shown)
    np.testing.assert_allclose(numbers(trace(fp, "CVD")["y"]), np.cumsum(bars["delta"]),
                               atol=1e-9)
    # the profile: buy volume per price row (rows of one tick merged k by k, k = ceil(n / 200))
    levels = result.levels
    lo, hi = levels["price"].min(), levels["price"].max()
    n = int(round(hi - lo)) + 1
    k = -(-n // 200)
    per_row = np.zeros(n)
    np.add.at(per_row, np.round(levels["price"].to_numpy() - lo).astype(int),
              levels["ask_volume"].to_numpy())
    expected = np.add.reduceat(per_row, np.arange(0, n, k))
    buy = trace(profile, "buy")
    np.testing.assert_allclose(numbers(buy["x"]), expected, atol=1e-9)
    np.testing.assert_array_equal(numbers(buy["y"]), lo + np.arange(0, n, k))


def test_order_flow_close_in_draws_every_level_bid_by_ask(world, monkeypatch):
    at = app_test(monkeypatch, world["data"], world["runs"])
    result = stored_footprint(world["data"])
    starts = result.bars["bar_start"].to_list()
    at.slider(key="flow_window").set_value((600, 629)).run()
    no_traceback(at)
    fp = figures(at)[0]
    assert "levels (bid x ask)" in fp["layout"]["title"]["text"]
    heat = trace(fp, "footprint")
    xs, ys = times(heat["x"]), list(numbers(heat["y"]))
    assert xs == starts[600:630]
    z, text = heat["z"], heat["text"]
    bars = result.bars.slice(600, 30)
    lv = result.levels.filter(pl.col("bar_id").is_in(bars["bar_id"].implode()))
    assert sum(v is not None for row in z for v in row) == lv.height
    for start, price, bid, ask, delta in lv.select("bar_start", "price", "bid_volume",
                                                   "ask_volume", "delta").iter_rows():
        i, j = ys.index(price), xs.index(start)
        assert z[i][j] == pytest.approx(delta, abs=1e-9)
        assert text[i][j] == f"{bid:g} x {ask:g}"
    np.testing.assert_array_equal(numbers(trace(fp, "POC")["y"]), bars["poc"].to_numpy())
    for flag in ("imbalance_buy", "stacked_sell"):
        hit, shown = lv.filter(pl.col(flag)), trace(fp, flag.replace("_", " "))
        assert times(shown["x"]) == hit["bar_start"].to_list()
        np.testing.assert_array_equal(numbers(shown["y"]), hit["price"].to_numpy())


def test_strategy_tab_shows_the_runs_files(world, monkeypatch):
    at = app_test(monkeypatch, world["data"], world["runs"], tab="Strategy")
    no_traceback(at)
    run_id = world["run_id"]
    at.selectbox(key="run").set_value(run_id).run()
    no_traceback(at)
    folder = world["runs"] / run_id
    equity = pl.read_parquet(folder / "equity.parquet")
    trades = pl.read_parquet(folder / "trades.parquet")
    figs = {f["layout"]["title"]["text"].split(":")[0]: f for f in figures(at)}
    eq = trace(figs["Equity and drawdown"], "equity")
    np.testing.assert_allclose(numbers(eq["y"]), equity["equity"].to_numpy())
    price = next(f for k, f in figs.items() if "entries and exits" in k)
    longs = trades.filter(pl.col("side") == "long")
    np.testing.assert_allclose(numbers(trace(price, "long entry")["y"]),
                               longs["entry_price"].to_numpy())
    shown = frames_with(at, "mae", "mfe")[0]
    assert {"mae", "mfe"} <= set(shown.columns)
    np.testing.assert_allclose(shown["mae"].to_numpy(), trades["mae"].to_numpy())
    validation = json.loads((folder / "validation" / "validation.json").read_text())
    verdict = [b.value for b in (*at.error, *at.warning, *at.success)
               if b.value.startswith("Verdict:")]
    assert verdict and verdict[0].startswith(f"Verdict: {validation['verdict'].upper()}")
    for reason in validation["reasons"]:
        assert reason in verdict[0]
    folds = pl.read_parquet(folder / "validation" / "walk_forward_folds.parquet")
    assert figs["Walk-forward"]["layout"]["title"]["text"] == f"Walk-forward: {folds.height} folds"
    assert "Monte Carlo fan" in figs
    figures_table = frames_with(at, "figure", "value")[0]
    assert set(figures_table["figure"]) == set(validation["figures"])


def test_two_runs_side_by_side(world, monkeypatch):
    at = app_test(monkeypatch, world["data"], world["runs"], tab="Strategy")
    at.selectbox(key="run").set_value(world["run_id"]).run()
    at.selectbox(key="compare").set_value("paper-t1").run()
    no_traceback(at)
    compare = next(f for f in figures(at) if f["layout"]["title"]["text"].startswith("Equity, "))
    assert {t["name"] for t in compare["data"]} == {world["run_id"], "paper-t1"}
    table = frames_with(at, "metric", "paper-t1")[0]
    metrics = json.loads((world["runs"] / "paper-t1" / "metrics.json").read_text())
    row = table[table["metric"] == "trades"]
    assert float(row["paper-t1"].iloc[0]) == metrics["trades"]


def test_depth_tab_draws_the_replayed_book(world, monkeypatch):
    from botclave_cli.data.store import Store, to_us
    from botclave_cli.engine.depth.analyzer import DepthParams
    from botclave_cli.report.sources import book_depth

    at = app_test(monkeypatch, world["data"], world["runs"], tab="Depth")
    no_traceback(at)
    fig = figures(at)[0]
    start = DAY
    result = book_depth(Store(world["data"]), "synth", "spot", "BTC/USDT", to_us(start),
                        to_us(start + dt.timedelta(minutes=15)), DepthParams())
    imb = trace(fig, "imbalance")
    assert times(imb["x"]) == result.series["ts"].to_list()
    np.testing.assert_allclose(numbers(imb["y"]), result.series["imbalance"].to_numpy())
    heat = trace(fig, "resting size")
    assert len(heat["x"]) == min(300, result.samples["ts"].n_unique())
    assert any(v is not None for row in heat["z"] for v in row)


def test_configuration_runs_the_backtest_the_cli_runs(world, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from botclave_cli.cli.app import app
    from tests.dashboard_helpers import SETTINGS

    runs = tmp_path / "out" / "runs"
    at = app_test(monkeypatch, world["data"], runs, tab="Configuration")
    no_traceback(at)
    at.text_area(key="params_set").input("\n".join(SETTINGS[1::2])).run()
    at.button(key="run_backtest").click().run()
    no_traceback(at)
    done = [s.value for s in at.success if s.value.startswith("run ")]
    assert done, [s.value for s in at.success]
    rid = done[0].split()[1].rstrip(":")
    cli = CliRunner().invoke(app, ["backtest", "--no-book", "--exchange", "synth", "--from",
                                   "2024-01-01", "--to", "2024-01-02", "--data-dir",
                                   str(world["data"]), "--out-dir", str(tmp_path / "cli"),
                                   "--json", *SETTINGS])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.output)["run_id"] == rid
    assert_frame_equal(pl.read_parquet(runs / rid / "trades.parquet"),
                       pl.read_parquet(tmp_path / "cli" / "runs" / rid / "trades.parquet"))
    assert at.session_state["new_run"] == rid  # the Strategy tab opens on it
    strategy = app_test(monkeypatch, world["data"], runs, tab="Strategy")
    assert strategy.selectbox(key="run").value == rid  # the newest run comes first


def test_configuration_shows_a_bad_parameter_inline(world, monkeypatch, tmp_path):
    at = app_test(monkeypatch, world["data"], tmp_path / "runs", tab="Configuration")
    at.text_area(key="params_set").input("risk.per_trade=-1").run()
    no_traceback(at)
    assert any("risk.per_trade" in e.value and "greater than 0" in e.value for e in at.error)
    at.text_area(key="params_set").input("").run()
    at.text_area(key="params_yaml").input("risk: {per_trade: 0.01, bogus: 1}").run()
    assert any("risk.bogus: unknown key" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "run_backtest"]


def test_live_tab_follows_the_paper_session(world, monkeypatch, tmp_path):
    import os

    from tests.dashboard_helpers import write_paper

    write_paper(world["data"], world["runs"].parent, "paper-t1", hours=12)  # just written
    at = app_test(monkeypatch, world["data"], world["runs"], tab="Live")
    no_traceback(at)
    markdown = " ".join(m.value for m in at.markdown)
    assert "**paper-t1** connection :green[live] (status running" in markdown
    equity = pl.read_parquet(world["paper"] / "equity.parquet")["equity"]
    shown = {m.label: m.value for m in at.metric}
    assert shown["equity"] == f"{equity[-1]:,.2f}"
    trades = pl.read_parquet(world["paper"] / "trades.parquet")
    assert shown["realized"] == f"{trades['pnl'].sum():+,.2f}"
    write_paper(world["data"], world["runs"].parent, "paper-t1", hours=20)  # the session goes on
    at.run()
    later = pl.read_parquet(world["paper"] / "equity.parquet")["equity"]
    assert {m.label: m.value for m in at.metric}["equity"] == f"{later[-1]:,.2f}"
    manifest = world["paper"] / "manifest.json"
    old = manifest.stat().st_mtime - 120  # no rewrite for two minutes
    os.utime(manifest, (old, old))
    at.run()
    assert "connection :orange[stale]" in " ".join(m.value for m in at.markdown)


def test_live_tab_reads_an_order_journal(world, monkeypatch, tmp_path):
    from botclave_cli.exchange.orders.journal import Journal
    from botclave_cli.exchange.orders.model import OrderRequest, OrderStatus

    data = tmp_path / "data"
    journal = Journal(data / "sessions" / "s9" / "journal.sqlite")
    for cid, price in (("bc-s9-1-en", 41_000.0), ("bc-s9-2-en", 41_500.0)):
        journal.new(OrderRequest(client_id=cid, symbol="BTC/USDT", side="buy", type="limit",
                                 qty=0.01, price=price))
    journal.status(journal.order("bc-s9-1-en"), OrderStatus.SUBMITTED)
    journal.status(journal.order("bc-s9-1-en"), OrderStatus.CANCELED)
    journal.close()
    at = app_test(monkeypatch, data, tmp_path / "runs", tab="Live")
    no_traceback(at)
    open_orders, all_orders = frames_with(at, "client_id", "status")
    assert list(open_orders["client_id"]) == ["bc-s9-2-en"]
    assert set(all_orders["status"]) == {"canceled", "new"}


def test_the_server_warms_the_default_order_flow_before_any_visitor(world, monkeypatch):
    """``botclave_cli.dashboard.server.warm`` builds the sidebar's default selection into the
    tab's caches: the first page is then served without building anything."""
    from botclave_cli.dashboard import flow, server, tab_flow, ui

    ui.cached_view.clear()
    tab_flow.cached_figures.clear()
    monkeypatch.setenv("BOTCLAVE_DATA_DIR", str(world["data"]))
    server.warm()

    def no_build(*args, **kwargs):
        raise AssertionError("built again: the warm cache was not used")

    monkeypatch.setattr(flow, "build_view", no_build)
    at = app_test(monkeypatch, world["data"], world["runs"])
    no_traceback(at)
    assert [e.value for e in at.error] == []
    fp = figures(at)[0]
    assert len(numbers(trace(fp, "candles")["open"])) == 360
