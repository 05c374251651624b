"""``make demo`` with the shipped configs/pipeline.yaml: the pipeline finds the planted edge
(verdict pass, its checks naming every test) and rejects the control market of the same seed
without it (verdict fail), each run realising the edge per trade that truth.json expects within
the stated tolerance; both side by side on one page and on the index; annualised figures from
the 5-day window are flagged with their period count.

The strategy never reads truth.json: it detects the absorptions from the trades (the demo only
reads truth.json afterwards, to score the entries)."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
from html import escape
from pathlib import Path

import polars as pl
import pytest
import yaml

from botclave_cli import demo
from botclave_cli.data.synth import EdgeTruth, Truth, TruthEvent

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    cfg = yaml.safe_load((PROJECT / "configs" / "pipeline.yaml").read_text(encoding="utf-8"))
    for key in ("strategy_config", "validation_config", "exchange_config"):
        cfg[key] = str(PROJECT / cfg[key])
    cfg.update(reports_dir=str(tmp / "reports"), data_dir=str(tmp / "datasets"))
    path = tmp / "pipeline.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()) as out:
            code = demo.main([str(path)])
    runs = {}
    for folder in (tmp / "reports" / "runs").iterdir():
        v = folder / "validation" / "validation.json"
        if v.exists():
            runs[json.loads((folder / "manifest.json").read_text())["pipeline"]] = folder
    return tmp, code, out.getvalue(), err.getvalue(), runs


def validation(folder: Path) -> dict:
    return json.loads((folder / "validation" / "validation.json").read_text(encoding="utf-8"))


def run_of(runs: dict, control: bool) -> Path:
    (folder,) = [f for title, f in runs.items() if title.endswith("no edge") == control]
    return folder


def check_of(tmp: Path, folder: Path, control: bool):
    from botclave_cli.data.synth import read_truth

    data = tmp / ("datasets-no-edge" if control else "datasets")
    truth = read_truth(data / "synth" / "spot" / "BTC-USDT" / "truth.json")
    return truth, demo.edge_check(truth, pl.read_parquet(folder / "trades.parquet"))


def test_the_edge_is_found_and_passes(shipped):
    tmp, code, _, err, runs = shipped
    assert code == 0, err
    assert len(runs) == 2
    v = validation(run_of(runs, control=False))
    assert v["verdict"] == "pass" and v["reasons"] == []
    named = " ".join(v["checks"])
    for test in ("oos_sharpe", "psr", "dsr", "pbo", "wfe", "stability", "ruin"):
        assert f"pass: {test} " in named, test
    # out of sample (the stitched walk-forward test windows) the strategy profits
    assert v["figures"]["oos_sharpe"] > 0 and v["walk_forward"]["oos"]["total_return"] > 0
    assert "edge: verdict pass: pass: oos_sharpe" in err


def test_the_control_is_rejected(shipped):
    _, _, _, err, runs = shipped
    v = validation(run_of(runs, control=True))
    assert v["verdict"] == "fail"
    assert any(r.startswith("fail: oos_sharpe") for r in v["reasons"])
    assert v["figures"]["dsr"] < 0.05 and v["figures"]["psr"] < 0.05
    # nine sets, three groups by stop: the in-sample winner rarely stays best (README)
    assert v["figures"]["pbo"] > 0.5
    assert any(r.startswith("fail: pbo") for r in v["reasons"])
    assert "control: verdict fail: fail: oos_sharpe" in err


@pytest.mark.parametrize("control", [False, True])
def test_realised_edge_per_trade_within_tolerance_of_truth(shipped, control):
    tmp, _, _, _, runs = shipped
    folder = run_of(runs, control)
    truth, check = check_of(tmp, folder, control)
    assert truth.edge is not None and truth.edge.enabled is not control
    assert check.trades >= 30 and check.at_events >= 0.9 * check.trades
    assert check.within, check.line()
    trades = pl.read_parquet(folder / "trades.parquet")
    # every planted absorption is traded once, faded (long a bid, short an ask)
    for e in truth.events_of("absorption"):
        hit = trades.filter(pl.col("entry_ts").dt.epoch("us").is_between(e.start_us, e.end_us))
        assert hit.height == 1 and hit["side"][0] == ("long" if e.side == "bid" else "short")
    if not control:
        # given the outcomes drawn, the trades at the events earn what the reference trade
        # earns, to a tick of spread
        assert check.realised_at_events_bps == pytest.approx(check.reference_bps, abs=1.0)
        assert check.realised_bps > 0


def test_side_by_side_and_short_window_flags(shipped):
    tmp, _, out, err, runs = shipped
    page = Path(out.strip().splitlines()[-1])
    assert page.name == "comparison.html" and page.exists()
    html = page.read_text(encoding="utf-8")
    index = (tmp / "reports" / "index.html").read_text(encoding="utf-8")
    for folder in runs.values():
        assert folder.name in html and folder.name in index
    assert "Side by side" in index and page.parent.name in index
    for text in ("planted edge", "--no-edge", "realised edge (bps/trade)", "bounds met",
                 "oos return % (walk-forward)"):
        assert text in html, text
    # the 5-day window: 7,200 one-minute periods, flagged wherever a ratio is annualised
    flag = "annualised from 7,200 periods (5.0 days < 30): too short to annualise"
    assert len([line for line in err.splitlines() if "; sharpe " in line
                and f"[{flag}]" in line]) == 2  # both runs' summary lines
    shown = escape(flag)  # "<" is "&lt;" in the pages
    assert shown in html and shown in index
    report = (tmp / "reports" / "html" / run_of(runs, False).name / "report.html").read_text(
        encoding="utf-8")
    assert shown in report
    assert escape("annualised from 4,320 periods (3.0 days < 30)") in report  # OOS windows


def test_edge_check_by_hand():
    ev = [TruthEvent(kind="absorption", start_us=0, end_us=180_000_000, price_low=100.0,
                     price_high=100.0, side="bid",
                     detail={"reference_return_bps": 50.0, "outcome": "reversal"})]
    truth = Truth(symbol="X/Y", seed=0, tick_size=1.0, lot_size=1.0, start_us=0,
                  end_us=10**12, detector_params={}, events=ev, quiet=[],
                  edge=EdgeTruth(enabled=True, follow_through={}, events=1, reversals=1,
                                 expected_edge_bps=40.0, note=""))
    t0 = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    trades = pl.DataFrame({
        "entry_ts": [t0 + dt.timedelta(seconds=60), t0 + dt.timedelta(hours=1)],
        "entry_price": [100.0, 200.0], "qty": [2.0, 1.0],
        "pnl": [1.0, -0.4],  # +50 bps of 200, -20 bps of 200
    })
    c = demo.edge_check(truth, trades)
    assert (c.trades, c.at_events) == (2, 1)
    assert c.realised_bps == pytest.approx(15.0)
    assert c.sd_bps == pytest.approx(49.497475, abs=1e-6)  # |50 - -20| / sqrt(2)
    assert c.tolerance_bps == pytest.approx(3 * 49.497475 / 2 ** 0.5 + 2.0, abs=1e-6)
    assert c.within  # |15 - 40| = 25 <= 107.0
    assert (c.reference_bps, c.realised_at_events_bps) == (50.0, pytest.approx(50.0))
    assert "realised edge +15.0 bps per trade over 2 trade(s), 1 at planted" in c.line()


def test_control_config_is_the_same_pipeline_without_the_edge(tmp_path):
    cfg = demo.demo_config(tmp_path / "missing.yaml").model_copy(
        update={"data_dir": tmp_path / "data"})
    ctl = demo.control_config(cfg)
    assert cfg.synth.edge and not ctl.synth.edge
    assert ctl.resolved_data_dir() == tmp_path / "data-no-edge"
    assert ctl.synth.seed == cfg.synth.seed and ctl.backtest == cfg.backtest
    assert ctl.title.endswith("no edge") and os.fspath(ctl.reports_dir) == os.fspath(
        cfg.reports_dir)
