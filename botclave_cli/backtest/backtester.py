"""Trade-level backtester: strategy signals on completed bars, executed against the trade stream.

``Backtester(params, exchange_config).run(trades, bars=None, book=None) -> BacktestResult``.

How a run works (units: prices in quote currency, quantities in base units, times UTC us):
1. Bars of ``bars.timeframe`` are built from the trades (or taken from ``bars`` in bars-only
   mode). The strategy returns signals decided at bar ends (no bar is seen before it completes).
2. Each signal reaches the simulated exchange ``execution.latency_ms`` later and is executed by the
   execution core (execution/kernel.py) on the trades that follow: market orders take the next
   trades' prices (partially, at most ``participation`` of each trade), limit orders fill when price
   trades through, stops trigger on trades; SL and TP inside one bar are resolved by the trades'
   actual order. Fees from ``FeeSchedule.for_symbol`` (maker for resting limits, taker otherwise),
   fixed slippage in bps on taker fills, funding payments when a funding frame is given
   (perpetuals).
3. Bars-only mode (no trades): each bar becomes four pseudo-trades along an assumed path,
   ``execution.bars_path``: ``ohlc`` (open, high, low, close), ``olhc`` (open, low, high, close)
   or ``nearest`` (the extreme nearer the open first), at bar_start + 0, 1/4, 2/4, 3/4 of the
   bar. Pseudo-trades have unlimited size (no partial fills), and a stop or limit crossed between
   two path points fills at its own price. Market orders decided at a bar's end fill at the next
   bar's open (backtesting.py's default, which the cross-check test relies on).
4. Book mode (``book={"book_snapshot": df, "book_diff": df}`` of the same symbol and window,
   trade-level mode only): the book is replayed by the engine's DOMBuilder and sampled every
   ``execution.book_sample_ms`` (top ``execution.book_depth`` levels; book.py). A market order
   (and a triggered stop) walks the last valid sample at or before its arrival, touch outward:
   one taker fill per level, slippage = distance from the touch (no fixed bps), depth taken by
   an earlier order in the same sample is gone; what the visible depth cannot fill continues on
   the next trades by the rules of 2. A limit marketable at arrival walks up to its price the
   same way and rests with the rest (nothing ahead). A limit order takes as its queue the size
   resting at its price on its side at arrival; trades at the limit eat the queue first and
   only their rest fills us (maker); a trade through the limit fills us regardless.
   ``execution.queue_model``: ``risk_averse`` (default) ignores cancellations ahead of us (every
   fall of the level that is not a trade is taken to be behind us: conservative) as far as the
   level allows: the queue ahead is capped at the level's size in each later sample;
   ``prob_power`` compares each later sample of the level with the one before, and the part of
   a fall the trades at the price do not explain is ahead of us with probability
   front^n / (front^n + back^n), n = ``execution.queue_power`` (hftbacktest's ProbQueueModel
   with PowerProbQueueFunc; execution.queue.prob_queue_front). Without a valid sample (before the
   first snapshot, after a gap) an order uses the rules of 2. Bars get a ``book_imbalance`` column
   (book.py, as of each bar's end) for ``entry.book_imbalance_min``.
5. Reversals (``exit.on_opposite_signal``): an entry signal against open positions closes them
   first (market orders, exit reason ``signal_exit``); the new entry fills only once they are
   flat and is sized from the equity and ``risk.max_position`` room left after the close (so
   the closing position never uses up the new entry's room); opposite entries not yet
   filled are cancelled. With ``on_opposite_signal: false`` such a signal is rejected
   (``opposite_position``). Rejected entries name the limit: ``max_position`` when the open
   positions leave no lot of notional, ``size_below_lot`` when the sizing rule gives less
   than a lot.
Positions still open at the end stay open and are marked to market in the equity curve (as
backtesting.py does by default); ``BacktestResult.open_positions`` counts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from botclave_cli.backtest.bars_path import pseudo_trades
from botclave_cli.backtest.book import BookArrays, BookInput, book_arrays, imbalance_asof
from botclave_cli.backtest.metrics import MetricsCalculator
from botclave_cli.backtest.per_bar import StreamedBars, UserBars, bar_ends, run_per_bar
from botclave_cli.config import ExchangeConfig
from botclave_cli.data.store import to_us
from botclave_cli.errors import ConfigError, DataError
from botclave_cli.execution import layout as K
from botclave_cli.execution.core import Book, CoreInputs, ExecutionCore, Signals
from botclave_cli.progress import Progress, or_null
from botclave_cli.strategy.bars import bars_from_trades
from botclave_cli.strategy.base import (
    BarStrategy,
    Position,
    Strategy,
    StrategyError,
    check_signals,
    with_signal_ids,
)
from botclave_cli.strategy.params import StrategyParams, bar_us
from botclave_cli.strategy.strategy import resolve_strategy
from botclave_cli.strategy.structure_stream import STRUCTURE_SCHEMA

TS = pl.Datetime("us", "UTC")
PURPOSES = ["entry", "stop_loss", "take_profit", "time_stop", "signal_exit", "halt",
            "trailing_stop"]
STATUSES = ["active", "filled", "cancelled", "rejected", "expired"]
REASONS = ["", "halted_day", "halted_drawdown", "cooldown", "max_concurrent",
           "opposite_position", "size_below_lot", "no_stop", "max_position"]
YEAR_S = 365 * 86_400


@dataclass(frozen=True)
class Trade:
    """One closed round trip (a row of ``BacktestResult.trades``; money in quote currency)."""

    trade_id: int
    setup: str
    side: str
    entry_ts: Any
    exit_ts: Any
    qty: float
    entry_price: float
    exit_price: float
    fees: float
    slippage: float
    funding: float
    pnl: float
    r_multiple: float | None
    mae: float
    mfe: float
    exit_reason: str


@dataclass
class BacktestResult:
    """Everything a run produced; frames are plain Polars, ready for Parquet."""

    params: StrategyParams
    mode: str
    symbol: str
    tick_size: float
    lot_size: float
    fee_maker: float
    fee_taker: float
    bars: pl.DataFrame
    signals: pl.DataFrame
    orders: pl.DataFrame
    fills: pl.DataFrame
    trades: pl.DataFrame
    equity: pl.DataFrame
    metrics: dict[str, Any]
    coverage_start_us: int
    coverage_end_us: int
    input_rows: int
    final_equity: float
    open_positions: int
    #: book samples the fills walked (book mode), 0 without a book; part of the run id
    book_samples: int = 0
    notes: list[str] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)

    def trade_list(self) -> list[Trade]:
        names = Trade.__dataclass_fields__
        return [Trade(**{k: v for k, v in row.items() if k in names})
                for row in self.trades.iter_rows(named=True)]


class Backtester:
    """See the module docstring. ``strategy`` overrides the one ``params.name`` names."""

    def __init__(self, params: StrategyParams, exchange_config: ExchangeConfig | None = None, *,
                 symbol: str = "BTC/USDT", tick_size: float | None = None,
                 lot_size: float | None = None, strategy: Strategy | None = None,
                 market: str = "spot") -> None:
        self.params = params
        self.market = market
        self.exchange_config = exchange_config or ExchangeConfig()
        self.symbol = symbol
        sc = self.exchange_config.symbol_config(symbol)
        tick = tick_size or (sc.tick_size if sc else None)
        lot = lot_size or (sc.lot_size if sc else None)
        if not tick or not lot:
            raise ConfigError(f"{symbol}: tick_size/lot_size unknown; add the symbol to "
                              "exchange_config.yaml symbols or pass them")
        self.tick_size: float = tick
        self.lot_size: float = lot
        self.fee = self.exchange_config.fees.for_symbol(symbol)
        self.strategy = strategy or resolve_strategy(params, self.tick_size)

    # ------------------------------------------------------------------------------------------
    def run(self, trades: pl.DataFrame | None = None, bars: pl.DataFrame | None = None,
            book: BookInput | None = None, funding: pl.DataFrame | None = None, *,
            bars_only: bool = False, per_bar: bool = False,
            progress: Progress | None = None) -> BacktestResult:
        prog = or_null(progress)
        notes = []
        if book is not None and bars_only:
            raise ConfigError("book data needs trade-level mode (not bars-only)")
        tf = self.params.bars.timeframe
        if bars_only:
            if bars is None or bars.height == 0:
                raise DataError("bars-only mode: no bars in the selected range")
            if not bars["bar_start"].is_sorted():
                bars = bars.sort("bar_start")
            t_ts, t_px, t_qty = pseudo_trades(bars, self.params.execution.bars_path,
                                              self.tick_size)
            mode = "bars"
        else:
            if trades is None or trades.height == 0:
                raise DataError("no trades in the selected range (trade-level mode needs a "
                                "trades dataset; use bars-only mode with OHLCV)")
            if not trades["ts"].is_sorted():
                trades = trades.sort("ts", maintain_order=True)
            prog.start(None, "bars")
            bars = bars_from_trades(trades, tf)
            t_ts = trades["ts"].dt.epoch("us").to_numpy()
            t_px = np.rint(trades["price"].to_numpy() / self.tick_size).astype(np.int64)
            t_qty = np.rint(trades["qty"].to_numpy() / self.lot_size).astype(np.int64)
            mode = "trades"
        arrays = BookArrays.empty()
        if book is not None:
            mode = "trades+book"
        if book is not None:
            prog.start(None, "book")
            ex = self.params.execution
            arrays = book_arrays(book, self.tick_size, self.lot_size, market=self.market,
                                 interval_us=int(round(ex.book_sample_ms * 1000)),
                                 depth=ex.book_depth)
            notes.append(f"book: {arrays.n} samples every {ex.book_sample_ms:g} ms "
                         f"({int(arrays.valid.sum())} valid), depth {ex.book_depth}: market "
                         "orders walk the book, limits queue"
                         + (f" (prob_power n={ex.queue_power:g})"
                            if ex.queue_model == "prob_power" else ""))
        prog.start(None, "signals")
        imbalance = None if book is None else imbalance_asof(
            arrays, bars["bar_end"], self.params.entry.book_imbalance_levels)
        streamed = None
        if per_bar and not isinstance(self.strategy, BarStrategy):
            streamed = self._streamed(trades, bars, t_ts, imbalance, bars_only)
        else:
            bars = self._enrich(bars, None if bars_only else trades)
            if imbalance is not None:
                bars = bars.with_columns(imbalance.alias("book_imbalance"))
        prog.start(None, "fills")
        if isinstance(self.strategy, BarStrategy) or streamed is not None:
            decider = streamed or UserBars(self.strategy, bars)  # type: ignore[arg-type]
            core, signals = run_per_bar(self, decider, bars, (t_ts, t_px, t_qty), funding,
                                        bars_only, arrays)
            if streamed is not None:
                # the bars as the batch path reports them: enriched, without the structure
                bars = streamed.stream.frame(streamed.features).drop(list(STRUCTURE_SCHEMA))
        else:
            signals = self._signals(bars)
            core = self._execute(t_ts, t_px, t_qty, signals, funding, continuous=bars_only,
                                 book=arrays)
        return self.result(core, signals, bars, t_ts, t_px, mode=mode,
                           input_rows=int(bars.height if bars_only else len(t_ts)),
                           book_samples=arrays.n, notes=notes)

    def result(self, core: ExecutionCore, signals: pl.DataFrame, bars: pl.DataFrame,
               t_ts: np.ndarray, t_px: np.ndarray, *, mode: str, input_rows: int,
               book_samples: int = 0, notes: list[str] | None = None) -> BacktestResult:
        """The result of a core fed ``t_ts``/``t_px`` (us, ticks): frames and metrics. Shared by
        every driver (this backtester, the paper session)."""
        out = self._frames(core, signals, t_ts, t_px)
        out.update(dict(
            params=self.params, mode=mode, symbol=self.symbol, tick_size=self.tick_size,
            lot_size=self.lot_size, fee_maker=self.fee.maker, fee_taker=self.fee.taker,
            bars=bars, signals=signals, coverage_start_us=int(t_ts[0]),
            coverage_end_us=int(t_ts[-1]) + 1, input_rows=input_rows,
            book_samples=book_samples, notes=notes or []))
        interval_s = bar_us(self.params.execution.equity_interval) / 1e6
        out["metrics"] = MetricsCalculator().compute(
            out["equity"], out["trades"], periods_per_year=YEAR_S / interval_s,
            initial_equity=self.params.execution.initial_equity)
        return BacktestResult(**out)

    def _streamed(self, trades: pl.DataFrame | None, bars: pl.DataFrame, t_ts: np.ndarray,
                  imbalance: pl.Series | None, bars_only: bool) -> StreamedBars:
        """The strategy's stream fed bar by bar (``--per-bar``)."""
        stream = getattr(self.strategy, "stream", None)
        name = type(self.strategy).__name__
        if stream is None:
            raise ConfigError(f"strategy {name} has no bar-by-bar form (stream()); run it "
                              "without --per-bar")
        if bars_only or trades is None:
            raise ConfigError("--per-bar feeds each bar's trades to the strategy: it needs "
                              "trade-level mode (not --bars-only)")
        rows = np.concatenate([[0], bar_ends(t_ts, bars)])
        return StreamedBars(stream(), name, trades, rows, imbalance)

    def _enrich(self, bars: pl.DataFrame, trades: pl.DataFrame | None) -> pl.DataFrame:
        try:
            return self.strategy.enrich(bars, trades)
        except (StrategyError, ConfigError, DataError):
            raise
        except Exception as exc:  # noqa: BLE001 - user strategies, one line
            raise StrategyError(f"strategy {type(self.strategy).__name__} raised adding bar "
                                f"features: {type(exc).__name__}: {exc}") from None

    def _signals(self, bars: pl.DataFrame) -> pl.DataFrame:
        name = type(self.strategy).__name__
        try:
            raw = self.strategy.signals(bars)
        except (StrategyError, ConfigError):
            raise
        except Exception as exc:  # noqa: BLE001 - vectorised user strategies, one line
            first, last = bars["bar_start"][0], bars["bar_end"][-1]
            span = f"{first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M}"
            raise StrategyError(f"strategy {name} raised computing signals over bars {span}: "
                                f"{type(exc).__name__}: {exc}") from None
        signals = check_signals(raw, name)
        # a signal may not be decided before the first bar it could have seen has ended
        if signals.height and bars.height and signals["ts"].min() < bars["bar_end"][0]:
            bad = signals.filter(pl.col("ts") < bars["bar_end"][0])["ts"][0]
            raise StrategyError(f"strategy {name}: signal at {bad} precedes the end of the "
                                "first bar (look-ahead)")
        return with_signal_ids(signals)

    def core_params(self, continuous: bool) -> np.ndarray:
        """The execution core's parameter vector (``layout.P_*``) for this configuration."""
        p = self.params
        ex, r = p.execution, p.risk
        params = np.zeros(K.P_N, np.float64)
        params[[K.P_TICK, K.P_LOT, K.P_EQUITY0, K.P_MAKER, K.P_TAKER, K.P_SLIP_BPS,
                K.P_PARTICIPATION, K.P_PER_TRADE, K.P_FRACTION, K.P_MAX_POSITION, K.P_MAX_CONC,
                K.P_DAILY_LOSS, K.P_MAX_DD, K.P_COOLDOWN_LOSSES, K.P_COOLDOWN_US,
                K.P_SIZING_FRACTION, K.P_TOUCH, K.P_CONTINUOUS, K.P_ON_OPPOSITE,
                K.P_EQ_INTERVAL_US, K.P_QUEUE_MODEL, K.P_QUEUE_POWER]] = [
            self.tick_size, self.lot_size, ex.initial_equity, self.fee.maker, self.fee.taker,
            ex.slippage_bps, ex.participation, r.per_trade, r.fraction, r.max_position,
            r.max_concurrent, r.max_daily_loss, r.max_drawdown, r.cooldown_losses,
            r.cooldown_minutes * 60e6, 1.0 if r.sizing == "equity_fraction" else 0.0,
            1.0 if ex.limit_fill == "touch" else 0.0, 1.0 if continuous else 0.0,
            1.0 if p.exit.on_opposite_signal else 0.0, bar_us(ex.equity_interval),
            K.Q_PROB_POWER if ex.queue_model == "prob_power" else K.Q_RISK_AVERSE,
            ex.queue_power]
        return params

    def submissions(self, signals: pl.DataFrame) -> Signals:
        """Signals (``SIGNAL_SCHEMA`` rows) as the core's order submissions: ticks, arrival =
        decision + latency, time stops and expiries in microseconds."""
        def prices(col: str) -> np.ndarray:
            return signals[col].fill_null(np.nan).to_numpy().astype(np.float64)

        def bars(col: str) -> np.ndarray:
            return signals[col].fill_null(0).to_numpy().astype(np.int64)

        return self._submissions(
            signals["ts"].dt.epoch("us").to_numpy().astype(np.int64),
            signals["action"].to_numpy().astype(np.int64),
            (signals["order_type"] == "limit").to_numpy(), prices("limit_price"),
            prices("stop_price"), prices("target_price"), prices("trail_dist"),
            bars("hold_bars"), bars("expiry_bars"))

    def row_submissions(self, rows: list[dict[str, Any]]) -> Signals:
        """``submissions`` of signal rows (``SIGNAL_SCHEMA`` dicts, a stream's decision): the
        same arrays without building a frame (a live decision's latency)."""
        def prices(col: str) -> np.ndarray:
            return np.array([r[col] for r in rows], dtype=np.float64)  # None -> NaN

        def bars(col: str) -> np.ndarray:
            return np.array([r[col] or 0 for r in rows], dtype=np.int64)

        return self._submissions(
            np.array([to_us(r["ts"]) for r in rows], dtype=np.int64),
            np.array([r["action"] for r in rows], dtype=np.int64),
            np.array([r["order_type"] == "limit" for r in rows], dtype=bool),
            prices("limit_price"), prices("stop_price"), prices("target_price"),
            prices("trail_dist"), bars("hold_bars"), bars("expiry_bars"))

    def _submissions(self, dec_us: np.ndarray, action: np.ndarray, is_limit: np.ndarray,
                     limit: np.ndarray, stop: np.ndarray, target: np.ndarray,
                     trail: np.ndarray, hold_bars: np.ndarray, expiry_bars: np.ndarray
                     ) -> Signals:
        """The core's submissions of signal columns (prices in quote, NaN missing; bars 0
        none; decision time in us)."""
        p = self.params
        bus = bar_us(p.bars.timeframe)
        arr = dec_us + int(round(p.execution.latency_ms * 1000))
        otype = is_limit.astype(np.int64)

        def ticks(v: np.ndarray) -> np.ndarray:
            return np.where(np.isnan(v), 0, np.rint(v / self.tick_size)).astype(np.int64)

        expiry = np.where((otype == 1) & (expiry_bars > 0), arr + expiry_bars * bus, 0)
        return Signals(dec_us, arr, action, otype, ticks(limit), ticks(stop), ticks(target),
                       ticks(trail), hold_bars * bus, expiry.astype(np.int64))

    def core_inputs(self, signals: pl.DataFrame, funding: pl.DataFrame | None,
                    continuous: bool, book: BookArrays | None = None) -> CoreInputs:
        """What the execution core is fed besides the trades: parameters, the signals as order
        submissions, the book samples and the funding."""
        bk = book or BookArrays.empty()
        if funding is not None and funding.height:
            f = funding.sort("ts")
            f_ts = f["ts"].dt.epoch("us").to_numpy().astype(np.int64)
            f_rate = f["funding_rate"].to_numpy().astype(np.float64)
        else:
            f_ts, f_rate = np.zeros(0, np.int64), np.zeros(0, np.float64)
        samples = Book(bk.ts, bk.valid, bk.bid_px, bk.bid_qty, bk.ask_px, bk.ask_qty) \
            if bk.n else None
        return CoreInputs(self.core_params(continuous), self.submissions(signals), samples,
                          f_ts, f_rate)

    def new_core(self, inputs: CoreInputs, span_us: int = 0) -> ExecutionCore:
        """An execution core for this backtester's symbol, parameters and book depth, with room
        for the equity marks of ``span_us`` microseconds of trades."""
        depth = inputs.book.bid_px.shape[1] if inputs.book is not None else 0
        # + 3: the grid starts at the interval before the first trade, and ends after the last
        marks = span_us // bar_us(self.params.execution.equity_interval) + 3
        return ExecutionCore(inputs.params, depth=depth, symbol=self.symbol, marks=marks)

    def _execute(self, t_ts: np.ndarray, t_px: np.ndarray, t_qty: np.ndarray,
                 signals: pl.DataFrame, funding: pl.DataFrame | None, continuous: bool,
                 book: BookArrays | None = None) -> ExecutionCore:
        """The driver of a vectorised strategy's backtest: every event fed to the core at once."""
        inputs = self.core_inputs(signals, funding, continuous, book)
        core = self.new_core(inputs, int(t_ts[-1] - t_ts[0]))
        core.submit(inputs.signals)
        if inputs.book is not None:
            core.add_book(inputs.book)
        core.add_funding(inputs.funding_ts, inputs.funding_rate)
        core.trades_ticks(t_ts, t_px, t_qty)
        return core

    def _frames(self, core: ExecutionCore, signals: pl.DataFrame, t_ts: np.ndarray,
                t_px: np.ndarray) -> dict[str, Any]:
        """The core's outputs as the result frames (quote prices, base quantities, UTC)."""
        tick, lot = self.tick_size, self.lot_size
        interval = bar_us(self.params.execution.equity_interval)
        n_marks = (int(t_ts[-1]) - (int(t_ts[0]) // interval) * interval) // interval + 2
        m_eq, m_cash, m_pos, eq_start = core.marks(n_marks)
        out = core.outputs()
        o, fi, ff, ti, tf = (out[k] for k in ("orders", "fills_i", "fills_f", "trades_i",
                                              "trades_f"))
        s_i, s_f, cash = out["slots_i"], out["slots_f"], float(core.state.fv[K.V_CASH])
        last_px = float(t_px[-1]) * tick
        open_mask = s_i[:, K.S_ACTIVE] == 1
        final = cash + float(np.sum(s_i[open_mask, K.S_SIDE] * s_i[open_mask, K.S_QTY])) * lot \
            * last_px
        return dict(
            orders=_orders_frame(o, signals, tick, lot),
            fills=_fills_frame(fi, ff, lot),
            trades=_trades_frame(ti, tf, signals, tick, lot),
            equity=pl.DataFrame({
                "ts": pl.Series(eq_start + np.arange(n_marks, dtype=np.int64) * interval)
                .cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
                "equity": m_eq, "cash": m_cash,
                "position_qty": m_pos.astype(np.float64) * lot}),
            final_equity=float(final), open_positions=int(open_mask.sum()),
            positions=_positions(s_i, s_f, signals, tick, lot))


def _positions(s_i: np.ndarray, s_f: np.ndarray, signals: pl.DataFrame, tick: float,
               lot: float) -> list[Position]:
    out = []
    for s in np.flatnonzero(s_i[:, K.S_ACTIVE] == 1):
        qty = s_i[s, K.S_QTY] * lot
        held = s_i[s, K.S_MAXQTY] * lot
        out.append(Position(
            side="long" if s_i[s, K.S_SIDE] > 0 else "short", qty=float(qty),
            entry_price=float(s_f[s, K.F_ENTRY_VALUE] / held) if held else float("nan"),
            entry_ts=_ts(np.array([s_i[s, K.S_ENTRY_TS]]))[0],
            stop_price=float(s_i[s, K.S_STOP] * tick) if s_i[s, K.S_STOP] else None,
            target_price=float(s_i[s, K.S_TARGET] * tick) if s_i[s, K.S_TARGET] else None,
            setup=str(signals["setup"][int(s_i[s, K.S_SIG])])))
    return out


def _ts(values: np.ndarray) -> pl.Series:
    return pl.Series(values.astype(np.int64)).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _names(codes: np.ndarray, names: Sequence[str]) -> pl.Series | list[str]:
    """``names[code]`` per code, as a String column (an empty list, typeless, when there is
    none: what the frames always had)."""
    if len(codes) == 0:
        return []
    return pl.Series(codes.astype(np.int64)).replace_strict(
        list(range(len(names))), list(names), return_dtype=pl.String)


def _setups(setup: pl.Series, sig: np.ndarray) -> pl.Series | list[str | None]:
    """The setup of each row's signal (None where the row has no signal)."""
    valid = (sig >= 0) & (sig < len(setup))
    if len(sig) == 0 or not valid.any():
        return [None] * len(sig)
    out = setup.cast(pl.String).gather(np.where(valid, sig, 0))
    return out.scatter(np.flatnonzero(~valid), None) if not valid.all() else out


def _orders_frame(o: np.ndarray, signals: pl.DataFrame, tick: float, lot: float) -> pl.DataFrame:
    sig = o[:, K.O_SIG]
    return pl.DataFrame({
        "order_id": np.arange(len(o), dtype=np.int64),
        "signal_id": sig,
        "setup": _setups(signals["setup"], sig),
        "purpose": _names(o[:, K.O_PURPOSE], PURPOSES),
        "type": _names(o[:, K.O_TYPE], ("market", "limit", "stop")),
        "side": np.where(o[:, K.O_SIDE] > 0, "buy", "sell"),
        "limit_price": np.where(o[:, K.O_TYPE] == K.LIMIT, o[:, K.O_LIMIT] * tick, np.nan),
        "qty": np.where(o[:, K.O_QTY] > 0, o[:, K.O_QTY], 0) * lot,
        "filled_qty": o[:, K.O_FILLED] * lot,
        "status": _names(o[:, K.O_STATUS], STATUSES),
        "reject_reason": _names(o[:, K.O_REASON], REASONS),
        "created_ts": _ts(o[:, K.O_CREATED]), "arrival_ts": _ts(o[:, K.O_ARRIVAL]),
        "done_ts": _ts(o[:, K.O_DONE]),
    }).with_columns(pl.col("limit_price").fill_nan(None),
                    pl.when(pl.col("status") == "active").then(None).otherwise(pl.col("done_ts"))
                    .alias("done_ts"))


def _fills_frame(fi: np.ndarray, ff: np.ndarray, lot: float) -> pl.DataFrame:
    return pl.DataFrame({
        "ts": _ts(fi[:, K.FI_TS]), "order_id": fi[:, K.FI_ORDER],
        "side": np.where(fi[:, K.FI_SIDE] > 0, "buy", "sell"),
        "price": ff[:, K.FF_PRICE], "qty": fi[:, K.FI_QTY] * lot, "fee": ff[:, K.FF_FEE],
        "liquidity": np.where(fi[:, K.FI_TAKER] == 1, "taker", "maker"),
        "slippage": ff[:, K.FF_SLIP], "trade_index": fi[:, K.FI_TRADE],
    })


def _trades_frame(ti: np.ndarray, tf: np.ndarray, signals: pl.DataFrame, tick: float,
                  lot: float) -> pl.DataFrame:
    qty = ti[:, K.T_QTY] * lot
    side = ti[:, K.T_SIDE].astype(np.float64)
    entry_value, exit_value = tf[:, K.F_ENTRY_VALUE], tf[:, K.F_EXIT_VALUE]
    with np.errstate(divide="ignore", invalid="ignore"):
        entry_px = entry_value / qty
        exit_px = exit_value / qty
        gross = side * (exit_value - entry_value)
        pnl = gross - tf[:, K.F_FEES] - tf[:, K.F_FUNDING]
        risk = tf[:, K.F_RISK]
        r_mult = np.where(risk > 0, pnl / np.where(risk > 0, risk, 1.0), np.nan)
    return pl.DataFrame({
        "trade_id": np.arange(len(ti), dtype=np.int64),
        "signal_id": ti[:, K.T_SIG], "setup": _setups(signals["setup"], ti[:, K.T_SIG]),
        "side": np.where(side > 0, "long", "short"),
        "entry_ts": _ts(ti[:, K.T_ENTRY_TS]), "exit_ts": _ts(ti[:, K.T_EXIT_TS]),
        "qty": qty, "entry_price": entry_px, "exit_price": exit_px,
        "fees": tf[:, K.F_FEES], "slippage": tf[:, K.F_SLIP], "funding": tf[:, K.F_FUNDING],
        "gross_pnl": gross, "pnl": pnl, "return": pnl / entry_value,
        "risk": risk, "r_multiple": r_mult,
        "mae": np.maximum(0.0, -side * (ti[:, K.T_WORST] * tick - entry_px)) * qty,
        "mfe": np.maximum(0.0, side * (ti[:, K.T_BEST] * tick - entry_px)) * qty,
        "exit_reason": _names(ti[:, K.T_REASON], PURPOSES),
    }).with_columns(pl.col("r_multiple").fill_nan(None))
