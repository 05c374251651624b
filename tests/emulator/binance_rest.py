"""A local Binance REST API emulator for tests: the real paths, parameters, limits and error bodies
that ccxt calls, on 127.0.0.1, with seeded fault injection.

Spot ``/api/v3``, USD-M ``/fapi/v1`` and COIN-M ``/dapi/v1``: ping, time, exchangeInfo, aggTrades,
historicalTrades, klines, depth, fundingRate (futures) and the signed myTrades / userTrades.
Rules follow Binance's documentation (see ../shared/REFERENCE.md): limits (default 500, max 1000),
``fromId`` / ``startTime`` / ``endTime`` inclusive, the futures aggTrades window under one hour
(error -1127), depth limits and weights, ``X-MBX-USED-WEIGHT-1M`` headers, JSON error bodies such
as ``{"code": -1121, "msg": "Invalid symbol."}``. A request made while a 429's ``Retry-After`` is
still running earns a 418 ban, as on Binance: a client that does not honour Retry-After is caught.

Data: aggregate trades per market (a frame with Binance's aggTrade fields a, p, q, f, l, T, m);
raw trades, klines, funding and the account's own trades are derived from them. Responses are
pre-rendered JSON rows, so the emulator serves pages fast enough for a benchmark.

Run standalone: ``python -m tests.emulator.binance_rest --port 0 --data FILE`` prints
``listening on http://127.0.0.1:<port>`` and serves until killed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import hmac
import json
import random
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import polars as pl

PREFIX_MARKET = {"/api/v3": "spot", "/fapi/v1": "usdm", "/dapi/v1": "coinm"}
INTERVAL_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
               "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "1d": 86_400_000}
FUNDING_MS = 8 * 3_600_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
FAULT_KINDS = ("429", "418", "500", "502", "503", "truncated", "slow", "reset")


class FakeClock:
    """Shared by the connector and the emulator in tests: sleeping advances time at once."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self.now

    def monotonic(self) -> float:
        return self.time()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(0.0, seconds)


class _RealClock:
    def time(self) -> float:
        return time.time()


