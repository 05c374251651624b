"""The ccxt REST connector: one Binance market type, its markets, and calls that survive faults.

Everything goes through ccxt's own Binance classes (``binance`` for spot, ``binanceusdm`` for
USD-M, ``binancecoinm`` for COIN-M); this module adds what a long unattended fetch needs on top:

- ``ExchangeConfig.api_urls`` replaces entries of ccxt's ``urls['api']`` (a local emulator, a
  proxy). Keys are ccxt's API names (``public``, ``fapiPublic``, ...); the key ``all`` replaces
  the scheme and host of every entry and keeps its path (``/api/v3``, ``/fapi/v1``, ...).
- ccxt's rate limiter stays on (``enableRateLimit``) but sleeps on the injected ``Clock``.
- retries with exponential backoff on network errors, timeouts, truncated JSON, HTTP 5xx (the
  outcome is unknown, Binance says: retry), 429 and 418 (waiting exactly ``Retry-After``).
- errors become botclave errors: unknown symbol -> UsageError (exit 2), rejected credentials ->
  UsageError, still failing after the retries -> ExchangeUnreachable (exit 4). Messages never
  carry a URL's query string, a header or a secret.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import ccxt

from botclave_cli.config import ExchangeConfig, RateLimit
from botclave_cli.errors import BotclaveError, ExchangeUnreachable, UsageError
from botclave_cli.logs import get_logger
from botclave_cli.secrets import mask

log = get_logger(__name__)
T = TypeVar("T")

#: botclave market type -> ccxt class name
EXCHANGE_CLASSES = {"spot": "binance", "usdm": "binanceusdm", "coinm": "binancecoinm"}
#: botclave market type -> ccxt fetchMarkets type (load only the markets we fetch from)
MARKET_TYPES = {"spot": "spot", "usdm": "linear", "coinm": "inverse"}
SUPPORTED_EXCHANGES = ("binance",)


class Clock(Protocol):
    """Time source of the connector; tests inject a fake one so no test waits for real."""

    def time(self) -> float: ...  # wall clock, seconds since epoch (receive times)

    def monotonic(self) -> float: ...  # seconds, for the rate limiter

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again. Backoff (seconds) doubles per attempt: backoff_s * 2**attempt."""

    max_retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    #: a Retry-After longer than this (a long 418 ban) fails at once instead of waiting
    max_retry_after_s: float = 900.0

    @classmethod
    def from_config(cls, rate_limit: RateLimit) -> RetryPolicy:
        return cls(rate_limit.max_retries, rate_limit.backoff_seconds,
                   rate_limit.max_backoff_seconds)

    def backoff(self, attempt: int) -> float:
        return float(min(self.backoff_s * 2**attempt, self.max_backoff_s))


class RetryableHttp(ccxt.NetworkError):
    """HTTP 429/418/5xx, with the server's Retry-After (seconds) when it sent one."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


class TruncatedResponse(ccxt.NetworkError):
    """HTTP 200 whose body is not complete JSON (a connection cut mid-body)."""


@dataclass(frozen=True)
class MarketInfo:
    """What a dataset manifest needs from ccxt's market: the grid and the quantity unit."""

    symbol: str
    id: str
    type: str
    tick_size: float | None
    lot_size: float | None
    contract_size: float | None
    qty_unit: str  # "base" or "contracts"


class OutcomeUnknown(ExchangeUnreachable):
    """A call that must not be re-sent failed in a way that leaves its outcome unknown (a
    timeout, a reset, a 5xx): the caller has to ask the exchange what happened."""


