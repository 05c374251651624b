"""The ``Alerter``: the trading thread hands it events, background threads send them.

``notify`` (and ``fill``/``halt``/``error``/``disconnected``/``connected``) never block and never
raise: each channel has a bounded queue and its own sender thread, so a slow SMTP server or a
Telegram ``429 retry_after`` delays only that channel's messages. Per channel at most
``max_per_window`` messages go out in any ``window_s`` seconds; what arrives beyond that is held
and sent as one "N more events" summary when a slot frees (``limiter.py``). A failed send is
retried (``max_attempts`` on network errors and 5xx, with 1 s, 2 s, 4 s... between tries; a 429
waits the ``retry_after`` it names and does not count), then dropped with a log line; delivery
is at least once (a timed-out request may have arrived). ``close`` flushes: it sends what is
queued and what is held (the held summary at once, even over the limit) for up to
``timeout_s`` seconds.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from botclave_cli.config import AlertsConfig
from botclave_cli.live.alerts.channels import Channel, SendResult
from botclave_cli.live.alerts.events import (
    AlertEvent,
    DisconnectWatch,
    error_text,
    fill_text,
    halt_text,
)
from botclave_cli.live.alerts.limiter import Coalescer, RateLimiter
from botclave_cli.logs import LOGGER_NAME, get_logger
from botclave_cli.secrets import mask

log = get_logger(__name__)

#: a 429 is honoured this many times for one message before the message is dropped
MAX_RATE_LIMITED = 10


@dataclass
class ChannelStats:
    """Counts of one channel since the alerter started."""

    sent: int = 0
    summaries: int = 0
    failed: int = 0
    dropped: int = 0
    rate_limited: int = 0
    last_error: str | None = None
    last_ok_ts: float | None = None


class _Worker:
    """One channel's queue, rate limit and sender thread."""

    def __init__(self, channel: Channel, cfg: AlertsConfig, prefix: str,
                 abort: threading.Event, backoff_s: float) -> None:
        self.channel = channel
        self.cfg = cfg
        self.prefix = prefix
        self.abort = abort
        self.backoff_s = backoff_s
        self.queue: queue.Queue[AlertEvent] = queue.Queue(maxsize=cfg.queue_size)
        self.limiter = RateLimiter(cfg.max_per_window, cfg.window_s)
        self.coalescer = Coalescer()
        self.stats = ChannelStats()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._overflow = 0
        self.thread = threading.Thread(target=self._run, name=f"alerts-{channel.name}",
                                       daemon=True)

    def offer(self, event: AlertEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            with self._lock:
                self._overflow += 1
                self.stats.dropped += 1

    def _run(self) -> None:
        note = f"at most {self.cfg.max_per_window} per {self.cfg.window_s:g} s"
        while not self.abort.is_set():
            event = self._next()
            with self._lock:
                self.coalescer.dropped += self._overflow
                self._overflow = 0
            if event is not None:
                self._handle(event)
            draining = self.stopping.is_set() and self.queue.empty()
            if self.coalescer and (draining or self.limiter.allow(time.monotonic())):
                self._deliver(self.coalescer.take(note), summary=True)
            elif event is None and draining:
                return

    def _next(self) -> AlertEvent | None:
        """The next queued event, waiting at most until the held summary may go out."""
        wait = 0.2
        if self.stopping.is_set():
            wait = 0.0
        elif self.coalescer:
            now = time.monotonic()
            wait = min(wait, max(0.0, self.limiter.next_free(now) - now))
        try:
            return self.queue.get(timeout=wait)
        except queue.Empty:
            return None

    def _handle(self, event: AlertEvent) -> None:
        if not self.coalescer and self.limiter.allow(time.monotonic()):
            self._deliver(event.text)
        else:
            self.coalescer.hold(event)

    def _deliver(self, text: str, summary: bool = False) -> None:
        """Send with retries; the slot is taken on success only."""
        body = self.prefix + mask(text)
        attempts = limited = 0
        while not self.abort.is_set():
            result = self._send(body)
            if result.ok:
                self.limiter.record(time.monotonic())
                self.stats.sent += 1
                self.stats.summaries += summary
                self.stats.last_ok_ts = time.time()
                return
            self.stats.last_error = result.detail
            if result.retry_after is not None and limited < MAX_RATE_LIMITED:
                limited += 1
                self.stats.rate_limited += 1
                log.warning("alert rate-limited by the server", extra={
                    "channel": self.channel.name, "retry_after_s": result.retry_after})
                self.abort.wait(result.retry_after)
                continue
            attempts += 1
            if result.permanent or attempts >= self.cfg.max_attempts:
                break
            self.abort.wait(self.backoff_s * 2 ** (attempts - 1))
        self.stats.failed += 1
        log.error("alert not sent", extra={"channel": self.channel.name,
                                           "error": self.stats.last_error})

    def _send(self, body: str) -> SendResult:
        try:
            return self.channel.send(body)
        except Exception as exc:  # noqa: BLE001 - a channel bug must not kill its thread
            return SendResult(False, mask(f"{type(exc).__name__}: {exc}"))


class Alerter:
    """Alerts of one trading session to its channels (module docstring).

    ``clock`` gives the time of events and of the disconnect check (seconds since the epoch);
    a ticker thread calls ``tick`` every ``tick_s`` seconds so that a stream that stays down is
    alerted without anyone calling in.
    """

    def __init__(self, channels: Sequence[Channel], config: AlertsConfig | None = None, *,
                 session: str | None = None, clock: Callable[[], float] = time.time,
                 tick_s: float = 1.0, backoff_s: float = 1.0) -> None:
        self.config = config or AlertsConfig()
        self.clock = clock
        self.watch = DisconnectWatch(self.config.disconnect_after_s)
        self._abort = threading.Event()
        self._closed = threading.Event()
        prefix = f"[botclave {session}] " if session else "[botclave] "
        active = channels if self.config.enabled else []
        self._workers = [_Worker(c, self.config, prefix, self._abort, backoff_s)
                         for c in active]
        for worker in self._workers:
            worker.thread.start()
        self._ticker: threading.Thread | None = None
        if self._workers and "disconnect" in self.config.events:
            self._ticker = threading.Thread(target=self._tick_loop, args=(tick_s,),
                                            name="alerts-ticker", daemon=True)
            self._ticker.start()

    @property
    def channels(self) -> list[str]:
        return [w.channel.name for w in self._workers]

    def notify(self, event: AlertEvent) -> None:
        """Queue ``event`` for every channel; never blocks, never raises."""
        if self._closed.is_set() or event.kind not in (*self.config.events, "test"):
            return
        for worker in self._workers:
            worker.offer(event)

    def fill(self, symbol: str, side: str, qty: float, price: float, *,
             fee: float | None = None, client_id: str | None = None,
             pnl: float | None = None, ts: float | None = None) -> None:
        """A fill: qty in base units (contracts), price, fee and pnl in quote currency."""
        text = fill_text(symbol, side, qty, price, fee=fee, client_id=client_id, pnl=pnl)
        self.notify(AlertEvent("fill", text, self._now(ts)))

    def halt(self, reason: str, detail: str | None = None, *, ts: float | None = None) -> None:
        """Trading halted (daily loss, drawdown, kill switch...)."""
        self.notify(AlertEvent("halt", halt_text(reason, detail), self._now(ts)))

    def error(self, where: str, message: str, *, ts: float | None = None) -> None:
        """An error worth a human's attention; ``message`` is masked before it leaves."""
        self.notify(AlertEvent("error", error_text(where, mask(message)), self._now(ts)))

    def disconnected(self, ts: float | None = None, reason: str = "",
                     stream: str = "market data") -> None:
        """``stream`` went down at ``ts``: alerted only once it lasts > disconnect_after_s."""
        self.watch.disconnected(self._now(ts), reason, stream)

    def connected(self, ts: float | None = None, stream: str = "market data") -> None:
        """``stream`` is back at ``ts``."""
        event = self.watch.connected(self._now(ts), stream)
        if event is not None:
            self.notify(event)

    def tick(self, now: float | None = None) -> None:
        """Alert the streams that have been down longer than the threshold at ``now``."""
        for event in self.watch.check(self._now(now)):
            self.notify(event)

    def log_handler(self, level: int = logging.ERROR) -> AlertLogHandler:
        """A handler for the ``botclave`` logger that turns its error records into alerts:
        ``logging.getLogger("botclave").addHandler(alerter.log_handler())``."""
        return AlertLogHandler(self, level)

    def stats(self) -> dict[str, ChannelStats]:
        return {w.channel.name: w.stats for w in self._workers}

    def close(self, timeout_s: float = 10.0) -> dict[str, ChannelStats]:
        """Flush queued and held events for up to ``timeout_s`` s, then stop the threads."""
        self._closed.set()
        deadline = time.monotonic() + timeout_s
        for worker in self._workers:
            worker.stopping.set()
        for worker in self._workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))
        if any(w.thread.is_alive() for w in self._workers):
            self._abort.set()
            for worker in self._workers:
                worker.thread.join(2.0)
            left = {w.channel.name: w.queue.qsize() + len(w.coalescer.held)
                    for w in self._workers}
            log.warning("alerts not flushed before the timeout", extra={"left": left})
        self._abort.set()
        if self._ticker is not None:
            self._ticker.join(2.0)
        for worker in self._workers:
            worker.channel.close()
        return self.stats()

    def __enter__(self) -> Alerter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _now(self, ts: float | None) -> float:
        return self.clock() if ts is None else ts

    def _tick_loop(self, tick_s: float) -> None:
        while not self._abort.wait(tick_s):
            if not self._closed.is_set():
                self.tick()


class AlertLogHandler(logging.Handler):
    """Log records at ``level`` or above as ``error`` alerts, ``where`` being the logger's name
    (``exchange.orders``) and the record's ``error`` field appended. The alerts' own records are
    left out, so a failing channel cannot feed itself."""

    def __init__(self, alerter: Alerter, level: int = logging.ERROR) -> None:
        super().__init__(level)
        self.alerter = alerter

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(f"{LOGGER_NAME}.live.alerts"):
            return
        try:
            message = record.getMessage()
            detail = getattr(record, "error", None)
            if detail:
                message += f": {detail}"
            where = record.name.removeprefix(f"{LOGGER_NAME}.") or record.name
            self.alerter.error(where, message, ts=record.created)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)
