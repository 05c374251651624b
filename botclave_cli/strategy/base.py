"""The strategy interface, the signal table it returns, and user strategy plug-ins.

A strategy turns COMPLETED bars into signals. A signal is decided at ``ts`` (the end of the bar it
was computed from, or later) and reaches the simulated exchange ``latency`` later; the backtest
engine then owns everything else (sizing, stops, targets, risk limits).

Two ways to write one:
- vectorised (built-ins, fast): subclass :class:`Strategy`, implement ``signals(bars)`` with
  Polars expressions; every value at a bar may only use that bar and earlier ones.
- per bar (user path, slow but simple, the way backtesting.py users write ``next``): subclass
  :class:`BarStrategy` and implement ``on_bar(history)``; ``history`` holds the bars up to and
  including the one that just closed, so looking ahead is impossible by construction, and
  ``self.account`` shows the open positions, working orders, equity and last fills as of that
  bar's end (read-only; the same in backtest, paper and live).

Load a user class with ``name: "package.module:Class"`` or ``name: "path/to/file.py:Class"`` in
strategy_params.yaml; its own parameters go under ``user:``.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from botclave_cli.errors import BotclaveError, ConfigError
from botclave_cli.execution.view import AccountView
from botclave_cli.strategy.params import StrategyParams

TS = pl.Datetime("us", "UTC")

#: the signal table every strategy returns (prices in quote currency; NaN/null = not set)
SIGNAL_SCHEMA: dict[str, pl.DataType] = {
    "ts": TS,                        # decision time (>= end of the bar it was computed from)
    "action": pl.Int8(),             # +1 enter long, -1 enter short, 0 close everything
    "order_type": pl.String(),       # "market" | "limit"
    "limit_price": pl.Float64(),     # limit entries
    "stop_price": pl.Float64(),      # protective stop (required with risk sizing)
    "target_price": pl.Float64(),    # resting take-profit limit
    "trail_dist": pl.Float64(),      # trailing-stop distance in price (null = no trailing)
    "hold_bars": pl.Int64(),         # time stop in bars after entry (null/0 = none)
    "expiry_bars": pl.Int64(),       # unfilled limit entries expire after this many bars
    "setup": pl.String(),            # which rule fired (reported with orders and trades)
}


class StrategyError(BotclaveError):
    """A strategy raised or returned something unusable; the message names the bar/time."""


@dataclass(frozen=True)
class TradeSignal:
    """One decision of a per-bar strategy (prices in quote currency)."""

    action: Literal["long", "short", "exit"]
    order_type: Literal["market", "limit"] = "market"
    limit_price: float | None = None
    stop_price: float | None = None
    target_price: float | None = None
    trail_dist: float | None = None
    hold_bars: int | None = None
    expiry_bars: int | None = None
    setup: str = "user"

    def row(self, ts: object) -> dict[str, object]:
        return {"ts": ts, "action": {"long": 1, "short": -1, "exit": 0}[self.action],
                "order_type": self.order_type, "limit_price": self.limit_price,
                "stop_price": self.stop_price, "target_price": self.target_price,
                "trail_dist": self.trail_dist, "hold_bars": self.hold_bars,
                "expiry_bars": self.expiry_bars, "setup": self.setup}


@dataclass(frozen=True)
class Position:
    """An open position (read-only view; the backtest engine alone changes positions)."""

    side: Literal["long", "short"]
    qty: float
    entry_price: float
    entry_ts: object
    stop_price: float | None
    target_price: float | None
    setup: str


class Strategy:
    """Vectorised strategy: ``signals(bars) -> DataFrame`` in :data:`SIGNAL_SCHEMA`.

    ``bars`` columns: bar_start, bar_end, open, high, low, close, volume, buy_volume,
    sell_volume, delta, delta_pct, trade_count (plus footprint/indicator columns where the
    built-in strategy adds them). One row per completed bar, in time order.
    """

    name = "strategy"

    def __init__(self, params: StrategyParams, tick_size: float = 0.01) -> None:
        self.params = params
        self.tick_size = tick_size

    def enrich(self, bars: pl.DataFrame, trades: pl.DataFrame | None) -> pl.DataFrame:
        """Add per-bar features that need the trades (footprint, detectors); ``trades`` is None
        in bars-only mode. Each added value must be known at its bar's end."""
        return bars

    def signals(self, bars: pl.DataFrame) -> pl.DataFrame:
        raise NotImplementedError


