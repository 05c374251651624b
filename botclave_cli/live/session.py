"""A paper session on the live WebSocket: the recorder's streams -> PaperTrader -> a run folder.

The recorder (exchange/recorder.py) reads the combined streams, keeps the book in sync and
writes every message to the capture and the store, crash-safe, as ``botclave record`` does. This
session listens to the same messages: trades go to the ``PaperTrader`` (the strategy decides
each bar as it closes; a bar that no trade of the next bar closes is closed by the clock
``grace_s`` after its end), and every ``write_every_s`` the session's run folder
(``<out dir>/runs/paper-<session>/``, status "running", then "stopped") is rewritten atomically.

Resume after a crash (``kill -9``): a paper session's state is a function of the trades it
received, and those are in the store. A restart replays the session's stored trades (from its
start, in ``<data dir>/sessions/<session>/session.json``) through a fresh trader at full speed,
then goes on live, skipping what the replay already covered; no order is ever sent anywhere.

About once a second the session rewrites its status file (live/status.py: the heartbeat that
``botclave paper status`` reads: state, halts of the execution core (daily loss, drawdown),
connection, last event, position, working orders, equity); ``botclave paper stop`` (a
``stop.request`` file) or SIGTERM/SIGINT ends it cleanly: the open bar is closed, the run folder
written "stopped", the status "stopped".
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.backtest.results import write_results
from botclave_cli.data import atomic
from botclave_cli.data.store import DatasetRef, Store
from botclave_cli.errors import UsageError
from botclave_cli.exchange.record_config import RecordConfig
from botclave_cli.exchange.recorder import Recorder, SnapshotFetcher
from botclave_cli.execution import layout as L
from botclave_cli.execution.view import fills_since
from botclave_cli.live.alerts.alerter import Alerter
from botclave_cli.live.paper import BookReading, PaperTrader
from botclave_cli.live.replay import replay_trades, trade_message
from botclave_cli.live.status import SessionStatus, status_path, stop_path, write_status
from botclave_cli.logs import get_logger

log = get_logger(__name__)


@dataclass
class SessionInfo:
    """``session.json``: the session's symbol and the exchange time (us) of its first trade,
    from which a restart replays the store."""

    path: Path
    session: str
    symbol: str
    market: str
    start_us: int | None = None

    @classmethod
    def load_or_create(cls, path: Path, session: str, symbol: str, market: str) -> SessionInfo:
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(path, **data)
        info = cls(path, session, symbol, market)
        info.save()
        return info

    def save(self) -> None:
        data = {k: v for k, v in self.__dict__.items() if k != "path"}
        atomic.write_text(self.path, json.dumps(data, indent=2) + "\n")


class PaperSession:
    """The stream listener of a live paper session (module docstring)."""

    def __init__(self, tester: Backtester, out_dir: Path, session: str, *,
                 info: SessionInfo | None = None,
                 grace_s: float = 2.0, write_every_s: float = 10.0,
                 extra: dict[str, Any] | None = None, data_dir: Path | None = None,
                 status_every_s: float = 1.0, alerter: Alerter | None = None) -> None:
        self.tester = tester
        self.alerter = alerter  # fills, halts, long disconnects, errors (live/alerts)
        self._fills_alerted = 0
        self._halt_alerted: str | None = None
        self._reconnects_seen = 0
        self._last_seen_us: int | None = None
        self.session = session
        self.recorder: Recorder | None = None  # set by run_paper_session (connection, stop)
        self.status_file = status_path(data_dir, session) if data_dir is not None else None
        self.stop_file = stop_path(data_dir, session) if data_dir is not None else None
        self.status_every_s = status_every_s
        self._next_status = 0.0
        self.started_ms = int(time.time() * 1000)
        self.state: str = "running"
        self.mode: Literal["paper", "live"] = "paper"
        self.info = info
        self.trader = PaperTrader(tester)
        self.out_dir = out_dir
        self.rid = f"paper-{session}"
        self.grace_us = int(grace_s * 1e6)
        self.write_every_s = write_every_s
        self.extra = extra or {}
        self.replayed_until_us: int | None = None
        self.messages = 0
        self.last_event_us: int | None = None
        #: exchange time minus this machine's clock at the last live trade (None before one)
        self.clock_offset_us: int | None = None
        self._next_write = time.monotonic() + write_every_s

    def resume(self, trades: Any) -> int:
        """Replay the session's stored trades (a frame in time order); returns how many."""
        if trades.height == 0:
            return 0
        replay_trades(self.trader, trades, close_last=False)
        self.replayed_until_us = int(trades["ts"].dt.epoch("us").max())
        return trades.height

    # StreamListener ----------------------------------------------------------------------------
    def on_message(self, message: dict[str, Any], receive_us: int) -> None:
        self.messages += 1
        self.last_event_us = receive_us
        trade = trade_message(message)
        if trade is None:
            return
        ts, price, qty, buy = trade
        self.clock_offset_us = ts - receive_us  # exchange time minus this machine's clock
        if self.replayed_until_us is not None and ts <= self.replayed_until_us:
            return  # the replay of the store already fed it
        last = self.trader.last_ts_us
        if last is not None and ts < last:
            log.info("trade older than the last one skipped", extra={"ts_us": ts})
            return
        if self.info is not None and self.info.start_us is None:
            self.info.start_us = ts
            self.info.save()
        self.trader.on_trade(ts, price, qty, buy)

    def on_tick(self, now_us: int) -> None:
        # bars end on the exchange's clock: this machine's clock moved by the last offset seen
        if self.clock_offset_us is not None:
            self.trader.close_due(now_us + self.clock_offset_us, self.grace_us)
        self.trader.flush()  # paper fills current on every tick
        if self.alerter is not None:
            self._alert(now_us)
        if time.monotonic() >= self._next_write:
            self.write("running")
            self._next_write = time.monotonic() + self.write_every_s
        if time.monotonic() >= self._next_status:
            self.write_status()
            self._next_status = time.monotonic() + self.status_every_s
        if self.stop_file is not None and self.recorder is not None and self.stop_file.exists():
            log.info("stop requested", extra={"session": self.session})
            self.recorder.stop("stop requested")

    def _alert(self, now_us: int) -> None:
        """Alerts of what changed since the last tick: new paper fills, a halt of the core,
        the stream going down or coming back (the alerter decides whether a disconnect
        lasted long enough to tell)."""
        alerter, core = self.alerter, self.trader.core
        assert alerter is not None
        fills = fills_since(core.state, core.params, self._fills_alerted)
        symbol = self.info.symbol if self.info else "?"
        for f in fills:
            alerter.fill(symbol, f.side, f.qty, f.price, fee=f.fee,
                         client_id=f"paper-{self.session}-{f.order_id}")
        self._fills_alerted += len(fills)
        halt = self.halt()  # not the whole status: this runs on every tick
        if halt is not None and halt != self._halt_alerted:
            alerter.halt(halt, "the execution core closed everything; entries stop")
        self._halt_alerted = halt
        # the recorder calls on_tick only while connected: a reconnect since the last tick
        # means the stream was down from about the last message before it until now
        rec = self.recorder
        reconnects = rec.result.reconnects if rec is not None else 0
        if reconnects > self._reconnects_seen:
            since = self._last_seen_us if self._last_seen_us is not None else now_us
            alerter.disconnected(since / 1e6, "WebSocket closed")
            alerter.connected(now_us / 1e6)
        self._reconnects_seen = reconnects
        self._last_seen_us = self.last_event_us

    # the status file (heartbeat) ---------------------------------------------------------------
    def halt(self) -> str | None:
        """Why the core halted entries ("drawdown", "daily loss"), or None."""
        iv = self.trader.core.state.iv
        return next((why for why, flag in (("drawdown", L.I_HALTED_DD),
                                           ("daily loss", L.I_HALTED_DAY)) if iv[flag] == 1), None)

    def status(self) -> SessionStatus:
        core = self.trader.core
        view = core.view()
        halt = self.halt()
        state = self.state if self.state == "stopped" else ("halted" if halt else "running")
        rec = self.recorder
        last_ms = self.last_event_us // 1000 if self.last_event_us is not None else None
        return SessionStatus(
            session=self.session, mode=self.mode, symbol=self.info.symbol if self.info else "?",
            market=self.info.market if self.info else "?", pid=os.getpid(), state=state,
            halt=halt, started_ms=self.started_ms,
            heartbeat_ms=int(time.time() * 1000), last_event_ms=last_ms,
            connected=bool(rec and rec.connected), reconnects=rec.result.reconnects if rec else 0,
            messages=self.messages, equity=view.equity if self.trader.received else None,
            initial_equity=self.tester.params.execution.initial_equity,
            position_qty=view.position_qty,
            positions=[asdict(p) for p in view.positions],
            open_orders=[asdict(o) for o in view.orders],
            trades=int(core.state.iv[L.I_N_TRADES]), signals=self.trader.n_signals,
            bars_without_book=dict(self.trader.bars_without_book),
            run_folder=str(self.out_dir / "runs" / self.rid))

    # the live book --------------------------------------------------------------------------------
    def use_book(self, stale_s: float = 2.0) -> None:
        """Give the trader the recorder's book at each bar close: the strategy reads its
        imbalance, and no signal is decided while it is invalid (not synced, a sequence
        break) or stale (its last diff more than ``stale_s`` before the bar's end)."""
        self.stale_book_us = int(stale_s * 1e6)
        self.trader.book = self.book_reading

    def book_reading(self, bar_end_us: int) -> BookReading:
        builder = self.recorder._builder if self.recorder is not None else None
        if builder is None or not builder.valid:
            return BookReading("book invalid")
        levels = self.tester.params.entry.book_imbalance_levels
        state = builder.state(depth=levels)
        if state.ts_us is None or bar_end_us - state.ts_us > self.stale_book_us:
            return BookReading("book stale")
        bid, ask = float(state.bid_qty.sum()), float(state.ask_qty.sum())
        return BookReading(None, (bid - ask) / (bid + ask) if bid + ask > 0 else None)

    def write_status(self) -> None:
        if self.status_file is not None:
            write_status(self.status_file, self.status())

    # the run folder ----------------------------------------------------------------------------
    def write(self, status: str) -> Path | None:
        if not self.trader.received:
            return None
        _, folder = write_results(self.trader.result(), self.out_dir, rid=self.rid,
                                  status=status, extra={**self.extra, "paper": True,
                                                        "late_trades": self.trader.late_trades})
        return folder


