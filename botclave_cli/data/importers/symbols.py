"""Exchange-native symbols (``BTCUSDT``, ``BTCUSD_PERP``) to ccxt unified symbols and markets."""

from __future__ import annotations

import re

from botclave_cli.errors import UsageError

#: quote assets Binance lists, longest first so that ``FDUSD`` wins over ``USD``
QUOTES = tuple(
    sorted(
        (
            "USDT",
            "USDC",
            "FDUSD",
            "BUSD",
            "TUSD",
            "USDP",
            "DAI",
            "USD",
            "BTC",
            "ETH",
            "BNB",
            "EUR",
            "TRY",
            "BRL",
            "GBP",
            "JPY",
            "AUD",
            "RUB",
            "UAH",
            "ZAR",
            "IDR",
            "PLN",
            "RON",
            "ARS",
            "MXN",
            "COP",
            "XRP",
            "DOGE",
            "TRX",
            "SOL",
            "DOT",
        ),
        key=len,
        reverse=True,
    )
)

_COINM = re.compile(r"^([A-Z0-9]+)(USD)_(PERP|\d{6})$")


def split_pair(raw: str) -> tuple[str, str]:
    """``BTCUSDT`` -> (``BTC``, ``USDT``); UsageError when no known quote asset ends it."""
    upper = raw.upper()
    for quote in QUOTES:
        if upper.endswith(quote) and len(upper) > len(quote):
            return upper[: -len(quote)], quote
    raise UsageError(f"cannot split symbol {raw!r} into base and quote; pass --symbol BASE/QUOTE")


def is_coinm(raw: str) -> bool:
    """COIN-M contracts are named ``<BASE>USD_PERP`` or ``<BASE>USD_<yymmdd>``."""
    return bool(_COINM.match(raw.upper()))


def unified_symbol(raw: str, market: str) -> str:
    """ccxt unified symbol of a Binance symbol in ``market`` (spot, usdm, coinm)."""
    upper = raw.upper()
    if market == "coinm":
        m = _COINM.match(upper)
        if not m:
            raise UsageError(f"{raw!r} is not a COIN-M symbol (BASEUSD_PERP or BASEUSD_YYMMDD)")
        base, quote, suffix = m.groups()
        return f"{base}/{quote}:{base}" + ("" if suffix == "PERP" else f"-{suffix}")
    delivery = ""
    if "_" in upper:  # USD-M delivery contract, e.g. BTCUSDT_240927
        upper, _, expiry = upper.partition("_")
        delivery = f"-{expiry}"
    base, quote = split_pair(upper)
    if market == "spot":
        return f"{base}/{quote}"
    if market == "usdm":
        return f"{base}/{quote}:{quote}{delivery}"
    raise UsageError(f"unknown market {market!r}; expected spot, usdm or coinm")