class BarStrategy(Strategy):
    """Per-bar user strategy: implement ``on_bar(history) -> TradeSignal | None``.

    ``self.account`` (an ``AccountView``) holds the state as of the bar's end: ``positions``,
    ``orders`` (working), ``equity``, ``cash``, ``last_fills``, ``is_flat``, ``position_qty``.

    Example (a user's file ``my_strategy.py``, loaded with ``name: my_strategy.py:Breakout``)::

        from botclave_cli.strategy.base import BarStrategy, TradeSignal

        class Breakout(BarStrategy):
            def on_bar(self, history):
                last = history.row(-1, named=True)
                if (self.account.is_flat and len(history) > 20
                        and last["close"] > history["high"][-21:-1].max()):
                    stop = last["close"] - 50.0
                    return TradeSignal("long", stop_price=stop,
                                       target_price=last["close"] + 100.0)
                return None
    """

    warmup_bars = 0
    account: AccountView | None = None  # set by the driver before each on_bar

    def on_bar(self, history: pl.DataFrame) -> TradeSignal | None:
        raise NotImplementedError

    def decide(self, bars: pl.DataFrame, i: int) -> dict[str, object] | None:
        """The decision at the close of bar ``i`` as a signal row (``SIGNAL_SCHEMA``), or None;
        a user's exception or a wrong return value becomes one ``StrategyError`` line."""
        history = bars.slice(0, i + 1)
        end = bars["bar_end"][i]
        when = f"{end:%Y-%m-%d %H:%M:%S}"
        try:
            signal = self.on_bar(history)
        except Exception as exc:  # noqa: BLE001 - a user's bug becomes one clear line
            raise StrategyError(
                f"strategy {type(self).__name__} raised at the bar ending {when} (bar {i}): "
                f"{type(exc).__name__}: {exc}") from None
        if signal is None:
            return None
        if not isinstance(signal, TradeSignal):
            raise StrategyError(f"strategy {type(self).__name__} returned "
                                f"{type(signal).__name__} at the bar ending {when}; "
                                "expected TradeSignal or None")
        return signal.row(end)

    def signals(self, bars: pl.DataFrame) -> pl.DataFrame:
        raise StrategyError(f"strategy {type(self).__name__} decides bar by bar: run it through "
                            "the Backtester (or a paper/live session), which shows it the "
                            "account")


def empty_signals() -> pl.DataFrame:
    return pl.DataFrame(schema=SIGNAL_SCHEMA)


def signal_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Signal rows (``SIGNAL_SCHEMA`` dicts, as a stream's ``decide_row`` gives) as a frame."""
    return pl.DataFrame(rows, schema=SIGNAL_SCHEMA) if rows else empty_signals()


def load_user_class(spec: str) -> type[Strategy]:
    """``"pkg.module:Class"`` or ``"path/file.py:Class"`` -> the class (a Strategy subclass)."""
    target, sep, cls_name = spec.rpartition(":")
    if not sep or not target or not cls_name:
        raise ConfigError(f"name {spec!r}: expected orderflow, sma_cross, 'package.module:Class'"
                          " or 'path/to/file.py:Class'")
    try:
        if target.endswith(".py"):
            path = Path(target)
            if not path.exists():
                raise ConfigError(f"name {spec!r}: file {path} not found")
            module_spec = importlib.util.spec_from_file_location(f"botclave_user_{path.stem}", path)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - import errors of user code, one line
        raise ConfigError(f"name {spec!r}: cannot import {target}: {type(exc).__name__}: {exc}"
                          ) from None
    cls = getattr(module, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"name {spec!r}: {cls_name} is not a botclave_cli.strategy.base."
                          "Strategy subclass in " + target)
    return cls


def check_signals(signals: pl.DataFrame, name: str) -> pl.DataFrame:
    """Conform a strategy's output to :data:`SIGNAL_SCHEMA`, sorted by time (stable)."""
    missing = [c for c in ("ts", "action") if c not in signals.columns]
    if missing:
        raise StrategyError(f"strategy {name}: signals lack column {missing[0]!r}")
    exprs = [(pl.col(c) if c in signals.columns else pl.lit(None)).cast(t).alias(c)
             for c, t in SIGNAL_SCHEMA.items()]
    out = signals.select(exprs).with_columns(
        pl.col("order_type").fill_null("market"), pl.col("setup").fill_null(name))
    limit_without_price = (pl.col("order_type") == "limit") & pl.col("limit_price").is_null()
    bad = out.filter(~pl.col("action").is_in([-1, 0, 1])
                     | ~pl.col("order_type").is_in(["market", "limit"]) | limit_without_price)
    if bad.height:
        raise _bad_signal(name, bad["ts"][0])
    return out.sort("ts", maintain_order=True)


def with_signal_ids(signals: pl.DataFrame, first_id: int = 0) -> pl.DataFrame:
    """Checked signals numbered from ``first_id`` (``signal_id``, Int64): the id orders,
    fills and trades name their signal by."""
    return signals.with_row_index("signal_id", offset=first_id).with_columns(
        pl.col("signal_id").cast(pl.Int64))


def check_signal_rows(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """``check_signals`` of one decision's signal rows (``SIGNAL_SCHEMA`` dicts, one decision
    time), without building a frame: a live decision's latency."""
    out = []
    for row in rows:
        missing = [c for c in ("ts", "action") if row.get(c) is None]
        if missing:
            raise StrategyError(f"strategy {name}: signals lack column {missing[0]!r}")
        signal = {c: row.get(c) for c in SIGNAL_SCHEMA}
        signal["order_type"] = signal["order_type"] or "market"
        signal["setup"] = signal["setup"] or name
        if signal["action"] not in (-1, 0, 1) or signal["order_type"] not in ("market", "limit") \
                or (signal["order_type"] == "limit" and signal["limit_price"] is None):
            raise _bad_signal(name, signal["ts"])
        out.append(signal)
    return out


def _bad_signal(name: str, ts: object) -> StrategyError:
    return StrategyError(f"strategy {name}: bad signal at {ts}: action must be -1/0/1, "
                         "order_type market/limit, limit orders need limit_price")
