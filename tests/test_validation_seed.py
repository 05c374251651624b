"""`validation.json` records the Monte Carlo seed; `report --run` redraws its fan with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from botclave_cli.backtest.results import write_results
from botclave_cli.report.sources import monte_carlo_fan_settings, report_for_run
from botclave_cli.validate.config import MonteCarloConfig
from botclave_cli.validate.montecarlo import reshuffled_paths
from tests.test_backtest_run import random_trades, run
from tests.test_report_depth import capture
from tests.test_validation_toy import make_market
from tests.test_validator import _config, _validator


def test_validation_json_records_the_seed_used(tmp_path: Path):
    market = make_market(600, seed=4, ar=0.2)
    cfg = _config(monte_carlo={"runs": 30, "method": "reshuffle", "seed": 11})
    _validator(market, cfg).run("monte-carlo").write(tmp_path / "config")
    _validator(market, cfg).run("monte-carlo", seed=123).write(tmp_path / "option")
    for name, seed in (("config", 11), ("option", 123)):
        saved = json.loads((tmp_path / name / "validation.json").read_text())
        assert saved["monte_carlo"]["seed"] == seed
        assert monte_carlo_fan_settings(tmp_path / name) == (30, seed)


def test_report_run_draws_the_fan_with_the_recorded_seed(tmp_path: Path, monkeypatch):
    res = run(trades=random_trades(n=30_000, hours=6, price_step=3.0))
    pnl = res.trades["pnl"].drop_nulls().to_numpy()
    assert pnl.size >= 6  # 720 orders: two seeds' 25 draws differ
    rid, folder = write_results(res, tmp_path)
    market = make_market(600, seed=4, ar=0.2)
    cfg = _config(monte_carlo={"runs": 25, "method": "reshuffle"})
    assert MonteCarloConfig().seed != 99
    _validator(market, cfg).run("monte-carlo", seed=99).write(folder / "validation")
    seen = capture(monkeypatch)
    report_for_run(tmp_path, rid)
    fan = next(c for c in seen[-1].charts if c.name == "monte_carlo_fan")
    assert "(seed 99)" in fan.title and fan.data["runs"] == 25
    start = res.metrics["start_equity"]

    def bands(seed: int) -> np.ndarray:  # the fan's bands, drawn independently here
        paths = start + np.cumsum(reshuffled_paths(pnl, 25, np.random.default_rng(seed)), axis=1)
        return np.percentile(np.column_stack([np.full(25, start), paths]), [5, 25, 50, 75, 95],
                             axis=0)

    drawn = np.stack([fan.data[b] for b in ("p5", "p25", "median", "p75", "p95")])
    np.testing.assert_allclose(drawn, bands(99))
    assert not np.allclose(drawn, bands(MonteCarloConfig().seed))