# data --------------------------------------------------------------------------------------------
def synthetic_agg_trades(n: int, start_ms: int, seed: int = 7, first_id: int = 1_000,
                         price: float = 60_000.0, tick: float = 0.01, lot: float = 0.00001,
                         mean_gap_ms: float = 40.0,
                         missing_ids: tuple[int, ...] = ()) -> pl.DataFrame:
    """Deterministic aggTrades: ids from ``first_id``, times in ms, prices on the tick grid."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(mean_gap_ms, n).astype(np.int64)
    ts = start_ms + np.cumsum(gaps)
    ticks = np.round(price / tick) + np.cumsum(rng.integers(-3, 4, n))
    lots = rng.integers(1, 5000, n)
    fills = rng.integers(1, 4, n)
    last = np.cumsum(fills) + 10 * first_id
    df = pl.DataFrame({
        "a": np.arange(first_id, first_id + n, dtype=np.int64),
        "p": ticks * tick, "q": lots * lot,
        "f": last - fills + 1, "l": last, "T": ts, "m": rng.random(n) < 0.5,
    })
    if missing_ids:
        df = df.filter(~pl.col("a").is_in(list(missing_ids)))
    decimals = max(0, -int(np.floor(np.log10(tick))))
    return df.with_columns(
        pl.col("p").round(decimals).cast(pl.String), pl.col("q").round(8).cast(pl.String),
        M=pl.lit(True),
    )


def agg_trades_from_ccxt_json(path: Path) -> pl.DataFrame:
    """The raw aggTrades (``info``) of a ccxt ``fetch_trades`` dump (freqtrade's test data)."""
    with gzip.open(path, "rt") if str(path).endswith(".gz") else open(path) as fh:
        trades = json.load(fh)
    return pl.DataFrame([t["info"] for t in trades]).with_columns(
        pl.col("a", "f", "l", "T").cast(pl.Int64), pl.col("p", "q").cast(pl.String),
        pl.col("m", "M").cast(pl.Boolean))


def agg_trades_from_store_trades(trades: pl.DataFrame) -> pl.DataFrame:
    """A store ``trades`` frame (e.g. ``botclave synth``'s tape) as aggTrades of one trade each:
    ``a = f = l = trade_id``, ``T`` = ``ts`` in ms (Binance's REST resolution)."""
    return trades.sort("trade_id").select(
        pl.col("trade_id").alias("a"), pl.col("price").cast(pl.String).alias("p"),
        pl.col("qty").cast(pl.String).alias("q"), pl.col("trade_id").alias("f"),
        pl.col("trade_id").alias("l"), (pl.col("ts").dt.epoch("us") // 1000).alias("T"),
        (pl.col("side") == "sell").alias("m"), pl.lit(True).alias("M"))


@dataclass
class EmuMarket:
    """One instrument: Binance id, market type, grid, and its aggregate trades."""

    symbol: str  # Binance id, e.g. BTCUSDT, BTCUSD_PERP
    market: str  # spot | usdm | coinm
    base: str
    quote: str
    tick: str
    lot: str
    agg: pl.DataFrame
    contract_size: int = 100
    missing_klines: tuple[int, ...] = ()  # open times (ms) the exchange has no candle for
    own_every: int = 97  # the account's own fills: every n-th aggregate trade
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def prepared(self) -> None:
        if "agg" in self._cache:
            return
        agg = self.agg.sort("a")
        if self.market == "spot":
            m_field = pl.concat_str(pl.lit(',"m":'), _bool(pl.col("m")), pl.lit(',"M":true}'))
        else:
            m_field = pl.concat_str(pl.lit(',"m":'), _bool(pl.col("m")), pl.lit("}"))
        rows = agg.select(pl.concat_str(
            pl.lit('{"a":'), pl.col("a").cast(pl.String), pl.lit(',"p":"'), pl.col("p"),
            pl.lit('","q":"'), pl.col("q"), pl.lit('","f":'), pl.col("f").cast(pl.String),
            pl.lit(',"l":'), pl.col("l").cast(pl.String), pl.lit(',"T":'),
            pl.col("T").cast(pl.String), m_field))
        self._cache["agg"] = (agg["a"].to_numpy(), agg["T"].to_numpy(), rows.to_series().to_list())
        raw = (agg.with_columns(n=pl.col("l") - pl.col("f") + 1,
                                id=pl.int_ranges("f", pl.col("l") + 1))
               .explode("id")
               .with_columns(qty=(pl.col("q").cast(pl.Float64) / pl.col("n")).round(8),
                             price=pl.col("p")))
        raw_rows = raw.select(pl.concat_str(
            pl.lit('{"id":'), pl.col("id").cast(pl.String), pl.lit(',"price":"'), pl.col("price"),
            pl.lit('","qty":"'), pl.col("qty").cast(pl.String), pl.lit('","quoteQty":"'),
            (pl.col("qty") * pl.col("price").cast(pl.Float64)).round(8).cast(pl.String),
            pl.lit('","time":'), pl.col("T").cast(pl.String), pl.lit(',"isBuyerMaker":'),
            _bool(pl.col("m")), pl.lit(',"isBestMatch":true}' if self.market == "spot" else "}")))
        self._cache["raw"] = (raw["id"].to_numpy(), raw_rows.to_series().to_list())
        self._cache["agg_frame"] = agg

    def klines(self, interval: str) -> tuple[np.ndarray, list[str]]:
        key = f"kl{interval}"
        if key not in self._cache:
            self._cache[key] = _klines(self._cache["agg_frame"], INTERVAL_MS[interval],
                                       self.missing_klines)
        return self._cache[key]

    def funding(self) -> tuple[np.ndarray, list[str]]:
        if "funding" not in self._cache:
            t = self._cache["agg"][1]
            first = (int(t[0]) // FUNDING_MS + 1) * FUNDING_MS
            times = np.arange(first, int(t[-1]) + 1, FUNDING_MS, dtype=np.int64)
            rows = [
                f'{{"symbol":"{self.symbol}","fundingTime":{ft},'
                f'"fundingRate":"{((i * 37) % 23 - 7) * 1e-5:.8f}","markPrice":"{60000 + i:.8f}"}}'
                for i, ft in enumerate(times.tolist())
            ]
            self._cache["funding"] = (times, rows)
        return self._cache["funding"]

    def my_trades(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """The account's own fills: every ``own_every``-th aggregate trade (ids 1, 2, ...)."""
        if "mine" not in self._cache:
            agg = self._cache["agg_frame"].gather_every(self.own_every)
            rows = []
            for i, (p, q, t, m) in enumerate(agg.select("p", "q", "T", "m").iter_rows(), start=1):
                rows.append(
                    f'{{"symbol":"{self.symbol}","id":{i},"orderId":{1000 + i},"orderListId":-1,'
                    f'"price":"{p}","qty":"{q}","quoteQty":"{float(p) * float(q):.8f}",'
                    f'"commission":"0.00000100","commissionAsset":"{self.base}","time":{t},'
                    f'"isBuyer":{str(not m).lower()},"isMaker":{str(i % 2 == 0).lower()},'
                    f'"isBestMatch":true}}')
            self._cache["mine"] = (np.arange(1, len(rows) + 1), agg["T"].to_numpy(), rows)
        return self._cache["mine"]


def _bool(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr).then(pl.lit("true")).otherwise(pl.lit("false"))


def _klines(agg: pl.DataFrame, step: int, missing: tuple[int, ...]) -> tuple[np.ndarray, list[str]]:
    price = pl.col("p").cast(pl.Float64)
    qty = pl.col("q").cast(pl.Float64)
    bars = (agg.with_columns(t=(pl.col("T") // step) * step)
            .group_by("t", maintain_order=True)
            .agg(o=price.first(), h=price.max(), lo=price.min(), c=price.last(), v=qty.sum(),
                 qv=(price * qty).sum(), n=(pl.col("l") - pl.col("f") + 1).sum(),
                 tb=qty.filter(~pl.col("m")).sum(), tq=(price * qty).filter(~pl.col("m")).sum()))
    grid = pl.DataFrame({"t": pl.int_range(bars["t"].min(), bars["t"].max() + 1, step,
                                           eager=True)})
    full = grid.join(bars, on="t", how="left").with_columns(pl.col("c").forward_fill())
    full = full.with_columns(
        pl.col("o", "h", "lo").fill_null(pl.col("c")),
        pl.col("v", "qv", "tb", "tq").fill_null(0.0), pl.col("n").fill_null(0))
    if missing:
        full = full.filter(~pl.col("t").is_in(list(missing)))

    def num(col: str) -> pl.Expr:
        return pl.col(col).round(8).cast(pl.String)

    rows = full.select(pl.concat_str(
        pl.lit("["), pl.col("t").cast(pl.String), pl.lit(',"'), num("o"), pl.lit('","'), num("h"),
        pl.lit('","'), num("lo"), pl.lit('","'), num("c"), pl.lit('","'), num("v"), pl.lit('",'),
        (pl.col("t") + step - 1).cast(pl.String), pl.lit(',"'), num("qv"), pl.lit('",'),
        pl.col("n").cast(pl.String), pl.lit(',"'), num("tb"), pl.lit('","'), num("tq"),
        pl.lit('","0"]')))
    return full["t"].to_numpy(), rows.to_series().to_list()


# errors and faults -----------------------------------------------------------------------------
class ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def bad_param(name: str) -> ApiError:
    return ApiError(400, -1102,
                    f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


@dataclass
class FaultPlan:
    """Which requests fail, and how. ``script`` maps a request number (1-based) to a fault kind;
    otherwise each request fails with probability ``rate`` (seeded) with one of ``kinds``."""

    rate: float = 0.0
    seed: int = 1
    kinds: tuple[str, ...] = FAULT_KINDS
    script: dict[int, str] = field(default_factory=dict)
    retry_after_s: int = 2
    ban_s: int = 120
    slow_s: float = 0.6
    #: only requests whose path ends with one of these fail (None: every path)
    paths: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def pick(self, number: int, path: str) -> str | None:
        if self.paths is not None and not path.endswith(self.paths):
            return None
        if number in self.script:
            return self.script[number]
        if self.rate and self._rng.random() < self.rate:
            return self._rng.choice(self.kinds)
        return None


# the server ------------------------------------------------------------------------------------
class BinanceEmulator:
    """The emulator; ``with BinanceEmulator(markets) as emu: emu.base_url`` (port 0: any free)."""

    def __init__(self, markets: list[EmuMarket], *, faults: FaultPlan | None = None,
                 clock: Any = None, port: int = 0, api_key: str | None = None,
                 secret: str | None = None, weight_limit: int | None = None,
                 delay_s: float = 0.0) -> None:
        self.delay_s = delay_s  # real latency added to every response (kill-mid-run tests)
        self.markets = {(m.market, m.symbol): m for m in markets}
        for m in markets:
            m.prepared()
        self.faults = faults or FaultPlan()
        self.clock = clock or _RealClock()
        self.api_key, self.secret = api_key, secret
        self.weight_limit = weight_limit
        self.log: list[tuple[str, dict[str, str], int]] = []
        self._lock = threading.Lock()
        self._count = 0
        self._weight: dict[int, int] = {}
        self._backoff_until = 0.0
        self._banned_until = 0.0
        handler = type("Handler", (_Handler,), {"emu": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api_urls(self) -> dict[str, str]:
        """``ExchangeConfig.api_urls`` pointing every ccxt Binance API at this emulator."""
        return {"all": self.base_url}

    def start(self) -> BinanceEmulator:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> BinanceEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def statuses(self, path_suffix: str = "") -> list[int]:
        return [s for p, _, s in self.log if p.endswith(path_suffix)]

    # request handling ------------------------------------------------------------------------
    def admit(self, path: str) -> tuple[str | None, int]:
        """Fault to inject (if any) and the request number."""
        with self._lock:
            self._count += 1
            return self.faults.pick(self._count, path), self._count

    def gate(self, weight: int) -> tuple[int, dict[str, str]]:
        """Account weight; 429 when over the limit, 418 when a Retry-After was not honoured."""
        now = self.clock.time()
        with self._lock:
            minute = int(now // 60)
            used = self._weight.get(minute, 0) + weight
            self._weight = {minute: used}
            headers = {"X-MBX-USED-WEIGHT-1M": str(used), "x-mbx-used-weight": str(used)}
            if now < self._banned_until:
                raise _Limit(418, int(self._banned_until - now) + 1, headers, banned=True)
            if now < self._backoff_until:
                self._banned_until = now + self.faults.ban_s
                raise _Limit(418, self.faults.ban_s, headers, banned=True)
            if self.weight_limit is not None and used > self.weight_limit:
                retry = int(60 - now % 60) + 1
                self._backoff_until = now + retry
                raise _Limit(429, retry, headers)
            return used, headers

    def note_retry_after(self, seconds: int) -> None:
        with self._lock:
            self._backoff_until = self.clock.time() + seconds

    def server_ms(self) -> int:
        return int(self.clock.time() * 1000)


class _Limit(Exception):
    def __init__(self, status: int, retry_after: int, headers: dict[str, str],
                 banned: bool = False) -> None:
        super().__init__(status)
        self.status, self.retry_after, self.headers, self.banned = (status, retry_after, headers,
                                                                    banned)


class _Handler(BaseHTTPRequestHandler):
    emu: BinanceEmulator
    _request: tuple[str, dict[str, str]]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None

    def setup(self) -> None:
        """No Nagle: headers and body leave as separate writes; with Nagle and the client's
        delayed ACK every keep-alive answer would wait ~40 ms."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        self._request = (url.path, params)
        self._serve(url.path, url.query, params)

    def _record(self, status: int) -> None:
        """Log the request BEFORE its response leaves: a client that has its answer must find
        its request in the log (appending afterwards raced with the test's read)."""
        path, params = self._request
        self.emu.log.append((path, params, status))

    def _serve(self, path: str, query: str, params: dict[str, str]) -> int:
        emu = self.emu
        fault, _ = emu.admit(path)
        if fault == "reset":
            self._record(0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return 0
        if fault == "slow":
            time.sleep(emu.faults.slow_s)
        if emu.delay_s:
            time.sleep(emu.delay_s)
        try:
            prefix, endpoint = _split(path)
            weight = _weight(prefix, endpoint, params)
            _, headers = emu.gate(weight)
            if fault in ("429", "418"):
                seconds = emu.faults.retry_after_s if fault == "429" else emu.faults.ban_s
                if fault == "429":
                    emu.note_retry_after(seconds)
                raise _Limit(int(fault), seconds, headers, banned=fault == "418")
            if fault in ("500", "502", "503"):
                return self._send(int(fault), "<html><body>Service Unavailable</body></html>",
                                  headers, content_type="text/html")
            body = _route(emu, prefix, endpoint, params, query, self.headers)
        except _Limit as exc:
            if exc.banned:
                until = emu.server_ms() + exc.retry_after * 1000
                msg = (f"Way too much request weight used; IP banned until {until}. Please use "
                       "WebSocket Streams for live updates to avoid bans.")
            else:
                msg = ("Too much request weight used; current limit is "
                       f"{emu.weight_limit or 6000} request weight per 1 MINUTE. Please use "
                       "WebSocket Streams for live updates to avoid polling the API.")
            return self._send(exc.status, json.dumps({"code": -1003, "msg": msg}),
                              {**exc.headers, "Retry-After": str(exc.retry_after)})
        except ApiError as exc:
            return self._send(exc.status, json.dumps({"code": exc.code, "msg": exc.msg}), {})
        except _NotFound:
            return self._send(404, "<html><body><h1>404 Not Found</h1></body></html>", {},
                              content_type="text/html")
        if fault == "truncated":
            body = body[: max(1, len(body) // 2)]
        return self._send(200, body, headers)

    def _send(self, status: int, body: str, headers: dict[str, str],
              content_type: str = "application/json;charset=UTF-8") -> int:
        data = body.encode()
        self._record(status)
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        return status


class _NotFound(Exception):
    pass


def _split(path: str) -> tuple[str, str]:
    for prefix in PREFIX_MARKET:
        if path.startswith(prefix + "/"):
            return prefix, path[len(prefix) + 1:]
    raise _NotFound(path)


def _weight(prefix: str, endpoint: str, params: dict[str, str]) -> int:
    spot = prefix == "/api/v3"
    if endpoint == "depth":
        limit = int(params.get("limit") or (100 if spot else 500))
        table = ((100, 5), (500, 25), (1000, 50), (5000, 250)) if spot else \
            ((50, 2), (100, 5), (500, 10), (1000, 20))
        return next((w for top, w in table if limit <= top), table[-1][1])
    return {"aggTrades": 4 if spot else 20, "historicalTrades": 25 if spot else 20,
            "klines": 2 if spot else 5, "exchangeInfo": 20 if spot else 1,
            "myTrades": 20, "userTrades": 5}.get(endpoint, 1)


def _int(params: dict[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range "
                       "is '^[0-9]{1,20}$'.") from None


def _limit(params: dict[str, str], default: int, maximum: int) -> int:
    limit = _int(params, "limit")
    if limit is None:
        return default
    if limit <= 0:
        raise ApiError(400, -1130, "Data sent for parameter 'limit' is not valid.")
    return min(limit, maximum)


def _market(emu: BinanceEmulator, prefix: str, params: dict[str, str]) -> EmuMarket:
    symbol = params.get("symbol")
    if not symbol:
        raise bad_param("symbol")
    market = emu.markets.get((PREFIX_MARKET[prefix], symbol))
    if market is None:
        raise ApiError(400, -1121, "Invalid symbol.")
    return market


def _page(rows: list[str], lo: int, hi: int) -> str:
    return "[" + ",".join(rows[lo:hi]) + "]"


def _route(emu: BinanceEmulator, prefix: str, endpoint: str, params: dict[str, str], query: str,
           headers: Any) -> str:
    spot = prefix == "/api/v3"
    if endpoint == "ping":
        return "{}"
    if endpoint == "time":
        return json.dumps({"serverTime": emu.server_ms()})
    if endpoint == "exchangeInfo":
        return json.dumps(_exchange_info(emu, prefix))
    if endpoint == "aggTrades":
        m = _market(emu, prefix, params)
        ids, times, rows = m._cache["agg"]
        limit = _limit(params, 500, 1000)
        start, end, from_id = (_int(params, "startTime"), _int(params, "endTime"),
                               _int(params, "fromId"))
        if start is not None and end is not None:
            if end < start:
                raise ApiError(400, -1128, "Combination of optional parameters invalid.")
            if not spot and end - start >= HOUR_MS:
                raise ApiError(400, -1127, "More than 1 hours between startTime and endTime.")
        lo, hi = 0, len(rows)
        if from_id is not None:
            lo = int(np.searchsorted(ids, from_id, "left"))
        if start is not None:
            lo = max(lo, int(np.searchsorted(times, start, "left")))
        if end is not None:
            hi = int(np.searchsorted(times, end, "right"))
        if from_id is None and (start is None or end is not None):
            # the most recent trades up to endTime; with a whole window Binance's limit also
            # counts from the end (binance-spot-api-docs issue #10): the LAST trades of it
            lo = max(lo, hi - limit)
        return _page(rows, lo, min(hi, lo + limit))
    if endpoint == "historicalTrades":
        if not headers.get("X-MBX-APIKEY"):  # MARKET_DATA security: key, no signature
            raise ApiError(401, -2014, "API-key format invalid.")
        m = _market(emu, prefix, params)
        ids, rows = m._cache["raw"]
        limit = _limit(params, 500, 1000 if spot else 500)
        from_id = _int(params, "fromId")
        lo = int(np.searchsorted(ids, from_id, "left")) if from_id is not None else \
            max(0, len(rows) - limit)
        return _page(rows, lo, lo + limit)
    if endpoint == "klines":
        m = _market(emu, prefix, params)
        interval = params.get("interval")
        if not interval:
            raise bad_param("interval")
        if interval not in INTERVAL_MS:
            raise ApiError(400, -1120, "Invalid interval.")
        opens, rows = m.klines(interval)
        return _window(rows, opens, params, _limit(params, 500, 1000 if spot else 1500))
    if endpoint == "depth":
        m = _market(emu, prefix, params)
        return _depth(emu, m, params, spot)
    if endpoint == "fundingRate" and not spot:
        m = _market(emu, prefix, params)
        times, rows = m.funding()
        return _window(rows, times, params, _limit(params, 100, 1000))
    if endpoint in ("myTrades", "userTrades") and (endpoint == "myTrades") == spot:
        _check_signed(emu, params, query, headers)
        m = _market(emu, prefix, params)
        start, end = _int(params, "startTime"), _int(params, "endTime")
        if start is not None and end is not None and end - start > DAY_MS:
            raise ApiError(400, -1127, "More than 24 hours between startTime and endTime.")
        ids, times, rows = m.my_trades()
        from_id = _int(params, "fromId")
        if from_id is not None:
            lo = int(np.searchsorted(ids, from_id, "left"))
            return _page(rows, lo, lo + _limit(params, 500, 1000))
        return _window(rows, times, params, _limit(params, 500, 1000))
    raise _NotFound(endpoint)


def _window(rows: list[str], times: np.ndarray, params: dict[str, str], limit: int) -> str:
    """startTime/endTime inclusive: the first ``limit`` from startTime, else the last ``limit``."""
    start, end = _int(params, "startTime"), _int(params, "endTime")
    lo = int(np.searchsorted(times, start, "left")) if start is not None else 0
    hi = int(np.searchsorted(times, end, "right")) if end is not None else len(rows)
    if start is None:
        lo = max(lo, hi - limit)
    return _page(rows, lo, min(hi, lo + limit))


def _check_signed(emu: BinanceEmulator, params: dict[str, str], query: str, headers: Any) -> None:
    key = headers.get("X-MBX-APIKEY")
    if not key:
        raise ApiError(401, -2014, "API-key format invalid.")
    if emu.api_key is not None and key != emu.api_key:
        raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
    for name in ("timestamp", "signature"):
        if not params.get(name):
            raise bad_param(name)
    if emu.secret is not None:
        payload = query.rsplit("&signature=", 1)[0]
        expected = hmac.new(emu.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params["signature"]):
            raise ApiError(400, -1022, "Signature for this request is not valid.")


def _depth(emu: BinanceEmulator, m: EmuMarket, params: dict[str, str], spot: bool) -> str:
    limit = _int(params, "limit")
    if spot:
        limit = min(limit if limit is not None else 100, 5000)
        if limit <= 0:
            raise ApiError(400, -1130, "Data sent for parameter 'limit' is not valid.")
    else:
        limit = 500 if limit is None else limit
        if limit not in (5, 10, 20, 50, 100, 500, 1000):
            raise ApiError(400, -1130, "Data sent for parameter 'limit' is not valid.")
    with emu._lock:
        emu._count_depth = getattr(emu, "_count_depth", 0) + 1
        n = emu._count_depth
    tick = float(m.tick)
    last = float(m._cache["agg_frame"]["p"][-1])
    best_bid = np.floor(last / tick) * tick
    levels = np.arange(limit)
    qty = ((levels * 7919 + n * 104729) % 997 + 1) * float(m.lot)
    bids = [[f"{best_bid - i * tick:.8f}", f"{q:.8f}"] for i, q in zip(levels, qty, strict=True)]
    asks = [[f"{best_bid + (i + 1) * tick:.8f}", f"{q:.8f}"]
            for i, q in zip(levels, qty[::-1], strict=True)]
    book: dict[str, Any] = {"lastUpdateId": 1_000_000 + 17 * n}
    if not spot:
        now = emu.server_ms()
        book.update(E=now, T=now - 3)
    book.update(bids=bids, asks=asks)
    return json.dumps(book)


def _exchange_info(emu: BinanceEmulator, prefix: str) -> dict[str, Any]:
    market = PREFIX_MARKET[prefix]
    symbols = []
    for (kind, _), m in sorted(emu.markets.items()):
        if kind != market:
            continue
        filters = [
            {"filterType": "PRICE_FILTER", "minPrice": m.tick, "maxPrice": "1000000.00000000",
             "tickSize": m.tick},
            {"filterType": "LOT_SIZE", "minQty": m.lot, "maxQty": "9000.00000000",
             "stepSize": m.lot},
        ]
        entry: dict[str, Any] = {"symbol": m.symbol, "status": "TRADING", "baseAsset": m.base,
                                 "quoteAsset": m.quote, "baseAssetPrecision": 8,
                                 "quotePrecision": 8, "filters": filters}
        if market == "spot":
            entry.update(quoteAssetPrecision=8, orderTypes=[
                "LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
                "TAKE_PROFIT_LIMIT"], ocoAllowed=True,
                         isSpotTradingAllowed=True, isMarginTradingAllowed=False,
                         permissions=["SPOT"])
        else:
            entry.update(pair=m.symbol.split("_")[0], contractType="PERPETUAL",
                         deliveryDate=4133404800000, onboardDate=1569398400000,
                         marginAsset=m.quote if market == "usdm" else m.base,
                         pricePrecision=2, quantityPrecision=3, underlyingType="COIN",
                         orderTypes=["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                                     "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
                         timeInForce=["GTC", "IOC", "FOK", "GTX", "GTD"])
            if market == "coinm":
                entry.update(contractSize=m.contract_size, contractStatus="TRADING")
                entry.pop("status")
        symbols.append(entry)
    return {"timezone": "UTC", "serverTime": emu.server_ms(),
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                            "intervalNum": 1, "limit": emu.weight_limit or 6000}],
            "exchangeFilters": [], "symbols": symbols}


# standalone ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data", type=Path, help="ccxt trades JSON(.gz) or aggTrades parquet; "
                        "default: synthetic BTCUSDT")
    parser.add_argument("--symbol", default=None, help="Binance id of the --data market")
    parser.add_argument("--market", default="spot", choices=sorted(PREFIX_MARKET.values()))
    parser.add_argument("--synthetic-rows", type=int, default=100_000)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added per response")
    args = parser.parse_args(argv)
    if args.data is None:
        agg = synthetic_agg_trades(args.synthetic_rows, 1_723_075_200_000, seed=args.seed)
        market = EmuMarket(args.symbol or "BTCUSDT", args.market, "BTC", "USDT", "0.01",
                           "0.00001", agg)
    elif args.data.suffix == ".parquet":
        market = EmuMarket(args.symbol or "BTCUSDT", args.market, "BTC", "USDT", "0.01",
                           "0.00001", pl.read_parquet(args.data))
    else:
        market = EmuMarket(args.symbol or "XRPETH", args.market, "XRP", "ETH", "0.00000001",
                           "1.00000000", agg_trades_from_ccxt_json(args.data))
    emu = BinanceEmulator([market], faults=FaultPlan(rate=args.fault_rate, seed=args.seed),
                          port=args.port, delay_s=args.delay)
    print(f"listening on {emu.base_url}", flush=True)
    try:
        emu.server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
