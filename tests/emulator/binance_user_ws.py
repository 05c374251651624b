"""A local Binance user-data stream: ``/ws/<listenKey>`` pushes the account's events.

It serves what a ``BinanceEmulator(trading=True)`` produces: every order event the REST emulator
records for a market (spot ``executionReport``, futures ``ORDER_TRADE_UPDATE``) is sent, as
Binance sends it, to every connection whose listen key the REST emulator issued for that market
(an unknown key is refused at the handshake, as Binance answers 400). Events produced while no
connection listens are lost to the client, as on the exchange; it catches up over REST.

Faults: ``drop()`` closes every connection now (the client reconnects); ``expire(key)`` sends
``listenKeyExpired`` on that key's connections; ``mute`` (a set of event numbers) events never
sent (the client must find them by polling).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


class UserStreamEmulator:
    """Runs its own event loop in a thread; ``with UserStreamEmulator(...) as ws: ws.url``."""

    def __init__(self, market: str, subscribe: Callable[[str, Callable[[dict], None]], None],
                 key_ok: Callable[[str, str], bool]) -> None:
        self.market = market
        self.key_ok = key_ok
        self.mute: set[int] = set()
        self.sent: list[dict] = []
        self.connections = 0
        self._count = 0
        self._clients: dict[ServerConnection, str] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: Any = None
        self.port = 0
        subscribe(market, self._on_event)

    # lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> UserStreamEmulator:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        self._server = await serve(self._handler, "127.0.0.1", 0,
                                   process_request=self._process_request)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    # faults ----------------------------------------------------------------------------------
    def drop(self) -> None:
        """Close every connection now."""
        async def close_all() -> None:
            for ws in list(self._clients):
                await ws.close()
        asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(10)

    def expire(self, key: str) -> None:
        """Send ``listenKeyExpired`` on the connections of ``key``."""
        event = {"e": "listenKeyExpired", "E": 0, "listenKey": key}

        async def send() -> None:
            for ws, k in list(self._clients.items()):
                if k == key:
                    await ws.send(json.dumps(event))
        asyncio.run_coroutine_threadsafe(send(), self._loop).result(10)

    # serving ---------------------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request):
        path = request.path
        if not path.startswith("/ws/"):
            return connection.respond(404, "not found")
        if not self.key_ok(self.market, path[len("/ws/"):]):
            return connection.respond(400, '{"code": -1125, "msg": "This listenKey does not '
                                           'exist."}')
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        self._clients[ws] = ws.request.path[len("/ws/"):]
        try:
            await ws.wait_closed()
        except ConnectionClosed:
            pass
        finally:
            self._clients.pop(ws, None)

    def _on_event(self, event: dict) -> None:
        """Called by the REST emulator (any thread) for every account event."""
        self._count += 1
        if self._count in self.mute:
            return
        text = json.dumps(event, separators=(",", ":"))

        async def push() -> None:
            for ws in list(self._clients):
                try:
                    await ws.send(text)
                except ConnectionClosed:
                    continue
            self.sent.append(event)
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(push(), self._loop).result(10)
