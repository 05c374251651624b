"""``ExecutionCore``: the Python face of the execution core that backtest, paper and live drive.

It owns the core's state (``CoreState``) and the event streams fed so far (signals, book
samples, funding), checks every event before it touches the state (a bad event raises a
one-line ``DataError`` naming it, and the state is unchanged), and advances the compiled
kernel chunk by chunk, growing the output arrays when the kernel asks for room. Feeding a
stream whole or cut anywhere into chunks gives the same outputs byte for byte, provided each
event is fed before the first trade that could see it (``kernel.py``'s docstring).

Units: trades and orders in integer ticks and lots of the core's tick/lot, times in
microseconds since the epoch (UTC), money in quote currency.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from botclave_cli.errors import DataError
from botclave_cli.execution import layout as L
from botclave_cli.execution.kernel import advance
from botclave_cli.execution.orders import equity, net_position
from botclave_cli.execution.state import CoreState, grow, new_state
from botclave_cli.execution.view import AccountView, account_view


class Signals(NamedTuple):
    """Order submissions, one row per strategy signal (ticks, lots, microseconds)."""

    dec: np.ndarray      # decision time
    arr: np.ndarray      # arrival at the exchange (decision + latency), non-decreasing
    action: np.ndarray   # +1 long entry, -1 short entry, 0 flatten
    otype: np.ndarray    # MARKET or LIMIT
    limit: np.ndarray    # limit price (0 none)
    stop: np.ndarray     # protective stop (0 none)
    target: np.ndarray   # take-profit limit (0 none)
    trail: np.ndarray    # trailing distance (0 none)
    hold_us: np.ndarray  # time stop after the entry fill (0 none)
    expiry: np.ndarray   # a limit entry's expiry time (0 none)


class Book(NamedTuple):
    """Book samples: ``ts`` (n,), ``valid`` (n,), levels (n, depth) best first, 0-padded."""

    ts: np.ndarray
    valid: np.ndarray
    bid_px: np.ndarray
    bid_qty: np.ndarray
    ask_px: np.ndarray
    ask_qty: np.ndarray


class Funding(NamedTuple):
    ts: np.ndarray
    rate: np.ndarray


class CoreInputs(NamedTuple):
    """Everything a driver feeds besides the trades: ``layout.P_*`` parameters, the signals,
    the book samples (None: no book) and funding times (us) with their rates."""

    params: np.ndarray
    signals: Signals
    book: Book | None
    funding_ts: np.ndarray
    funding_rate: np.ndarray


class _Growing:
    """Rows appended to a set of equally long arrays, with amortised doubling."""

    def __init__(self, kind: type[NamedTuple], empty: NamedTuple) -> None:
        self.kind = kind
        self.arrays = list(empty)
        self.n = 0
        self._view: Any = None

    def append(self, rows: NamedTuple) -> None:
        add = int(rows[0].shape[0])
        if self.n + add > self.arrays[0].shape[0]:
            cap = max(self.n + add, 2 * self.arrays[0].shape[0], 16)
            for i, a in enumerate(self.arrays):
                out = np.zeros((cap, *a.shape[1:]), a.dtype)
                out[: self.n] = a[: self.n]
                self.arrays[i] = out
        for a, r in zip(self.arrays, rows, strict=True):
            a[self.n: self.n + add] = r
        self.n += add
        self._view = None

    def view(self) -> Any:
        """The rows so far, as the stream's NamedTuple of array views (kept until the next
        append: a live loop asks for it on every trade)."""
        if self._view is None:
            self._view = self.kind(*(a[: self.n] for a in self.arrays))
        return self._view


def _ints(n: int, width: int = 0) -> np.ndarray:
    return np.zeros((n, width) if width else n, np.int64)


class ExecutionCore:
    """One symbol's simulated exchange, advanced event by event.

    ``params``: the float64 vector of ``layout.P_*`` values; ``depth``: book levels per side
    (0: no book, trade-price rules only); ``marks`` and ``orders``: room for that many equity
    marks and orders up front (hints: the arrays grow as needed anyway)."""

    def __init__(self, params: np.ndarray, depth: int = 0, symbol: str = "",
                 marks: int = 64, orders: int = 64) -> None:
        if params.shape != (L.P_N,):
            raise ValueError(f"params: expected {L.P_N} values, got {params.shape}")
        self.params = params.astype(np.float64)
        self.depth = depth
        self.symbol = symbol
        n_orders = max(int(orders), 64)
        self.state: CoreState = new_state(float(params[L.P_EQUITY0]), depth,
                                          cap_orders=n_orders, cap_fills=4 * n_orders,
                                          cap_trades=n_orders // 2, cap_marks=max(int(marks), 64))
        self._signals = _Growing(Signals, Signals(*(_ints(0) for _ in Signals._fields)))
        w = max(depth, 1)
        self._book = _Growing(Book, Book(_ints(0), _ints(0), _ints(0, w), _ints(0, w),
                                         _ints(0, w), _ints(0, w)))
        self._funding = _Growing(Funding, Funding(_ints(0), np.zeros(0, np.float64)))
        self.trades_seen = 0
        self.last_ts: int | None = None

    # -- events ------------------------------------------------------------------------------
    @property
    def clock_us(self) -> int | None:
        """Time of the last trade processed (None before the first)."""
        return self.last_ts

    def _after_clock(self, what: str, first_ts: int) -> None:
        if self.last_ts is not None and first_ts <= self.last_ts:
            raise DataError(f"{what} at {first_ts} us is not after the core's clock "
                            f"({self.last_ts} us, the last trade processed): it comes too late")

    def submit(self, signals: Signals, symbol: str | None = None) -> None:
        """Order submissions (signals), in arrival order, each arriving after the clock."""
        if symbol is not None and self.symbol and symbol != self.symbol:
            raise DataError(f"signal for {symbol}: this execution core trades {self.symbol}")
        sig = Signals(*(np.asarray(a, np.int64) for a in signals))
        n = sig.arr.shape[0]
        if n == 0:
            return
        if any(a.shape != (n,) for a in sig):
            raise DataError("signals: every field needs one value per signal")
        if np.any(np.diff(sig.arr) < 0):
            bad = int(np.argmax(np.diff(sig.arr) < 0)) + 1
            raise DataError(f"signal {self._signals.n + bad}: arrival {int(sig.arr[bad])} us is "
                            "before the previous signal's (signals must come in arrival order)")
        last = self._signals.view().arr
        if last.shape[0] and sig.arr[0] < last[-1]:
            raise DataError(f"signal {self._signals.n}: arrival {int(sig.arr[0])} us is before "
                            f"the previous signal's ({int(last[-1])} us)")
        self._after_clock(f"signal {self._signals.n} arriving", int(sig.arr[0]))
        if np.any((sig.action < -1) | (sig.action > 1)):
            raise DataError("signals: action must be -1 (short), 0 (flat) or +1 (long)")
        self._signals.append(sig)

    def add_book(self, book: Book) -> None:
        """Book samples in time order, each after the clock."""
        n = book.ts.shape[0]
        if n == 0:
            return
        if self.depth == 0:
            raise DataError("book samples given to an execution core without book depth")
        if book.bid_px.shape != (n, self.depth):
            raise DataError(f"book samples: expected {self.depth} levels per side, got "
                            f"{book.bid_px.shape[1:]}")
        prev = self._book.view().ts
        ts = np.asarray(book.ts, np.int64)
        if np.any(np.diff(ts) < 0) or (prev.shape[0] and ts[0] < prev[-1]):
            raise DataError(f"book sample at {int(ts[0])} us: samples must come in time order")
        self._after_clock("book sample", int(ts[0]))
        self._book.append(Book(*(np.asarray(a, np.int64) for a in book)))

    def add_funding(self, ts_us: np.ndarray, rate: np.ndarray) -> None:
        """Funding times (us) and rates, in time order, each after the clock."""
        ts = np.asarray(ts_us, np.int64)
        rate = np.asarray(rate, np.float64)
        if ts.shape[0] == 0:
            return
        if np.any(~np.isfinite(rate)):
            raise DataError("funding: a rate is NaN or infinite")
        prev = self._funding.view().ts
        if np.any(np.diff(ts) < 0) or (prev.shape[0] and ts[0] < prev[-1]):
            raise DataError(f"funding at {int(ts[0])} us: funding must come in time order")
        self._after_clock("funding", int(ts[0]))
        self._funding.append(Funding(ts, rate))

    def trades(self, ts_us: np.ndarray, price: np.ndarray, qty: np.ndarray) -> None:
        """A chunk of trades in quote prices and base quantities (converted with the core's
        tick and lot)."""
        price = np.asarray(price, np.float64)
        qty = np.asarray(qty, np.float64)
        ts = np.asarray(ts_us, np.int64)
        if not (ts.shape == price.shape == qty.shape):
            raise DataError("trades: ts, price and qty need the same length")
        bad = ~np.isfinite(price) | (price <= 0) | ~np.isfinite(qty) | (qty < 0)
        if np.any(bad):
            i = int(np.argmax(bad))
            raise DataError(f"trade {self.trades_seen + i} at {int(ts[i])} us: price "
                            f"{float(price[i])} / qty {float(qty[i])} (expected a positive "
                            "price and a quantity >= 0)")
        self.trades_ticks(ts, np.rint(price / self.params[L.P_TICK]).astype(np.int64),
                          np.rint(qty / self.params[L.P_LOT]).astype(np.int64))

    def trades_ticks(self, ts_us: np.ndarray, px: np.ndarray, qty: np.ndarray, *,
                     checked: bool = False) -> None:
        """A chunk of trades already in ticks and lots: the core advances over them.
        ``checked``: the caller has made sure they are in time order with quantities >= 0
        (a sweep feeding the same trades to many cores checks them once)."""
        n = ts_us.shape[0]
        if n == 0:
            return
        if checked:
            neg = disorder = False
        elif n == 1:  # the live case, without numpy's per-call overhead on 1-element arrays
            neg = qty[0] < 0
            disorder = False
        else:
            neg = bool(np.any(qty < 0))
            disorder = bool(np.any(np.diff(ts_us) < 0))
        if neg:
            i = int(np.argmax(qty < 0))
            raise DataError(f"trade {self.trades_seen + i} at {int(ts_us[i])} us: negative "
                            f"quantity {int(qty[i])} lots")
        if disorder:
            i = int(np.argmax(np.diff(ts_us) < 0)) + 1
            raise DataError(f"trade {self.trades_seen + i} at {int(ts_us[i])} us is before the "
                            "trade before it (a chunk must be in time order)")
        if self.last_ts is not None and ts_us[0] < self.last_ts:
            raise DataError(f"trade {self.trades_seen} at {int(ts_us[0])} us is older than the "
                            f"core's clock ({self.last_ts} us)")
        done = 0
        sig, book, fund = self._signals.view(), self._book.view(), self._funding.view()
        while done < n:
            status, k = advance(self.state, ts_us[done:] if done else ts_us,
                                px[done:] if done else px, qty[done:] if done else qty,
                                self.trades_seen + done, sig, book, fund.ts, fund.rate,
                                self.params)
            done += k
            if status == L.NEED_ROOM:
                before = self.state
                self._grow(sig, int(ts_us[-1]))
                if k == 0 and all(a.shape == b.shape for a, b in zip(before, self.state,
                                                                      strict=True)):
                    raise RuntimeError("execution core: asked for room it already has (a bug)")
            elif status != L.OK:
                raise RuntimeError("execution core: an output array overflowed despite the "
                                   "room check (a bug)")
        self.trades_seen += n
        self.last_ts = int(ts_us[-1])

    def _grow(self, sig: Signals, next_ts: int) -> None:
        """Room for what the next trade may produce (orders, fills and closed trades doubled)
        and for the equity marks up to ``next_ts`` (us), the chunk's last trade: an idle
        stretch is skipped at once, so its marks must all fit (and are all needed anyway)."""
        st = self.state
        pending = sig.arr.shape[0] - int(st.iv[L.I_NEXT_SIGNAL])
        orders = int(st.iv[L.I_N_ORDERS]) + (pending + 3) * (L.MAX_SLOTS + 2) + \
            2 * int(st.iv[L.I_N_ACTIVE])
        fills = int(st.iv[L.I_N_FILLS]) + orders * max(self.depth, 1)
        trades = int(st.iv[L.I_N_TRADES]) + L.MAX_SLOTS + orders
        interval = int(self.params[L.P_EQ_INTERVAL_US])
        marks = int(st.iv[L.I_N_MARKS]) + max(next_ts - int(st.iv[L.I_NEXT_MARK]), 0) \
            // interval + 2
        self.state = grow(st, orders, fills, trades, marks)

    # -- results -----------------------------------------------------------------------------
    def view(self) -> AccountView:
        """Read-only positions, working orders, equity and last fills, as of the clock."""
        return account_view(self.state, self.params, self.last_ts)

    def equity_now(self) -> float:
        """Equity at the last traded price (quote currency)."""
        px = float(self.state.iv[L.I_LAST_PX]) * self.params[L.P_TICK]
        return float(equity(self.state, self.params[L.P_LOT], px))

    def marks(self, end_marks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Equity, cash and net position (lots) on the interval grid from ``eq_start`` for
        ``end_marks`` marks: the grid points after the last trade hold the last values.
        Returns (equity, cash, position, eq_start_us)."""
        st = self.state
        n = int(st.iv[L.I_N_MARKS])
        extra = max(end_marks - n, 0)
        eq = np.concatenate([st.marks_eq[:n], np.full(extra, self.equity_now())])
        cash = np.concatenate([st.marks_cash[:n], np.full(extra, st.fv[L.V_CASH])])
        pos = np.concatenate([st.marks_pos[:n],
                              np.full(extra, net_position(st), np.int64)])
        return eq, cash, pos, int(st.iv[L.I_EQ_START])

    def outputs(self) -> dict[str, np.ndarray]:
        """Views of the filled rows: orders, fills (int, float), trades (int, float), slots."""
        st = self.state
        iv = st.iv
        return dict(
            orders=st.orders[: iv[L.I_N_ORDERS]], fills_i=st.fills_i[: iv[L.I_N_FILLS]],
            fills_f=st.fills_f[: iv[L.I_N_FILLS]], trades_i=st.trades_i[: iv[L.I_N_TRADES]],
            trades_f=st.trades_f[: iv[L.I_N_TRADES]], slots_i=st.slots_i, slots_f=st.slots_f)
