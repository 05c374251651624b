"""The Strategy tab: the run index, one run (equity, drawdown, trades with MAE/MFE, entries and
exits on the price chart), its validation (folds, Monte Carlo fan, PBO/DSR, verdict) and a
second run beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import streamlit as st

from botclave_cli.dashboard import data as dd
from botclave_cli.dashboard import fig_strategy as fs

TRADE_COLUMNS = ("trade_id", "side", "setup", "entry_ts", "exit_ts", "qty", "entry_price",
                 "exit_price", "pnl", "r_multiple", "mae", "mfe", "fees", "exit_reason")
HEADLINE = (("total_return", "total return", "{:+.2%}"), ("sharpe", "Sharpe", "{:.2f}"),
            ("max_drawdown", "max drawdown", "{:.2%}"), ("trades", "trades", "{:d}"),
            ("win_rate", "win rate", "{:.1%}"), ("final_equity", "final equity", "{:,.2f}"))
VERDICT_BOX = {"pass": st.success, "warn": st.warning, "fail": st.error}


@st.cache_resource(max_entries=16, show_spinner=False)
def _run(runs_dir: str, run_id: str, stamp: float) -> dict[str, Any]:
    return dd.load_run(Path(runs_dir), run_id)


def _stamp(folder: Path) -> float:
    try:
        return (folder / "manifest.json").stat().st_mtime
    except OSError:
        return 0.0


def load(sources: dd.Sources, run_id: str) -> dict[str, Any]:
    return _run(str(sources.runs_dir), run_id, _stamp(sources.runs_dir / run_id))


def render(sources: dd.Sources) -> None:
    index = dd.run_index(sources.runs_dir)
    if not index.height:
        st.info(dd.no_runs_message(sources.runs_dir))
        return
    st.subheader("Runs")
    st.dataframe(index, hide_index=True, key="run_index")
    ids = index["run_id"].to_list()
    choice = st.session_state.pop("new_run", None)
    if choice in ids:
        st.session_state["run"] = choice
    run_id = st.selectbox("Run", ids, key="run")
    other = st.selectbox("Compare with", ["(none)", *[i for i in ids if i != run_id]],
                         key="compare")
    if other != "(none)":
        left, right = st.columns(2)
        with left:
            show_run(sources, run_id, compact=True)
        with right:
            show_run(sources, other, compact=True)
        compare(sources, [run_id, other])
        return
    show_run(sources, run_id)


def headline(metrics: dict[str, Any], final_equity: Any) -> None:
    values = {**metrics, "final_equity": final_equity}
    cols = st.columns(len(HEADLINE))
    for col, (key, label, fmt) in zip(cols, HEADLINE, strict=True):
        value = values.get(key)
        col.metric(label, fmt.format(value) if isinstance(value, int | float) else "n/a")


def show_run(sources: dd.Sources, run_id: str, compact: bool = False) -> None:
    results = load(sources, run_id)
    manifest = results["manifest"]
    st.markdown(f"**{run_id}** {manifest.get('symbol', '')} "
                f"{(manifest.get('params') or {}).get('name', '')} "
                f"({manifest.get('status', 'complete')}, {manifest.get('created_at', '')})")
    headline(results["metrics"], manifest.get("final_equity"))
    eq = results["equity"]
    if eq.height:
        st.plotly_chart(fs.equity_figure(eq, "Equity and drawdown"), key=f"equity_{run_id}")
    trades: pl.DataFrame = results["trades"]
    if not compact:
        price_chart(sources, manifest, trades, run_id)
    st.markdown(f"Trades ({trades.height})")
    st.dataframe(trades.select([c for c in TRADE_COLUMNS if c in trades.columns]),
                 hide_index=True, key=f"trades_{run_id}")
    show_validation(results, sources.runs_dir / run_id, run_id, compact)


def price_chart(sources: dd.Sources, manifest: dict[str, Any], trades: pl.DataFrame,
                run_id: str) -> None:
    """Candles of the run's data with its entries and exits (from the store, when it has
    the run's dataset)."""
    from botclave_cli.report.sources import chart_timeframe
    from botclave_cli.strategy.bars import bars_from_trades

    ref, window = dd.run_dataset(manifest), dd.run_window(manifest)
    if ref is None or window is None:
        st.info("price chart: the run's manifest names no dataset and window")
        return
    store = sources.store
    if not store.exists(ref):
        st.warning(f"price chart: the run read {ref}, which is not in {store.root}: run "
                   f"{dd.fetch_hint(ref.exchange, ref.market, ref.symbol, ref.kind)}")
        return
    start, end = window
    if ref.kind.startswith("ohlcv"):
        bars = store.scan(ref, start, end).collect().rename({"ts": "bar_start"})
        tf = dict(ref.levels).get("timeframe", "")
    else:
        tf = chart_timeframe(start, end)
        bars = bars_from_trades(dd.load_trades(store, ref, start, end), tf)
    st.plotly_chart(fs.price_trades_figure(bars, trades, f"{ref.symbol} {tf} with entries and "
                                           "exits"), key=f"price_{run_id}")


