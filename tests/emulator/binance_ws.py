"""A local Binance WebSocket emulator: replays a shared capture as combined streams on 127.0.0.1.

One port serves both:
- WebSocket ``/stream?streams=<sym>@trade/<sym>@depth@100ms/<sym>@bookTicker``: the capture's
  envelope messages in capture order (only the requested stream kinds), from a cursor shared by
  all connections: messages "sent" while nobody is connected are lost, as on the exchange;
- REST ``/api/v3/depth`` (spot) and ``/fapi/v1/depth`` (futures): a snapshot consistent with the
  stream: before the capture's own snapshot line, that snapshot; afterwards the true book after
  every diff already streamed (kept here with plain dicts, independent of botclave's kernel),
  with ``lastUpdateId`` = the last streamed diff's ``u``.

Faults: ``disconnect_after`` (close the connection after sending message number n of the stream,
counted over the whole capture), ``drop`` (stream message numbers never sent: a sequence gap
for the client; the REST book still includes them), ``pause_s`` between messages.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


def _read_lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode().splitlines()


@dataclass
class BinanceWsEmulator:
    capture: Path
    disconnect_after: set[int] = field(default_factory=set)
    drop: set[int] = field(default_factory=set)
    pause_s: float = 0.0
    #: stream messages that pass while a client reconnects (lost to it) after each disconnect
    lost_on_disconnect: int = 0
    #: cap on stream messages served overall (None: the whole capture)
    limit: int | None = None

    def __post_init__(self) -> None:
        self.messages: list[tuple[str, dict]] = []  # (stream kind, envelope)
        self.rest_snapshot: dict | None = None
        self.snapshot_after = 0  # number of stream messages before the capture's snapshot
        for line in _read_lines(Path(self.capture)):
            body = json.loads(line.split(" ", 1)[1])
            if "stream" not in body:
                self.rest_snapshot = body
                self.snapshot_after = len(self.messages)
                continue
            stream = body["stream"].split("@", 1)[1]
            kind = ("depth" if stream.startswith("depth") else
                    "trade" if stream == "trade" else "bookTicker" if stream == "bookTicker"
                    else stream)
            self.messages.append((kind, body))
        if self.limit is not None:
            self.messages = self.messages[: self.limit]
        self.futures = any("pu" in m["data"] for k, m in self.messages if k == "depth")
        self.cursor = 0
        self.sent = 0
        self.connections = 0
        self.served: list[int] = []  # stream messages sent on each connection, in order
        self.rest_calls = 0
        self._book: dict[str, dict[str, str]] | None = None
        self._last_u: int | None = None
        self._server = None
        self.port = 0

    # the true book, advanced as the stream goes -------------------------------------------------
    def _advance_book(self, index: int) -> None:
        if index == self.snapshot_after and self.rest_snapshot is not None and self._book is None:
            snap = self.rest_snapshot
            self._book = {"b": dict(snap["bids"]), "a": dict(snap["asks"])}
            self._last_u = snap["lastUpdateId"]
        kind, msg = self.messages[index]
        if kind != "depth" or self._book is None:
            return
        d = msg["data"]
        covered = d["u"] < self._last_u if self.futures else d["u"] <= self._last_u
        if covered:
            return
        for side in ("b", "a"):
            for p, q in d[side]:
                if float(q) == 0:
                    self._book[side].pop(p, None)
                else:
                    self._book[side][p] = q
        self._last_u = d["u"]

    def snapshot(self, limit: int) -> dict:
        self.rest_calls += 1
        if self._book is None:
            return self.rest_snapshot or {"lastUpdateId": 0, "bids": [], "asks": []}
        bids = sorted(self._book["b"].items(), key=lambda kv: -float(kv[0]))[:limit]
        asks = sorted(self._book["a"].items(), key=lambda kv: float(kv[0]))[:limit]
        out: dict = {"lastUpdateId": self._last_u}
        if self.futures:
            out.update(E=0, T=0)
        out.update(bids=[list(b) for b in bids], asks=[list(a) for a in asks])
        return out

    # serving -------------------------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request):
        parts = urlsplit(request.path)
        if parts.path in ("/api/v3/depth", "/fapi/v1/depth", "/dapi/v1/depth"):
            query = parse_qs(parts.query)
            limit = int(query.get("limit", ["1000"])[0])
            response = connection.respond(200, json.dumps(self.snapshot(limit)))
            response.headers["Content-Type"] = "application/json"
            return response
        if parts.path != "/stream":
            return connection.respond(404, '{"code": -1, "msg": "not found"}')
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.served.append(0)
        connection = len(self.served) - 1
        query = parse_qs(urlsplit(ws.request.path).query)
        wanted = set()
        for s in query.get("streams", [""])[0].split("/"):
            kind = s.split("@", 1)[1] if "@" in s else ""
            wanted.add("depth" if kind.startswith("depth") else kind)
        try:
            while self.cursor < len(self.messages):
                index = self.cursor
                self.cursor += 1
                self._advance_book(index)
                kind, msg = self.messages[index]
                if kind in wanted and index not in self.drop:
                    await ws.send(json.dumps(msg, separators=(",", ":")))
                    self.sent += 1
                    self.served[connection] += 1
                if index in self.disconnect_after:
                    for _ in range(min(self.lost_on_disconnect, len(self.messages) - self.cursor)):
                        self._advance_book(self.cursor)
                        self.cursor += 1
                    await ws.close()
                    return
                if self.pause_s:
                    await asyncio.sleep(self.pause_s)
                elif index % 50 == 0:
                    await asyncio.sleep(0)
            await ws.wait_closed()
        except ConnectionClosed:
            return

    async def start(self) -> BinanceWsEmulator:
        self._server = await serve(self._handler, "127.0.0.1", 0,
                                   process_request=self._process_request)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def finished(self) -> bool:
        return self.cursor >= len(self.messages)
