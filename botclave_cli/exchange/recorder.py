"""Live recorder: Binance combined WebSocket streams -> raw capture lines + the dataset store.

Why raw streams through ``websockets`` and not ccxt.pro: ccxt.pro hides the diffs' ``U``/``u``/
``pu``, without which a book cannot be sequenced. Snapshots come through ccxt REST (the raw
``/depth`` response, so the capture line is exactly what Binance sent).

What it does, in order: connect; append every message as ``<receive time ns> <JSON>`` (the
format of ../shared/data/binance-ws); feed depth diffs to a live ``DOMBuilder`` (on the data's
8-decimal grid) whose resync requests - the first sync, a gap, a stale snapshot - are answered
with a REST snapshot, itself written as a capture line in stream order. Every ``flush_every_s``
(and on exit) the new lines are appended to the day's capture file (fsync) and parsed into the
store (trades, book_snapshot, book_diff, quotes) with ``seq`` continuing the stored ``seq``, so a
restart continues the dataset. Disconnects reconnect with exponential backoff; SIGINT/SIGTERM
stop the loop and flush.

Memory stays flat however long it runs: the builder buffers at most a bounded number of diffs
and ``RecordSink`` (record_sink.py) keeps neither the lines it flushed nor the day's rows; it
also notes the gaps it sees in the manifests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import orjson

from botclave_cli.data.store import Store
from botclave_cli.engine.book.dom_builder import DOMBuilder
from botclave_cli.errors import UsageError
from botclave_cli.exchange.record_config import RecordConfig, RecordResult, market_id
from botclave_cli.exchange.record_sink import RecordSink
from botclave_cli.logs import get_logger

log = get_logger(__name__)

#: Binance prints at most 8 decimals: the live gap detector's grid (exact, no tick needed)
LIVE_GRID = 1e-8

SnapshotFetcher = Callable[[str, int], dict]


def ccxt_snapshot_fetcher(market: str, rest_url: str | None = None,
                          timeout_ms: int = 10_000) -> SnapshotFetcher:
    """REST depth snapshots through ccxt's raw endpoint methods (the response as Binance sent it).

    ``rest_url`` replaces scheme and host of every ccxt API url (an emulator, a proxy).
    """
    import ccxt

    from botclave_cli.exchange.connector import EXCHANGE_CLASSES, override_urls

    exchange = getattr(ccxt, EXCHANGE_CLASSES[market])({"timeout": timeout_ms,
                                                        "enableRateLimit": True})
    if rest_url:
        exchange.urls["api"] = override_urls(exchange.urls["api"], {"all": rest_url})
    method = {"spot": "publicGetDepth", "usdm": "fapiPublicGetDepth",
              "coinm": "dapiPublicGetDepth"}[market]
    call = getattr(exchange, method)
    return lambda symbol_id, limit: call({"symbol": symbol_id, "limit": limit})


class StreamListener(Protocol):
    """Who else reads the stream (a paper or live session): every message as it arrives,
    and the clock about four times a second (receive times in us, this machine's clock)."""

    def on_message(self, message: dict[str, Any], receive_us: int) -> None: ...

    def on_tick(self, now_us: int) -> None: ...


class Recorder:
    """Records one symbol's streams; ``await run()`` until the duration, a signal or ``stop()``."""

    def __init__(self, store: Store, cfg: RecordConfig, *, capture_dir: Path,
                 fetch_snapshot: SnapshotFetcher | None = None,
                 clock_ns: Callable[[], int] = time.time_ns, exchange: str = "binance",
                 listener: StreamListener | None = None) -> None:
        self.cfg = cfg
        self.listener = listener
        self.fetch_snapshot = fetch_snapshot or ccxt_snapshot_fetcher(cfg.market)
        self.clock_ns = clock_ns
        self.exchange = exchange
        self.symbol_id = market_id(cfg.symbol, cfg.market)
        self.result = RecordResult()
        self.sink = RecordSink(store, cfg, self.result, capture_dir=capture_dir,
                               symbol_id=self.symbol_id, exchange=exchange)
        self._stop = asyncio.Event()
        self.connected = False  # a WebSocket is open now
        self._builder: DOMBuilder | None = None
        self._want_snapshot = False
        self._snapshot_task: asyncio.Task | None = None
        self._last_message_us: int | None = None
        #: receive time (us) of the last message before a disconnect or a restart
        self._disconnected_us: int | None = None

    def _error(self, text: str) -> None:
        """Keep the last 20 errors (a flaky link over days must not grow the result)."""
        self.result.errors = [*self.result.errors[-19:], text[:200]]

    def stop(self, reason: str = "stop") -> None:
        self.result.stopped_by = self.result.stopped_by or reason
        self._stop.set()

    # main loop ---------------------------------------------------------------------------------
    async def run(self) -> RecordResult:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

        self._disconnected_us = self.sink.resume()
        loop = asyncio.get_running_loop()
        handled = self._install_signals(loop)
        deadline = (time.monotonic() + self.cfg.duration_s) if self.cfg.duration_s else None
        backoff = 0.5
        next_flush = time.monotonic() + self.cfg.flush_every_s
        try:
            while not self._stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    self.stop("duration")
                    break
                try:
                    async with connect(self.cfg.url(), max_size=None, open_timeout=10) as ws:
                        self.connected = True
                        self._builder = None
                        self._want_snapshot = "depth" in self.cfg.streams
                        reader = loop.create_task(self._read(ws))
                        try:
                            while not self._stop.is_set() and not reader.done():
                                now = time.monotonic()
                                if deadline is not None and now >= deadline:
                                    self.stop("duration")
                                    break
                                if now >= next_flush:
                                    self.sink.flush()
                                    next_flush = now + self.cfg.flush_every_s
                                await asyncio.wait([reader], timeout=min(
                                    0.25, max(next_flush - now, 0.001),
                                    (deadline - now) if deadline is not None else 0.25))
                                if self.listener is not None:
                                    self.listener.on_tick(self.clock_ns() // 1000)
                        finally:
                            self.connected = False
                            if not reader.done():
                                reader.cancel()
                            with contextlib.suppress(asyncio.CancelledError):
                                await reader  # re-raises the reader's connection error
                        backoff = 0.5 if self.result.messages else backoff
                except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                    if self._stop.is_set():
                        break
                    self._error(f"{type(exc).__name__}: {exc}")
                    log.info("stream disconnected", extra={"error": str(exc)[:200]})
                except InvalidURI as exc:
                    raise UsageError(f"--ws-url: {exc}") from None
                if self._stop.is_set():
                    break
                self.result.reconnects += 1
                if self._disconnected_us is None:  # a failed reconnect keeps the first time
                    self._disconnected_us = self._last_message_us
                self.sink.flush()
                pause = backoff if deadline is None else min(backoff, deadline - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), max(pause, 0.0))
                backoff = min(backoff * 2, self.cfg.max_backoff_s)
        finally:
            if self._snapshot_task is not None:
                self._snapshot_task.cancel()
                with contextlib.suppress(BaseException):
                    await self._snapshot_task
            self.sink.flush(store=True)
            self.sink.compact()
            for sig in handled:
                loop.remove_signal_handler(sig)
        self.result.next_seq = self.sink.seq
        return self.result

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.stop, signal.Signals(sig).name)
                handled.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (tests): stop() is called directly
        return handled

    # messages ----------------------------------------------------------------------------------
    async def _read(self, ws: Any) -> None:
        async for raw in ws:
            self._on_message(raw if isinstance(raw, str) else raw.decode())

    def _on_message(self, raw: str) -> None:
        now_ns = self.clock_ns()
        self.sink.add(f"{now_ns} {raw}")
        self.result.messages += 1
        self._last_message_us = now_ns // 1000
        if self._disconnected_us is not None:
            self.sink.note_disconnect(self._disconnected_us, now_ns // 1000)
            self._disconnected_us = None
        message = orjson.loads(raw) if self.listener is not None or "depthUpdate" in raw else None
        if self.listener is not None and message is not None:
            self.listener.on_message(message, now_ns // 1000)
        if "depthUpdate" not in raw or message is None:
            return
        data = message.get("data", {})
        self.sink.check_diff(int(data["U"]), int(data["u"]), data.get("pu"), int(data["E"]) * 1000)
        if self._builder is None:
            self._builder = DOMBuilder(self.cfg.market, LIVE_GRID, LIVE_GRID,
                                       on_resync=self._on_resync)
        self._builder.on_diff(int(data["U"]), int(data["u"]), data.get("pu"), data["b"],
                              data["a"], int(data["E"]) * 1000)
        if self._want_snapshot and self._snapshot_task is None:
            self._snapshot_task = asyncio.get_running_loop().create_task(self._resync())

    def _on_resync(self, reason: str, seq: int) -> None:
        self.result.resyncs += 1
        log.info("book resync requested", extra={"reason": reason, "symbol": self.cfg.symbol})
        self._want_snapshot = True

    async def _resync(self) -> None:
        """Fetch REST snapshots until the book syncs (backoff between tries)."""
        loop = asyncio.get_running_loop()
        delay = 0.2
        try:
            while self._want_snapshot and not self._stop.is_set():
                self._want_snapshot = False
                try:
                    snap = await loop.run_in_executor(None, self.fetch_snapshot, self.symbol_id,
                                                      self.cfg.snapshot_limit)
                except Exception as exc:  # noqa: BLE001 - ccxt errors of every kind: retry
                    self._error(f"snapshot: {type(exc).__name__}: {exc}")
                    self._want_snapshot = True
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.cfg.max_backoff_s)
                    continue
                self.sink.add(f"{self.clock_ns()} {json.dumps(snap, separators=(',', ':'))}")
                self.result.snapshots += 1
                builder = self._builder
                if builder is None:
                    continue
                ts = int(snap["E"]) * 1000 if snap.get("E") else -1
                builder.on_snapshot(int(snap["lastUpdateId"]), snap["bids"], snap["asks"], ts)
                if not builder.valid:
                    self._want_snapshot = True
                    await asyncio.sleep(delay)
        finally:
            self._snapshot_task = None


def record(store: Store, cfg: RecordConfig, *, capture_dir: Path,
           rest_url: str | None = None, **kwargs: Any) -> RecordResult:
    """Blocking entry point for the CLI: run the recorder in a fresh event loop."""
    fetcher = kwargs.pop("fetch_snapshot", None) or ccxt_snapshot_fetcher(cfg.market, rest_url)
    recorder = Recorder(store, cfg, capture_dir=capture_dir, fetch_snapshot=fetcher, **kwargs)
    return asyncio.run(recorder.run())