def show_validation(results: dict[str, Any], folder: Path, run_id: str, compact: bool) -> None:
    from botclave_cli.report.sources import monte_carlo_fan_settings
    from botclave_cli.validate.montecarlo import reshuffled_paths

    data = dd.validation(folder)
    if data is None:
        st.info(f"no validation for this run: botclave validate all --out-dir "
                f"{folder.parent.parent} (same strategy settings) writes {folder}/validation")
        return
    st.markdown("#### Validation")
    verdict = str(data.get("verdict", "n/a"))
    box = VERDICT_BOX.get(verdict, st.info)
    reasons = data.get("reasons") or []
    box(f"Verdict: {verdict.upper()}" + "".join(f"\n- {r}" for r in reasons))
    figures = data.get("figures") or {}
    if figures:
        st.dataframe(pl.DataFrame({"figure": list(figures),
                                   "value": [_num(v) for v in figures.values()]}),
                     hide_index=True, key=f"figures_{run_id}")
    frames: dict[str, pl.DataFrame] = data["frames"]
    folds = frames.get("walk_forward_folds")
    if folds is not None and folds.height:
        st.plotly_chart(fs.walk_forward_figure(folds, frames.get("oos_equity"),
                                               f"Walk-forward: {folds.height} folds"),
                        key=f"wf_{run_id}")
        if not compact:
            st.dataframe(folds, hide_index=True, key=f"folds_{run_id}")
    trades = results["trades"]
    pnl = trades["pnl"].drop_nulls().to_numpy() if trades.height else np.zeros(0)
    if pnl.size >= 2:
        runs, seed = monte_carlo_fan_settings(folder / "validation")
        initial = dd.initial_equity(results)
        paths = initial + np.cumsum(reshuffled_paths(pnl, runs, np.random.default_rng(seed)),
                                    axis=1)
        st.plotly_chart(fs.fan_figure(paths, initial, initial + np.cumsum(pnl),
                                      f"Monte Carlo fan: {runs} reshuffles of {pnl.size} "
                                      f"trades (seed {seed})"), key=f"fan_{run_id}")
    mc = {k.removeprefix("monte_carlo_"): v for k, v in frames.items()
          if k.startswith("monte_carlo_")}
    if mc:
        st.plotly_chart(fs.mc_drawdown_figure(mc), key=f"mcdd_{run_id}")
    for name in ("pbo", "oos"):
        section = data.get(name)
        if isinstance(section, dict):
            flat = {k: _num(v) for k, v in section.items() if not isinstance(v, dict | list)}
            if flat:
                st.markdown(name.upper() if name == "pbo" else "Holdout out-of-sample")
                st.dataframe(pl.DataFrame({"figure": list(flat), "value": list(flat.values())}),
                             hide_index=True, key=f"{name}_{run_id}")


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def compare(sources: dd.Sources, run_ids: list[str]) -> None:
    runs = {rid: load(sources, rid) for rid in run_ids}
    st.plotly_chart(fs.compare_figure({rid: r["equity"] for rid, r in runs.items()}),
                    key="compare_equity")
    keys = sorted({k for r in runs.values() for k, v in r["metrics"].items()
                   if isinstance(v, int | float) and not isinstance(v, bool)})
    table = pl.DataFrame({"metric": keys, **{rid: [_num(r["metrics"].get(k)) for k in keys]
                                             for rid, r in runs.items()}})
    st.dataframe(table, hide_index=True, key="compare_metrics")
