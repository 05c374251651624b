"""StrategyValidator with a toy evaluator: no OOS leakage, parallel == serial, verdicts."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from botclave_cli.errors import ConfigError, UsageError
from botclave_cli.validate.config import Thresholds, ValidationConfig, VerdictConfig
from botclave_cli.validate.evaluation import Timeline
from botclave_cli.validate.executor import (
    AutoExecutor,
    ProcessExecutor,
    SerialExecutor,
    make_executor,
)
from botclave_cli.validate.param_space import build_space
from botclave_cli.validate.splits import walk_forward_folds
from botclave_cli.validate.validator import StrategyValidator
from botclave_cli.validate.verdict import ValidationResult, apply_verdict, check_thresholds
from tests.conftest import PROJECT_ROOT
from tests.test_validation_toy import ToyEvaluator, make_market

BAR = 60_000_000
START = 1_704_067_200_000_000  # 2024-01-01


def _config(**over) -> ValidationConfig:
    data = {
        "parameters": {"lookback": [3, 8, 20], "threshold": [0.0, 0.02]},
        "walk_forward": {"folds": 3, "gap_bars": 4, "min_train_bars": 20, "min_test_bars": 10},
        "monte_carlo": {"runs": 150, "method": "both", "block_bars": 20},
        "pbo": {"blocks": 6},
    }
    data.update(over)
    return ValidationConfig.model_validate(data)


def _validator(market, cfg=None, executor=None) -> StrategyValidator:
    cfg = cfg or _config()
    tl = Timeline(START, START + len(market) * BAR, BAR)
    return StrategyValidator(ToyEvaluator(market, tl), tl, cfg, build_space(cfg), executor)


def _poison(market, from_bar):
    """Replace everything from ``from_bar`` on by a violently mean-reverting market, in which
    the momentum rule that wins on the clean data loses."""
    out = market.copy()
    out[from_bar:] = make_market(len(market) - from_bar, seed=99, ar=-0.7, vol=0.03)
    return out


def _chosen(market, cfg):
    return _validator(market, cfg).run("walk-forward").tables["walk_forward_folds"].to_dicts()


def test_poisoning_oos_bars_changes_no_in_fold_choice():
    market = make_market(900, seed=3, ar=0.1)
    cfg = _config()
    clean = _chosen(market, cfg)
    folds = walk_forward_folds(900, 3, "rolling", 2, 4, 20, 10)
    for j, fold in enumerate(folds):
        # poison from fold j's first purged bar on: folds 0..j chose on clean bars only
        rows = _chosen(_poison(market, fold.train.end), cfg)
        for i in range(j + 1):
            assert rows[i]["params"] == clean[i]["params"]
            assert rows[i]["is_sharpe"] == clean[i]["is_sharpe"]
        assert rows[j]["oos_sharpe"] != clean[j]["oos_sharpe"]  # the poison was there
        # the same poison reaching 60 bars into the in-sample window does change the choice,
        # so the test above would catch a leak
        leaked = _chosen(_poison(market, fold.train.end - 60), cfg)
        assert leaked[j]["params"] != clean[j]["params"]


def test_walk_forward_report_and_stitching():
    market = make_market(900, seed=3, ar=0.1)
    res = _validator(market).run("walk-forward")
    folds = res.tables["walk_forward_folds"]
    assert folds.height == 3
    assert folds["oos_start"].to_list()[1] == folds["oos_end"].to_list()[0]
    eq = res.tables["oos_equity"]
    assert eq.height == sum(folds["oos_bars"].to_list()) == 3 * (900 // 5)
    assert eq["ts"].dtype == pl.Datetime("us", "UTC")
    np.testing.assert_allclose(eq["equity"].to_numpy(), np.cumprod(1 + eq["return"].to_numpy()))
    wf = res.sections["walk_forward"]
    assert wf["folds"] == 3 and "wfe" in wf and res.figures["oos_sharpe"] is not None


def test_parallel_equals_serial_byte_for_byte(tmp_path):
    market = make_market(900, seed=5, ar=0.1)
    cfg = _config()
    serial = _validator(market, cfg, SerialExecutor()).run("all")
    with ProcessExecutor(2) as ex:
        parallel = _validator(market, cfg, ex).run("all")
    auto = AutoExecutor()  # the toy's evaluations take milliseconds: it stays serial
    auto_serial = _validator(market, cfg, auto).run("all")
    assert auto.report()["used"] == 1
    # a free pool start: the first batch's rest (after 3 timed tasks) and every later batch of
    # 2+ tasks run in a 2-worker pool
    with AutoExecutor(cores=2, pool_start_s=0.0) as auto:
        auto_pool = _validator(market, cfg, auto).run("all")
        assert auto.report()["used"] == 2
    a = serial.write(tmp_path / "serial")
    assert {p.name for p in a} >= {"validation.json", "walk_forward_folds.parquet",
                                   "oos_equity.parquet", "pbo_logits.parquet",
                                   "parameter_sets.parquet", "monte_carlo_reshuffle.parquet",
                                   "monte_carlo_bootstrap.parquet"}
    for name, other in (("parallel", parallel), ("auto_serial", auto_serial),
                        ("auto_pool", auto_pool)):
        b = other.write(tmp_path / name)
        assert [p.name for p in a] == [p.name for p in b]
        for pa, pb in zip(a, b, strict=True):
            assert pa.read_bytes() == pb.read_bytes(), (name, pa.name)


def test_planted_edge_passes_pbo_and_noise_does_not():
    cfg = _config(parameters={"lookback": [2, 4, 8, 16, 32], "threshold": [0.0]},
                  pbo={"blocks": 8})
    edge = _validator(make_market(2000, seed=1, ar=0.3), cfg).run("pbo")
    noise = _validator(make_market(2000, seed=1), cfg).run("pbo")
    assert edge.figures["pbo"] < 0.2
    assert noise.figures["pbo"] > edge.figures["pbo"]
    assert edge.sections["pbo"]["selection"]["trials"] == 5
    assert edge.figures["dsr"] > 0.95


def test_oos_holdout_section():
    res = _validator(make_market(600, seed=2, ar=0.2)).run("oos")
    sec = res.sections["oos"]
    assert sec["windows"]["is_end"] < sec["windows"]["oos_start"]
    assert sec["selection"]["trials"] == 6
    assert set(res.figures) >= {"oos_sharpe", "psr", "dsr"}


def test_verdict_rules():
    figures = {"oos_sharpe": -0.5, "pbo": 0.3, "dsr": None, "wfe": 0.8}
    fail = Thresholds(oos_sharpe_min=0.0, pbo_max=0.5)
    warn = Thresholds(pbo_max=0.2, dsr_min=0.95, wfe_min=0.5, ruin_max=0.05)
    assert check_thresholds(figures, fail, "fail") == ["fail: oos_sharpe -0.5 < 0"]
    assert check_thresholds(figures, warn, "warn") == [
        "warn: dsr is undefined (too few returns)", "warn: pbo 0.3 > 0.2"]
    out = ValidationResult("all", figures={"oos_sharpe": 1.0, "pbo": 0.1})
    apply_verdict(out, VerdictConfig(fail=fail, warn=warn))
    assert (out.verdict, out.reasons, out.exit_code) == ("pass", [], 0)
    out = ValidationResult("all", figures={"oos_sharpe": 1.0, "pbo": 0.3})
    apply_verdict(out, VerdictConfig(fail=fail, warn=warn))
    assert (out.verdict, out.exit_code) == ("warn", 0)
    out = ValidationResult("all", figures={"oos_sharpe": -1.0, "pbo": 0.3})
    apply_verdict(out, VerdictConfig(fail=fail, warn=warn))
    assert (out.verdict, out.exit_code) == ("fail", 1)
    assert out.reasons[0].startswith("fail:")


def test_parameter_space_grid_random_and_errors():
    cfg = _config(parameters={"a": {"min": 1, "max": 3, "step": 1}, "b": [0.5, 1.5]})
    space = build_space(cfg)
    assert space.sets == [{"a": 1, "b": 0.5}, {"a": 1, "b": 1.5}, {"a": 2, "b": 0.5},
                          {"a": 2, "b": 1.5}, {"a": 3, "b": 0.5}, {"a": 3, "b": 1.5}]
    assert space.coords.tolist()[3] == [1, 1]
    rnd = _config(parameters={"a": list(range(10)), "b": list(range(10))},
                  search={"method": "random", "max_sets": 7, "seed": 1})
    s1, s2 = build_space(rnd), build_space(rnd)
    assert s1.sets == s2.sets and len(s1.sets) == 7 and len({str(s) for s in s1.sets}) == 7
    with pytest.raises(UsageError, match="parameters is empty"):
        build_space(_config(parameters={}))
    with pytest.raises(UsageError, match="parameters.a has no values"):
        build_space(_config(parameters={"a": []}))
    with pytest.raises(UsageError, match="grid has 100 parameter sets"):
        build_space(_config(parameters={"a": list(range(10)), "b": list(range(10))}))

    def check(params):
        if params["a"] > 2:
            raise ConfigError(f"validation.yaml: parameters.a: {params['a']} is above 2")

    with pytest.raises(ConfigError, match="parameters.a: 3 is above 2"):
        build_space(cfg, check=check)


def test_too_few_bars_for_folds():
    with pytest.raises(UsageError, match="fewer than 3 folds need"):
        _validator(make_market(59, seed=1)).run("walk-forward")


def test_monte_carlo_in_all_uses_the_stitched_oos_and_json_is_plain(tmp_path):
    res = _validator(make_market(900, seed=4, ar=0.2)).run("all")
    mc = res.sections["monte_carlo"]
    assert mc["source"] == "stitched walk-forward out of sample"
    assert mc["reshuffle"]["runs"] == 150 and mc["bootstrap"]["runs"] == 150
    assert res.figures["ruin"] == max(mc["reshuffle"]["prob_ruin"], mc["bootstrap"]["prob_ruin"])
    res.write(tmp_path)
    data = json.loads((tmp_path / "validation.json").read_text())
    assert data["verdict"] in ("pass", "warn", "fail")
    assert data["verdict"] == res.verdict


def test_make_executor():
    assert isinstance(make_executor(1), SerialExecutor)
    assert make_executor(3).jobs == 3
    with pytest.raises(UsageError):
        make_executor(-1)


class ExpectingExecutor(SerialExecutor):
    """Serial, and records what the validator announces before each batch."""

    def __init__(self) -> None:
        self.announced: list[tuple[int, int]] = []
        self.batches: list[int] = []

    def expect(self, tasks: int, weight: int) -> None:
        self.announced.append((tasks, weight // BAR))

    def map(self, fn, items, on_result=None):
        self.batches.append(len(items))
        return super().map(fn, items, on_result)


def test_plan_and_what_the_validator_announces_to_jobs_auto():
    ex = ExpectingExecutor()
    v = _validator(make_market(900, seed=5), executor=ex)
    # 900 bars, 6 sets. Walk-forward: 3 folds of 180 test bars after 2 segments of 180 less
    # the 4-bar gap = 356 train bars; holdout: 270 test bars, 900 - 270 - 5 = 625 train bars
    assert [(n, w // BAR) for n, w in v.plan("all")] == [
        (18, 6 * 3 * 356), (3, 3 * 180), (6, 6 * 625), (1, 270), (6, 6 * 900)]
    assert [(n, w // BAR) for n, w in v.plan("monte-carlo")] == [(1, 900)]
    v.run("all")
    # before each evaluation batch: the work of the batches after it (Monte Carlo's chunks
    # are not evaluations and are judged on their own)
    assert ex.announced == [(16, 540 + 3750 + 270 + 5400), (13, 3750 + 270 + 5400),
                            (7, 270 + 5400), (6, 5400), (0, 0)]
    assert ex.batches[:5] == [18, 3, 6, 1, 6]


def test_write_replaces_the_folder_as_a_whole(tmp_path):
    market = make_market(900, seed=4, ar=0.2)
    target = tmp_path / "run" / "validation"
    _validator(market).run("all").write(target)
    assert (target / "monte_carlo_bootstrap.parquet").exists()
    written = _validator(market).run("pbo").write(target)
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in written) == [
        "parameter_sets.parquet", "pbo_logits.parquet", "validation.json"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["validation"]  # no temp left


def test_executors_keep_order_and_report_each_result():
    calls: list[int] = []
    assert SerialExecutor().map(abs, [-1, -2], lambda: calls.append(1)) == [1, 2]
    with ProcessExecutor(2) as ex:
        assert ex.map(abs, list(range(-40, 0)), lambda: calls.append(1)) == list(range(40, 0, -1))
    assert len(calls) == 42


def test_default_config_matches_the_shipped_file_and_fits_the_strategy_schema():
    from botclave_cli.config import load_model
    from botclave_cli.strategy.params import StrategyParams, params_with_overrides

    shipped = load_model(PROJECT_ROOT / "configs" / "validation.yaml", ValidationConfig)
    default = ValidationConfig()
    assert shipped.parameters == default.parameters
    assert shipped.walk_forward.folds == 3 and shipped.monte_carlo.runs == 200
    space = build_space(shipped)
    assert len(space.sets) == 10  # make demo: 3 folds x 10 parameter sets
    for s in space.sets:
        params_with_overrides(StrategyParams(), [f"{k}={v}" for k, v in s.items()])


def test_evaluation_metrics_by_hand():
    from botclave_cli.validate.evaluation import evaluation_metrics, objective_value

    # bars +10 %, -10 %, +20 %: equity 1.1, 0.99, 1.188; drawdown 0.99 / 1.1 - 1 = -0.1
    m = evaluation_metrics(np.array([0.1, -0.1, 0.2]), np.array([0.1, -0.1, 0.2]), 1.0)
    assert m["total_return"] == pytest.approx(0.188)
    assert m["max_drawdown"] == pytest.approx(-0.1)
    assert m["return_dd"] == pytest.approx(1.88)
    assert m["profit_factor"] == pytest.approx(0.3 / 0.1)
    assert m["sharpe"] == pytest.approx((0.2 / 3) / np.std([0.1, -0.1, 0.2], ddof=1))
    only_wins = evaluation_metrics(np.array([0.0, 0.01]), np.array([0.01]), 1.0)
    assert only_wins["profit_factor"] == np.inf and only_wins["return_dd"] == np.inf
    flat = evaluation_metrics(np.zeros(5), np.zeros(0), 1.0)
    assert flat["sharpe"] is None and objective_value(flat, "sharpe") == -np.inf
    assert objective_value(only_wins, "profit_factor") > objective_value(m, "profit_factor")
