"""Built-in strategies (``OrderFlowStrategy``, ``SmaCross``) and the strategy resolver.

Both are vectorised: one Polars query over the completed bars gives every signal, decided at the
bar's end. Stops, targets and sizes are then enforced by the execution core (execution/kernel.py).
``OrderFlowStrategy.stream()`` is the same strategy bar by bar (strategy/stream.py: paper, live
and ``backtest --per-bar``); every rule below reads its bar's feature row only, so both share
``decide_features``.

OrderFlowStrategy setups (``entry.setups``):
- ``bos``: a break of structure or change of character (structure.py) whose breaking bar agrees
  in delta (``delta_pct`` at least ``entry.min_delta_pct`` in the break's direction) and, if set,
  is a displacement (body >= ``entry.min_displacement_atr`` ATRs). Enter in the break's direction.
- ``bos_ob_retest``: after such a break, a limit order at the order block's near edge (the top of
  a bullish block, the bottom of a bearish one), expiring after ``entry.limit_expiry_bars``.
- ``absorption``: the bar where an absorption starts (engine/signals/absorption_onset.py, judged
  against the bars before it) where the passive ``bid`` absorbed selling -> long, ``ask``
  absorbed buying -> short, with the stop beyond the absorbed price.
Stops: beyond the order block's far edge, beyond the last swing, or an ATR multiple (the ATR
stop is also the fallback when no block/swing exists); ``stop.buffer_ticks`` extra. Targets: an
R multiple of the stop distance, or the opposing POC (highest / lowest bar POC of recent bars)
when it lies beyond the entry. Filters (``entry``): stacked imbalance in the entry's direction,
no recent opposite CVD divergence (features.py computes both from the engine), book imbalance
(``book_imbalance`` column the backtester adds from the rebuilt book as of each bar's end) at
least ``entry.book_imbalance_min`` in the entry's direction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import polars as pl

from botclave_cli.errors import ConfigError
from botclave_cli.strategy.base import SIGNAL_SCHEMA, Strategy, empty_signals, load_user_class
from botclave_cli.strategy.features import enrich_orderflow
from botclave_cli.strategy.params import StrategyParams
from botclave_cli.strategy.row_rules import decide_row
from botclave_cli.strategy.stream import OrderFlowStream
from botclave_cli.strategy.structure import market_structure


class SmaCross(Strategy):
    """Long when the fast SMA of closes crosses above the slow one, flat when it crosses below.

    Sized by ``risk.sizing: equity_fraction`` (it has no stop). The cross-check and benchmark
    strategy: the same rule as backtesting.py's documented SmaCross example, long only.
    """

    name = "sma_cross"

    def signals(self, bars: pl.DataFrame) -> pl.DataFrame:
        p = self.params.sma_cross
        close = bars["close"]
        return cross_signals(bars["bar_end"], cross_actions(sma(close, p.fast),
                                                            sma(close, p.slow)))


def sma(close: pl.Series, n: int) -> np.ndarray:
    """Mean of the last ``n`` closes at each bar (NaN before the n-th bar)."""
    return close.rolling_mean(n).to_numpy()


def cross_actions(fast: np.ndarray, slow: np.ndarray) -> np.ndarray:
    """Per bar: 1 where ``fast`` crosses above ``slow`` (above now, below at the bar before),
    0 where it crosses below (below now, above before), -1 elsewhere (NaN compares false)."""
    above, below = fast > slow, fast < slow
    out = np.full(fast.shape[0], -1, np.int8)
    out[1:][above[1:] & below[:-1]] = 1
    out[1:][below[1:] & above[:-1]] = 0
    return out


def cross_signals(bar_end: pl.Series, actions: np.ndarray) -> pl.DataFrame:
    """The market signals of ``cross_actions`` at their bars' ends."""
    at = np.flatnonzero(actions >= 0)
    return pl.DataFrame({"ts": bar_end.gather(at), "action": actions[at],
                         "order_type": "market", "setup": "sma_cross"},
                        schema_overrides={"action": pl.Int8})


