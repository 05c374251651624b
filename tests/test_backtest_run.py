"""Run results: determinism, run ids, the CLI, bad input, user strategy plug-ins, overrides."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.backtest.results import RESULT_FILES, read_results, write_results
from botclave_cli.cli.app import app
from botclave_cli.config import ExchangeConfig
from botclave_cli.data.manifest import Manifest
from botclave_cli.data.store import DatasetRef, Store
from botclave_cli.errors import ConfigError
from botclave_cli.strategy.base import StrategyError
from botclave_cli.strategy.params import StrategyParams, params_with_overrides

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def random_trades(seed: int = 3, n: int = 60_000, hours: float = 6,
                  price_step: float = 1.5) -> pl.DataFrame:
    """A random walk from 42,000 (normal steps of ``price_step``) from START, balanced sides."""
    rng = np.random.default_rng(seed)
    step = int(hours * 3600e6 / n)
    ts = int(START.timestamp() * 1e6) + np.cumsum(rng.integers(1, 2 * step, n))
    price = np.round(42_000 + np.cumsum(rng.normal(0, price_step, n)), 2)
    return pl.DataFrame({
        "ts": pl.Series(ts).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        "price": price, "qty": np.round(rng.exponential(0.05, n), 5) + 1e-5,
        "side": np.where(rng.random(n) < 0.5, "buy", "sell"),
    })


def run(params: StrategyParams | None = None, trades: pl.DataFrame | None = None):
    params = params or StrategyParams()
    return Backtester(params, ExchangeConfig(), tick_size=0.01, lot_size=1e-5).run(
        trades if trades is not None else random_trades())


def test_same_inputs_give_byte_identical_results(tmp_path: Path) -> None:
    a, b = run(), run()
    assert a.trades.height > 3
    rid_a, dir_a = write_results(a, tmp_path / "a")
    rid_b, dir_b = write_results(b, tmp_path / "b")
    assert rid_a == rid_b and len(rid_a) == 16 and dir_a.name == rid_a
    for name in [f"{n}.parquet" for n in RESULT_FILES] + ["metrics.json"]:
        assert (dir_a / name).read_bytes() == (dir_b / name).read_bytes(), name
    man_a = json.loads((dir_a / "manifest.json").read_text())
    man_b = json.loads((dir_b / "manifest.json").read_text())
    man_a.pop("created_at"), man_b.pop("created_at")
    assert man_a == man_b and man_a["status"] == "complete"
    back = read_results(dir_a)
    assert back["trades"].equals(a.trades) and back["metrics"]["trades"] == a.trades.height
    # another parameter, another run id
    rid_c, _ = write_results(run(params_with_overrides(StrategyParams(), ["risk.per_trade=0.005"]
                                                       )), tmp_path / "a")
    assert rid_c != rid_a


def test_results_tie_out() -> None:
    res = run()
    t, f = res.trades, res.fills
    # every closed trade's fees are its fills' fees; final equity = initial + closed pnl
    # (no position left open here) = last equity mark
    closed_orders = res.orders.filter(pl.col("signal_id").is_in(t["signal_id"].implode()))
    fills_of_closed = f.filter(pl.col("order_id").is_in(closed_orders["order_id"].implode()))
    if res.open_positions == 0:
        assert fills_of_closed["fee"].sum() == pytest.approx(t["fees"].sum(), rel=1e-9)
        assert res.final_equity == pytest.approx(10_000 + t["pnl"].sum(), rel=1e-12)
        assert res.equity["equity"][-1] == pytest.approx(res.final_equity, rel=1e-12)
    assert (t["exit_ts"] >= t["entry_ts"]).all()
    assert (t["mae"] >= 0).all() and (t["mfe"] >= 0).all()
    # the engine's size limit: no entry notional above max_position x equity (1.0 x ~10000)
    assert (t["qty"] * t["entry_price"]).max() <= 10_000 * 1.05


def test_set_overrides_and_bad_keys() -> None:
    p = params_with_overrides(StrategyParams(), ["risk.per_trade=0.005", "entry.setups=[bos]",
                                                 "execution.bars_path=ohlc"])
    assert p.risk.per_trade == 0.005 and p.execution.bars_path == "ohlc"
    with pytest.raises(ConfigError, match=r"risk\.per_trde: unknown key"):
        params_with_overrides(StrategyParams(), ["risk.per_trde=0.005"])
    with pytest.raises(ConfigError, match=r"risk\.per_trade"):
        params_with_overrides(StrategyParams(), ["risk.per_trade=2"])
    with pytest.raises(ConfigError, match="key=value"):
        params_with_overrides(StrategyParams(), ["risk.per_trade"])


USER_STRATEGY = '''
from botclave_cli.strategy.base import BarStrategy, TradeSignal

class Breakout(BarStrategy):
    warmup_bars = 20

    def on_bar(self, history):
        last = history.row(-1, named=True)
        if last["close"] > history["high"][-21:-1].max():
            return TradeSignal("long", stop_price=last["close"] - 20.0,
                               target_price=last["close"] + 40.0, setup="breakout")
        return None

class Broken(BarStrategy):
    def on_bar(self, history):
        if len(history) == 7:
            raise ValueError("boom")
        return None
'''


def test_user_strategy_class_plugs_in(tmp_path: Path) -> None:
    path = tmp_path / "my_strategy.py"
    path.write_text(USER_STRATEGY)
    res = run(StrategyParams(name=f"{path}:Breakout"))
    assert res.signals.height > 0 and set(res.signals["setup"]) == {"breakout"}
    assert res.trades.height > 0
    # decisions only at bar ends, never earlier than the bar they come from
    ends = set(res.bars["bar_end"].to_list())
    assert set(res.signals["ts"].to_list()) <= ends
    with pytest.raises(StrategyError, match=r"raised at the bar ending 2024-01-01 00:07:00 "
                                            r"\(bar 6\): ValueError: boom"):
        run(StrategyParams(name=f"{path}:Broken"))
    with pytest.raises(ConfigError, match="not a botclave_cli.strategy.base.Strategy"):
        run(StrategyParams(name=f"{path}:TradeSignal"))


# CLI -----------------------------------------------------------------------------------------
def put_trades(root: Path, trades: pl.DataFrame) -> None:
    store = Store(root)
    ref = DatasetRef("synth", "spot", "BTC/USDT", "trades")
    df = trades.with_columns(pl.int_range(pl.len()).cast(pl.Int64).alias("trade_id"))
    store.write(ref, df, new_manifest=lambda: Manifest(
        kind="trades", exchange="synth", market="spot", symbol="BTC/USDT", source="synth",
        tick_size=0.01, lot_size=1e-5, tick_source="synth"))


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_cli_backtest_writes_a_run_and_prints_the_run_id(tmp_path: Path) -> None:
    put_trades(tmp_path / "data", random_trades(n=20_000))
    out = tmp_path / "reports"
    r = cli("backtest", "--symbol", "BTC/USDT", "--exchange", "synth", "--market", "spot",
            "--from", "2024-01-01", "--to", "2024-01-02", "--set", "risk.per_trade=0.005",
            "--data-dir", str(tmp_path / "data"), "--out-dir", str(out), "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    folder = out / "runs" / data["run_id"]
    assert folder.is_dir() and (folder / "trades.parquet").exists()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["params"]["risk"]["per_trade"] == 0.005
    assert manifest["dataset"] == "synth/spot/BTC-USDT/trades"
    assert data["metrics"]["trades"] == pl.read_parquet(folder / "trades.parquet").height
    plain = cli("backtest", "--exchange", "synth", "--data-dir", str(tmp_path / "data"),
                "--out-dir", str(out), "--set", "risk.per_trade=0.005")
    assert plain.exit_code == 0 and f"run {data['run_id']}" in plain.output


def test_cli_bad_input_fails_cleanly_without_results(tmp_path: Path) -> None:
    put_trades(tmp_path / "data", random_trades(n=5_000))
    out = tmp_path / "reports"
    base = ["backtest", "--exchange", "synth", "--data-dir", str(tmp_path / "data"),
            "--out-dir", str(out)]
    r = cli(*base, "--from", "2023-01-01", "--to", "2023-01-02")
    assert r.exit_code == 3
    assert "no trades in synth/spot/BTC-USDT/trades for [2023-01-01 00:00:00+00:00" in r.output
    r = cli(*base, "--symbol", "ETH/USDT")
    assert r.exit_code == 3 and "no trades or agg_trades dataset in" in r.output
    assert "synth/spot/ETH-USDT; fetch or import trades, or use --bars-only" in r.output
    r = cli(*base, "--bars-only")
    assert r.exit_code == 3 and "no 1m bars in synth/spot/BTC-USDT/ohlcv" in r.output
    user = tmp_path / "bad.py"
    user.write_text(USER_STRATEGY)
    r = cli(*base, "--set", f"name={user}:Broken")
    assert r.exit_code == 1 and "raised at the bar ending 2024-01-01 00:07:00" in r.output
    r = cli(*base, "--set", "risk.per_trade=abc")
    assert r.exit_code == 2 and "risk.per_trade" in r.output
    assert not (out / "runs").exists() or not any((out / "runs").iterdir())
    assert "Example:" in cli("backtest", "--help").output


def test_a_failed_write_leaves_no_run_folder(tmp_path: Path, monkeypatch) -> None:
    res = run(trades=random_trades(n=5_000))
    calls = {"n": 0}
    original = pl.DataFrame.write_parquet

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", flaky)
    with pytest.raises(OSError, match="disk full"):
        write_results(res, tmp_path)
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_rerun_keeps_what_other_commands_wrote_into_the_run_folder(tmp_path: Path,
                                                                      monkeypatch) -> None:
    res = run(trades=random_trades(n=5_000))
    rid, folder = write_results(res, tmp_path)
    (folder / "validation").mkdir()
    (folder / "validation" / "validation.json").write_text('{"verdict": "pass"}\n')
    (folder / "notes.txt").write_text("mine\n")
    (folder / ".validation.tmp-1").mkdir()  # a crashed writer's temporary folder
    own = {n: (folder / n).read_bytes() for n in ["trades.parquet", "metrics.json"]}
    assert write_results(res, tmp_path) == (rid, folder)
    assert (folder / "validation" / "validation.json").read_text() == '{"verdict": "pass"}\n'
    assert (folder / "notes.txt").read_text() == "mine\n"
    assert not (folder / ".validation.tmp-1").exists()
    assert {n: (folder / n).read_bytes() for n in own} == own
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [rid]
    # the swap fails after the old folder moved aside: the old folder comes back whole
    real_replace, calls = os.replace, []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("rename failed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(OSError, match="rename failed"):
        write_results(res, tmp_path)
    monkeypatch.undo()
    assert (folder / "validation" / "validation.json").exists()
    assert json.loads((folder / "manifest.json").read_text())["status"] == "complete"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [rid]
