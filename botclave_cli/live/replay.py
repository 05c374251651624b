"""Replays for paper trading: stored trades or a raw WebSocket capture fed through the live path.

A stored range is fed as Binance's trade stream sends it, one trade per message; a raw capture
(``<receive time> <message>`` lines, as ``record`` writes them) goes message by message through
the decoder the live session uses for the WebSocket (``trade_message``). ``speed`` None is as
fast as the machine goes; a number replays that many times faster than the trades' own clock
(``speed=1``: real time), sleeping on the injected ``sleep``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from botclave_cli.data.importers.files import lines_of, read_text
from botclave_cli.errors import DataError, UsageError
from botclave_cli.live.paper import PaperTrader


def trade_message(message: dict[str, Any]) -> tuple[int, float, float, bool] | None:
    """(exchange time us, price, qty, aggressor is buyer) of a Binance ``trade`` or
    ``aggTrade`` message (combined-stream envelope or bare), else None. ``m`` true means the
    buyer was the maker: the aggressor sold."""
    data = message.get("data", message)
    if data.get("e") not in ("trade", "aggTrade"):
        return None
    return int(data["T"]) * 1000, float(data["p"]), float(data["q"]), not bool(data["m"])


def _pace(speed: float | None, sleep: Callable[[float], None]) -> Callable[[int], None]:
    if speed is None:
        return lambda _ts: None
    if speed <= 0:
        raise UsageError(f"--speed {speed:g}: expected a number > 0 (1 = real time)")
    start: list[float] = []

    def wait(ts_us: int) -> None:
        if not start:
            start.extend([ts_us, time.monotonic()])
            return
        due = start[1] + (ts_us - start[0]) / 1e6 / speed
        ahead = due - time.monotonic()
        if ahead > 0:
            sleep(ahead)
    return wait


def replay_trades(trader: PaperTrader, trades: pl.DataFrame, *, speed: float | None = None,
                  sleep: Callable[[float], None] = time.sleep, close_last: bool = True) -> None:
    """Stored trades (ts, price, qty, side; time order), one trade per message; the last bar
    is closed at the end unless ``close_last`` is false (a session resuming goes on live)."""
    ts = trades["ts"].dt.epoch("us").to_list()
    px, qty = trades["price"].to_list(), trades["qty"].to_list()
    buy = (trades["side"] == "buy").to_list()
    wait = _pace(speed, sleep)
    for t, p, q, b in zip(ts, px, qty, buy, strict=True):
        wait(t)
        trader.on_trade(t, p, q, b)
    if close_last:
        trader.close()


def replay_capture(trader: PaperTrader, path: Path, *, speed: float | None = None,
                   sleep: Callable[[float], None] = time.sleep) -> int:
    """A raw capture's trade messages in capture order; returns the number fed."""
    wait = _pace(speed, sleep)
    fed = 0
    for number, raw in enumerate(lines_of(read_text(path).text), 1):
        body = raw.split(" ", 1)
        if len(body) < 2:
            continue
        try:
            trade = trade_message(orjson.loads(body[1]))
        except (ValueError, KeyError, TypeError):
            raise DataError(f"{path.name}:{number}: not a capture message") from None
        if trade is None:
            continue
        ts, price, qty, buy = trade
        wait(ts)
        trader.on_trade(ts, price, qty, buy)
        fed += 1
    trader.close()
    return fed