class OrderFlowStrategy(Strategy):
    """Structure plus order flow (module docstring); configured by strategy_params.yaml."""

    name = "orderflow"

    def enrich(self, bars: pl.DataFrame, trades: pl.DataFrame | None) -> pl.DataFrame:
        """Footprint (POC, stacked imbalances), absorption and CVD divergence columns, each
        known at its bar's end; only what the configured rules use is computed."""
        return enrich_orderflow(bars, trades, self.params, self.tick_size)

    def features(self, bars: pl.DataFrame) -> pl.DataFrame:
        """The bars with structure and order-flow columns (no look-ahead)."""
        return market_structure(bars, self.params.structure, self.tick_size)

    def signals(self, bars: pl.DataFrame) -> pl.DataFrame:
        if bars.height == 0:
            return empty_signals()
        return self.decide_features(self.features(bars))

    def stream(self) -> OrderFlowStream:
        """The same strategy bar by bar (strategy/stream.py): for paper, live and the per-bar
        backtest; its features and signals equal this batch's."""
        return OrderFlowStream(self)

    def decide_features(self, feats: pl.DataFrame) -> pl.DataFrame:
        """The signals of feature rows (``features(enrich(bars))``): every rule reads its own
        row only, so one closed bar's row decides that bar (``decide_row``, the same rules in
        scalars, is the stream's)."""
        self.check_columns(feats.columns)
        parts = []
        setups = self.params.entry.setups
        if "bos" in setups:
            parts.append(self._bos(feats, retest=False))
        if "bos_ob_retest" in setups:
            parts.append(self._bos(feats, retest=True))
        if "absorption" in setups:
            parts.append(self._absorption(feats))
        parts = [p for p in parts if p.height]
        if not parts:
            return empty_signals()
        out = pl.concat(parts, how="vertical").sort("ts", "setup", maintain_order=True)
        sides = self.params.entry.sides
        if sides != "both":
            out = out.filter(pl.col("action") == (1 if sides == "long" else -1))
        return out

    def decide_row(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """The signals (``SIGNAL_SCHEMA`` dicts) of one bar's feature row: ``decide_features``
        on that row alone, in Python scalars (row_rules.py), for the live decision's latency."""
        self.check_columns(row)
        return decide_row(self.params, self.tick_size, row)

    def check_columns(self, columns: Iterable[str]) -> None:
        """Refuse a configuration whose rules read a feature the data cannot give."""
        cols = set(columns)
        e = self.params.entry
        if "absorption" in e.setups and "absorption_side" not in cols:
            raise ConfigError("entry.setups: absorption needs the trades (trade-level mode, "
                              "not --bars-only); remove it from entry.setups")
        if not e.setups:
            return
        if e.stacked_imbalance and "stacked_buy_count" not in cols:
            raise ConfigError("entry.stacked_imbalance needs the footprint (trade-level mode)")
        if e.cvd_divergence_veto and "recent_divergence" not in cols:
            raise ConfigError("entry.cvd_divergence_veto needs trade-level mode")
        if e.book_imbalance_min is not None and "book_imbalance" not in cols:
            raise ConfigError("entry.book_imbalance_min needs book data (book_snapshot + "
                              "book_diff: Backtester.run(book=...), botclave backtest "
                              "--book); set it to null")
        if self.params.target.mode == "poc" and "poc_high" not in cols:
            raise ConfigError("target.mode: poc needs the footprint (trade-level mode)")

    # ------------------------------------------------------------------------------------------
    def _stop(self, d: pl.Expr, ref: pl.Expr) -> pl.Expr:
        """Stop price for direction ``d`` (+1 long) and entry reference ``ref``."""
        sp = self.params.stop
        buf = sp.buffer_ticks * self.tick_size
        atr_stop = ref - d * sp.atr_mult * pl.col("atr")
        if sp.mode == "order_block":
            beyond = pl.when(d == 1).then(pl.col("ob_low") - buf).otherwise(pl.col("ob_high") + buf)
        elif sp.mode == "swing":
            beyond = pl.when(d == 1).then(pl.col("level_low") - buf).otherwise(
                pl.col("level_high") + buf)
        else:
            beyond = atr_stop
        # a stop on the wrong side of the entry is useless: fall back to the ATR stop
        ok = (d * (ref - beyond)) > 0
        return pl.when(ok.fill_null(False)).then(beyond).otherwise(atr_stop)

    def _target(self, d: pl.Expr, ref: pl.Expr, stop: pl.Expr) -> pl.Expr:
        tp = self.params.target
        if tp.mode == "none":
            return pl.lit(None, pl.Float64)
        r_target = ref + d * tp.r_multiple * (ref - stop).abs()
        if tp.mode == "poc":
            poc = pl.when(d == 1).then(pl.col("poc_high")).otherwise(pl.col("poc_low"))
            return pl.when((d * (poc - ref)) > 0).then(poc).otherwise(r_target)
        return r_target

    def _common(self, df: pl.DataFrame, d: pl.Expr, ref: pl.Expr, setup: str,
                order_type: str, limit: pl.Expr | None, stop: pl.Expr | None = None
                ) -> pl.DataFrame:
        fallback = self._stop(d, ref)
        if stop is not None:
            stop = pl.when((d * (ref - stop)) > 0).then(stop).otherwise(fallback)
        else:
            stop = fallback
        p = self.params
        base = df.with_columns(d.alias("_d"), ref.alias("_ref")).with_columns(
            stop.alias("_stop"))
        trail = (p.trailing.atr_mult * pl.col("atr")) if p.trailing.enabled else pl.lit(None)
        return base.select(
            pl.col("bar_end").alias("ts"),
            pl.col("_d").cast(pl.Int8).alias("action"),
            pl.lit(order_type).alias("order_type"),
            (limit if limit is not None else pl.lit(None, pl.Float64)).alias("limit_price"),
            pl.col("_stop").alias("stop_price"),
            self._target(pl.col("_d"), pl.col("_ref"), pl.col("_stop")).alias("target_price"),
            trail.cast(pl.Float64).alias("trail_dist"),
            pl.lit(p.exit.time_stop_bars or None, pl.Int64).alias("hold_bars"),
            pl.lit(p.entry.limit_expiry_bars, pl.Int64).alias("expiry_bars"),
            pl.lit(setup).alias("setup"),
        ).select(list(SIGNAL_SCHEMA))

    def _bos(self, feats: pl.DataFrame, retest: bool) -> pl.DataFrame:
        e = self.params.entry
        d = pl.col("break_dir")
        body = (pl.col("close") - pl.col("open")).abs()
        cond = (d != 0) & ((pl.col("delta_pct").fill_null(0.0) * d) >= e.min_delta_pct)
        if e.min_displacement_atr > 0:
            cond = cond & (body >= e.min_displacement_atr * pl.col("atr"))
        rows = feats.filter(cond & self._filters(d))
        if retest:
            rows = rows.filter(pl.col("ob_bar").is_not_null())
            edge = pl.when(d == 1).then(pl.col("ob_high")).otherwise(pl.col("ob_low"))
            return self._common(rows, d, edge, "bos_ob_retest", "limit", edge)
        ref = pl.col("close")
        if e.order_type == "limit":
            limit = ref - d * e.limit_offset_ticks * self.tick_size
            return self._common(rows, d, limit, "bos", "limit", limit)
        return self._common(rows, d, ref, "bos", "market", None)

    def _filters(self, d: pl.Expr) -> pl.Expr:
        """Entry filters shared by every setup, for direction ``d``."""
        e = self.params.entry
        ok = pl.lit(True)
        if e.stacked_imbalance:
            ok = ok & pl.when(d == 1).then(pl.col("stacked_buy_count") > 0).otherwise(
                pl.col("stacked_sell_count") > 0).fill_null(False)
        if e.cvd_divergence_veto:
            ok = ok & (pl.col("recent_divergence").fill_null(0) != -d)
        if e.book_imbalance_min is not None:
            ok = ok & ((pl.col("book_imbalance") * d) >= e.book_imbalance_min).fill_null(False)
        return ok

    def _absorption(self, feats: pl.DataFrame) -> pl.DataFrame:
        e = self.params.entry
        d = (pl.when(pl.col("absorption_side") == "bid").then(1)
             .when(pl.col("absorption_side") == "ask").then(-1).otherwise(0))
        rows = feats.filter((d != 0) & (pl.col("absorption_strength").fill_null(0.0)
                                        >= e.absorption_min_strength) & self._filters(d))
        buf = self.params.stop.buffer_ticks * self.tick_size
        stop = pl.col("absorption_price") - d * buf
        ref = pl.col("close")
        if e.order_type == "limit":
            limit = ref - d * e.limit_offset_ticks * self.tick_size
            return self._common(rows, d, limit, "absorption", "limit", limit, stop)
        return self._common(rows, d, ref, "absorption", "market", None, stop)


BUILT_INS: dict[str, type[Strategy]] = {"orderflow": OrderFlowStrategy, "sma_cross": SmaCross}


def resolve_strategy(params: StrategyParams, tick_size: float) -> Strategy:
    """The strategy object ``params.name`` names (built-in or a user class)."""
    cls = BUILT_INS.get(params.name) or load_user_class(params.name)
    try:
        return cls(params, tick_size)
    except Exception as exc:  # noqa: BLE001 - user constructors, one line
        raise ConfigError(f"name {params.name!r}: constructing the strategy failed: "
                          f"{type(exc).__name__}: {exc}") from None