@dataclass
class CallStats:
    requests: int = 0
    retries: int = 0
    #: (reason, seconds) for every wait before a retry
    waits: list[tuple[str, float]] = field(default_factory=list)
    throttled_s: float = 0.0


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def override_urls(urls: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """ccxt ``urls['api']`` with ``overrides`` applied (see the module docstring)."""
    out = dict(urls)
    base = overrides.get("all")
    if base is not None:
        root = base.rstrip("/")
        for name, url in urls.items():
            if isinstance(url, str):
                parts = urlsplit(url)
                out[name] = root + parts.path
    for name, url in overrides.items():
        if name != "all":
            out[name] = url.rstrip("/")
    return out


class Connector:
    """A ccxt Binance exchange for one market type with retries, rate limiting and clean errors."""

    def __init__(
        self,
        config: ExchangeConfig,
        *,
        credentials: tuple[str, str] | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        sandbox: bool | None = None,
    ) -> None:
        """``credentials`` (key, secret) only for calls that need them; ``sandbox`` (default:
        ``config.testnet`` when credentials are given) sends every call to Binance's testnet."""
        if config.exchange not in SUPPORTED_EXCHANGES:
            raise UsageError(f"--exchange {config.exchange!r}: fetch supports "
                             f"{', '.join(SUPPORTED_EXCHANGES)}")
        self.config = config
        self.exchange_id = config.exchange
        self.market_type = config.market
        self.clock: Clock = clock or SystemClock()
        self.retry = retry or RetryPolicy.from_config(config.rate_limit)
        self.stats = CallStats()
        self.private = credentials is not None
        self._last_request = -1e18
        cls = getattr(ccxt, EXCHANGE_CLASSES[config.market])
        options: dict[str, Any] = {
            "fetchMarkets": {"types": [MARKET_TYPES[config.market]]},
            "fetchCurrencies": False,  # sapi, needs keys, and fetch never uses currencies
            "fetchMargins": False,  # sapi margin pairs: same
        }
        params: dict[str, Any] = {
            "enableRateLimit": config.rate_limit.enabled,
            "timeout": config.rate_limit.timeout_ms,
            "options": options,
        }
        if credentials is not None:
            params["apiKey"], params["secret"] = credentials
        self.exchange: ccxt.Exchange = cls(params)
        self.sandbox = sandbox if sandbox is not None else (credentials is not None
                                                             and config.testnet)
        if self.sandbox:
            self.exchange.set_sandbox_mode(True)
        urls = (config.testnet_api_urls or config.api_urls) if self.sandbox else config.api_urls
        #: overridden base URL -> ccxt's own (ccxt picks Binance's per-market error classes by
        #: the URL's host: a proxy or an emulator must be classified as the real endpoint)
        self._real_urls: dict[str, str] = {}
        if urls:
            real = self.exchange.urls["api"]
            self.exchange.urls["api"] = override_urls(real, urls)
            self._real_urls = {new: real[name] for name, new in self.exchange.urls["api"].items()
                               if isinstance(new, str) and new != real.get(name)}
        self._install_hooks()
        self._markets_loaded = False

    # ccxt hooks ------------------------------------------------------------------------------
    def _install_hooks(self) -> None:
        ex = self.exchange
        original = ex.handle_errors

        def handle_errors(code: int, reason: str, url: str, method: str, headers: Any,
                          body: str, response: Any, request_headers: Any,
                          request_body: Any) -> Any:
            if code in (418, 429) or code >= 500:
                raise RetryableHttp(code, _retry_after(headers))
            if code == 200 and response is None:
                raise TruncatedResponse("HTTP 200 with a body that is not complete JSON")
            return original(code, reason, url, method, headers, body, response,
                            request_headers, request_body)

        def throttle(cost: float | None = None) -> None:
            spacing_s = ex.rateLimit * (1 if cost is None else cost) / 1000.0
            wait = spacing_s - (self.clock.monotonic() - self._last_request)
            if wait > 0:
                self.stats.throttled_s += wait
                self.clock.sleep(wait)
            self._last_request = self.clock.monotonic()

        by_url = ex.get_exceptions_by_url

        def get_exceptions_by_url(url: str | None, exact_or_broad: str) -> Any:
            for new, real in self._real_urls.items():
                if url is not None and url.startswith(new + "/"):
                    url = real + url[len(new):]
                    break
            return by_url(url, exact_or_broad)

        ex.handle_errors = handle_errors
        ex.throttle = throttle
        ex.get_exceptions_by_url = get_exceptions_by_url

    # calls -----------------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[..., T], *args: Any, resend: bool = True,
             passthrough: tuple[type[Exception], ...] = (), **kwargs: Any) -> T:
        """Run one ccxt call, retrying what may succeed later; map the rest to botclave errors.

        ``resend=False`` is for calls that must never be sent twice (placing an order): a
        timeout, a network error or a 5xx (the request may have been executed) raises
        ``OutcomeUnknown`` instead of a retry; 429/418 (refused unexecuted) are still waited
        out and retried. ``passthrough``: ccxt exceptions the caller handles itself."""
        attempt = 0
        while True:
            self.stats.requests += 1
            try:
                try:
                    return fn(*args, **kwargs)
                except (ccxt.ExchangeError, ccxt.InvalidNonce) as exc:  # InvalidNonce: a
                    # NetworkError in ccxt, but Binance's -1021 is a refusal: nothing executed
                    if not _clock_refused(exc) or attempt >= self.retry.max_retries:
                        raise
                    self._resync_clock(what)
                    attempt += 1
                    continue
            except passthrough:
                raise
            except ccxt.BadSymbol:
                raise UsageError(self._unknown_symbol(kwargs.get("symbol") or
                                                      (args[0] if args else "?"))) from None
            except ccxt.AuthenticationError as exc:
                raise UsageError(f"{self.exchange_id} {what}: credentials rejected "
                                 f"({_short(exc)}); check BOTCLAVE_"
                                 f"{self.exchange_id.upper()}_API_KEY / _SECRET") from None
            except (ccxt.NetworkError, ccxt.BadResponse) as exc:
                reason, wait = self._wait_for(exc, attempt)
                refused = isinstance(exc, RetryableHttp) and exc.status in (418, 429)
                if not resend and not refused:
                    raise OutcomeUnknown(f"{self.exchange_id} {self.market_type} {what}: "
                                         f"{reason}; the exchange may have executed it"
                                         ) from None
                if wait is None or attempt >= self.retry.max_retries:
                    raise ExchangeUnreachable(
                        f"{self.exchange_id} {self.market_type} {what}: {reason}; gave up after "
                        f"{attempt} retr{'y' if attempt == 1 else 'ies'}"
                    ) from None
                log.info("retrying", extra={"what": what, "reason": reason, "wait_s": wait})
                self.stats.retries += 1
                self.stats.waits.append((reason, wait))
                self.clock.sleep(wait)
                attempt += 1
            except ccxt.BaseError as exc:
                raise BotclaveError(f"{self.exchange_id} {what}: {_short(exc)}") from None

    def _resync_clock(self, what: str) -> None:
        """-1021: Binance refused the request unexecuted because our clock is off its own: take
        the offset from the server's time and sign again (safe for an order too)."""
        log.info("clock offset: resynchronising", extra={"what": what})
        self.exchange.options["adjustForTimeDifference"] = True
        self.exchange.load_time_difference()
        self.stats.retries += 1

    def _wait_for(self, exc: Exception, attempt: int) -> tuple[str, float | None]:
        """Why a call failed and how long to wait (None: do not wait, give up)."""
        backoff = self.retry.backoff(attempt)
        if isinstance(exc, RetryableHttp):
            kind = {429: "rate limited", 418: "IP banned"}.get(exc.status, "server error")
            reason = f"HTTP {exc.status} ({kind})"
            if exc.retry_after is None:
                return reason, backoff
            reason += f", Retry-After {exc.retry_after:g} s"
            if exc.retry_after > self.retry.max_retry_after_s:
                return reason, None
            return reason, exc.retry_after
        if isinstance(exc, ccxt.RequestTimeout):
            return f"timeout after {self.config.rate_limit.timeout_ms} ms", backoff
        if isinstance(exc, TruncatedResponse):
            return "truncated response", backoff
        return f"network error ({type(exc).__name__})", backoff

    # markets ---------------------------------------------------------------------------------
    def load_markets(self) -> dict[str, Any]:
        if not self._markets_loaded:
            self.call("load markets", self.exchange.load_markets)
            self._markets_loaded = True
        return self.exchange.markets

    def resolve_symbol(self, symbol: str) -> str:
        """The unified symbol in this market type; ``BTC/USDT`` means the perpetual on usdm."""
        markets = self.load_markets()
        if symbol in markets:
            return symbol
        if ":" not in symbol and "/" in symbol:
            base, quote = symbol.split("/", 1)
            settle = quote if self.market_type == "usdm" else base
            candidate = f"{symbol}:{settle}"
            if self.market_type != "spot" and candidate in markets:
                return candidate
        raise UsageError(self._unknown_symbol(symbol))

    def _unknown_symbol(self, symbol: str) -> str:
        return (f"--symbol {symbol}: not a {self.exchange_id} {self.market_type} market "
                "(a ccxt unified symbol such as BTC/USDT, or BTC/USDT:USDT on usdm)")

    def market(self, symbol: str) -> MarketInfo:
        unified = self.resolve_symbol(symbol)
        m = self.exchange.markets[unified]
        contract = bool(m.get("contract"))
        return MarketInfo(
            symbol=unified, id=m["id"], type=self.market_type,
            tick_size=_num(m.get("precision", {}).get("price")),
            lot_size=_num(m.get("precision", {}).get("amount")),
            contract_size=_num(m.get("contractSize")) if contract else None,
            qty_unit="contracts" if self.market_type == "coinm" else "base",
        )

    def now_ms(self) -> int:
        return int(self.clock.time() * 1000)

    # unified calls, each retried --------------------------------------------------------------
    def fetch_trades(self, symbol: str, since: int | None = None, limit: int | None = None,
                     params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.call("fetch trades", self.exchange.fetch_trades, symbol, since, limit,
                         params or {})

    def fetch_ohlcv(self, symbol: str, timeframe: str, since: int | None = None,
                    limit: int | None = None, params: dict[str, Any] | None = None) -> list[list]:
        return self.call("fetch ohlcv", self.exchange.fetch_ohlcv, symbol, timeframe, since,
                         limit, params or {})

    def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        return self.call("fetch order book", self.exchange.fetch_order_book, symbol, limit)

    def fetch_funding_rate_history(self, symbol: str, since: int | None = None,
                                   limit: int | None = None,
                                   params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.call("fetch funding rate history",
                         self.exchange.fetch_funding_rate_history, symbol, since, limit,
                         params or {})

    def fetch_my_trades(self, symbol: str, since: int | None = None, limit: int | None = None,
                        params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if not self.private:
            raise UsageError("fetch my-trades needs credentials")
        return self.call("fetch my trades", self.exchange.fetch_my_trades, symbol, since, limit,
                         params or {})


def _num(value: Any) -> float | None:
    return float(value) if value is not None else None


def _clock_refused(exc: Exception) -> bool:
    """Binance's -1021 (timestamp outside recvWindow): ccxt raises InvalidNonce on spot and
    BadRequest on the futures APIs."""
    return isinstance(exc, ccxt.InvalidNonce) or '"code":-1021' in str(exc).replace(" ", "")


def _short(exc: Exception) -> str:
    """Binance's ``code``/``msg`` from a ccxt error, else its first line without URLs; masked."""
    text = str(exc)
    body = _BINANCE_ERROR.search(text)
    if body is not None:
        return mask(f"Binance error {body.group(1)}: {body.group(2)}")
    first = text.splitlines()[0] if text else type(exc).__name__
    return mask(" ".join(w for w in first.split() if "://" not in w))[:300]


_BINANCE_ERROR = re.compile(r'"code"\s*:\s*(-?\d+)\s*,\s*"msg"\s*:\s*"([^"]*)"')
