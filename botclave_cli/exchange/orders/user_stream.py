"""Fills in real time: the user-data stream of the account, with REST as the fallback.

A listen key is created through ccxt (spot ``publicPostUserDataStream``, USD-M
``fapiPrivatePostListenKey``, COIN-M ``dapiPrivatePostListenKey``; the API key only), kept alive
every ``keepalive_s`` (30 min: Binance closes a key after 60 without a keepalive) and the stream
``<ws url>/<listen key>`` is read with ``websockets`` (as the recorder reads market streams).
Every message goes to ``OrderManager.on_user_event`` (spot ``executionReport``, futures
``ORDER_TRADE_UPDATE``); ``listenKeyExpired`` gets a new key. After every (re)connect, and while
the stream is down, the manager polls its open orders over REST (``poll``), so what was missed
is caught up; a trade is journaled once whichever path sees it first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from botclave_cli.exchange.orders.manager import OrderManager
from botclave_cli.logs import get_logger

log = get_logger(__name__)

USER_WS = {"spot": "wss://stream.binance.com:9443/ws", "usdm": "wss://fstream.binance.com/ws",
           "coinm": "wss://dstream.binance.com/ws"}
USER_WS_TESTNET = {"spot": "wss://stream.testnet.binance.vision/ws",
                   "usdm": "wss://stream.binancefuture.com/ws",
                   "coinm": "wss://dstream.binancefuture.com/ws"}
#: market -> ccxt implicit methods (create, keepalive) of the listen key
KEY_CALLS = {"spot": ("publicPostUserDataStream", "publicPutUserDataStream"),
             "usdm": ("fapiPrivatePostListenKey", "fapiPrivatePutListenKey"),
             "coinm": ("dapiPrivatePostListenKey", "dapiPrivatePutListenKey")}


@dataclass
class StreamStats:
    connects: int = 0
    events: int = 0
    keepalives: int = 0
    polls: int = 0
    last_event_ms: int | None = None
    connected: bool = False


class UserStream:
    """Feeds one manager from its account's user-data stream (module docstring)."""

    def __init__(self, manager: OrderManager, *, ws_url: str | None = None,
                 keepalive_s: float = 1800.0, poll_s: float = 5.0,
                 max_backoff_s: float = 30.0) -> None:
        conn = manager.connector
        market = conn.market_type
        self.manager = manager
        self.ws_url = ws_url or (USER_WS_TESTNET if conn.sandbox else USER_WS)[market]
        self.keepalive_s = keepalive_s
        self.poll_s = poll_s
        self.max_backoff_s = max_backoff_s
        self.create_call, self.keepalive_call = KEY_CALLS[market]
        self.stats = StreamStats()
        self._stop = asyncio.Event()
        self._key: str | None = None

    def stop(self) -> None:
        self._stop.set()

    # listen key ------------------------------------------------------------------------------
    def _new_key(self) -> str:
        ex = self.manager.exchange
        answer = self.manager.connector.call("create listen key", getattr(ex, self.create_call))
        return str(answer["listenKey"])

    def _keepalive(self, key: str) -> None:
        ex = self.manager.exchange
        self.manager.connector.call("keep the listen key alive",
                                    getattr(ex, self.keepalive_call), {"listenKey": key})
        self.stats.keepalives += 1

    # the loop --------------------------------------------------------------------------------
    async def run(self) -> StreamStats:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake

        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._key = await asyncio.to_thread(self._new_key)
                async with connect(f"{self.ws_url}/{self._key}", open_timeout=10) as ws:
                    self.stats.connects += 1
                    self.stats.connected = True
                    await self._poll()  # whatever happened while we were not listening
                    backoff = 0.5
                    await self._listen(ws)
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                log.info("user stream disconnected", extra={"error": str(exc)[:200]})
            finally:
                self.stats.connected = False
            if self._stop.is_set():
                break
            await self._poll()  # down: REST keeps the journal current
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff)
            backoff = min(backoff * 2, self.max_backoff_s)
        return self.stats

    async def _listen(self, ws: Any) -> None:
        next_keepalive = time.monotonic() + self.keepalive_s
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_keepalive and self._key is not None:
                await asyncio.to_thread(self._keepalive, self._key)
                next_keepalive = now + self.keepalive_s
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=min(
                    0.25, max(next_keepalive - now, 0.001)))
            except TimeoutError:
                continue
            event = json.loads(raw)
            if event.get("e") == "listenKeyExpired":
                return  # the caller makes a new key and reconnects
            self.stats.events += 1
            self.stats.last_event_ms = int(time.time() * 1000)
            await asyncio.to_thread(self.manager.on_user_event, event)

    async def _poll(self) -> None:
        await asyncio.to_thread(self.manager.poll)
        self.stats.polls += 1