def run_paper_session(store: Store, cfg: RecordConfig, tester: Backtester, *, data_dir: Path,
                      out_dir: Path, session: str, capture_dir: Path,
                      fetch_snapshot: SnapshotFetcher | None = None,
                      exchange: str = "binance", grace_s: float = 2.0,
                      write_every_s: float = 10.0, stale_book_s: float = 2.0,
                      alerter: Alerter | None = None,
                      make_session: Callable[..., PaperSession] | None = None,
                      on_stopped: Callable[[PaperSession], None] | None = None,
                      ) -> tuple[PaperSession, Path | None]:
    """Run a paper session until the recorder stops (duration, SIGINT/SIGTERM); the session
    and its run folder. ``make_session`` builds another kind of session over the same loop
    (live/live_session.py); ``on_stopped`` runs after the stream stopped, before the final
    run folder and status (live: cancel open orders, flatten)."""
    info = SessionInfo.load_or_create(data_dir / "sessions" / session / "session.json",
                                      session, cfg.symbol, cfg.market)
    paper = (make_session or PaperSession)(
        tester, out_dir, session, info=info, grace_s=grace_s, write_every_s=write_every_s,
        data_dir=data_dir, alerter=alerter,
        extra={"session": session, "exchange": exchange, "market": cfg.market})
    stop_file = stop_path(data_dir, session)
    stop_file.unlink(missing_ok=True)  # a request an earlier run did not see
    ref = DatasetRef(exchange, cfg.market, cfg.symbol, "trades")
    if info.start_us is not None and store.exists(ref):
        import datetime as dt

        since = dt.datetime.fromtimestamp(info.start_us / 1e6, tz=dt.UTC)
        stored = store.scan(ref, since, None).select("ts", "price", "qty", "side").collect()
        paper.resume(stored.sort("ts", maintain_order=True))
    recorder = Recorder(store, cfg, capture_dir=capture_dir, fetch_snapshot=fetch_snapshot,
                        exchange=exchange, listener=paper)
    paper.recorder = recorder
    if tester.params.entry.book_imbalance_min is not None:
        if "depth" not in cfg.streams:
            raise UsageError("entry.book_imbalance_min needs the depth stream in the session")
        paper.use_book(stale_book_s)
    paper.write_status()
    handler = alerter.log_handler() if alerter is not None else None
    if handler is not None:
        logging.getLogger("botclave").addHandler(handler)
    try:
        asyncio.run(recorder.run())
        paper.trader.close()
        if on_stopped is not None:
            on_stopped(paper)
        folder = paper.write("stopped")
        paper.state = "stopped"
        paper.write_status()
        if alerter is not None:
            paper._alert(time.time_ns() // 1000)  # the last fills
    finally:
        if handler is not None:
            logging.getLogger("botclave").removeHandler(handler)
        if alerter is not None:
            alerter.close()
    stop_file.unlink(missing_ok=True)
    return paper, folder
