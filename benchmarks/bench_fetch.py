"""Rows/s fetched through ccxt from the local Binance emulator (fault-free), into the store.

Two settings: ccxt's rate limiter on (Binance's spot aggTrades spacing, what a real fetch is held
to) and off (the pipeline's own speed: HTTP, ccxt parsing, frames, chunked Parquet writes). The
peer is a bare ccxt ``fetch_trades`` loop by ``fromId`` that stores nothing.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time

from benchmarks.run import Result
from botclave_cli.config import ExchangeConfig, RateLimit
from botclave_cli.data.store import Store
from botclave_cli.exchange.connector import Connector
from botclave_cli.exchange.series import fetch_ohlcv
from botclave_cli.exchange.trades import fetch_trades
from tests.emulator.binance_rest import BinanceEmulator, EmuMarket, synthetic_agg_trades

ROWS = 200_000
T0_MS = 1_723_075_200_000
START, END = dt.datetime(2024, 8, 8, tzinfo=dt.UTC), dt.datetime(2024, 8, 9, tzinfo=dt.UTC)


def _connector(emu: BinanceEmulator, limiter: bool) -> Connector:
    cfg = ExchangeConfig(api_urls=emu.api_urls(), rate_limit=RateLimit(enabled=limiter))
    return Connector(cfg)


def _bare_ccxt(emu: BinanceEmulator) -> float:
    conn = _connector(emu, limiter=False)
    ex = conn.exchange
    ex.load_markets()
    started = time.perf_counter()
    rows, from_id = 0, 1_000
    while True:
        page = ex.fetch_trades("BTC/USDT", None, 1000, {"fromId": from_id})
        if not page:
            break
        rows += len(page)
        from_id = int(page[-1]["id"]) + 1
    return rows / (time.perf_counter() - started)


def run() -> list[Result]:
    agg = synthetic_agg_trades(ROWS, T0_MS, mean_gap_ms=100)  # ~5.5 hours of trades
    market = EmuMarket("BTCUSDT", "spot", "BTC", "USDT", "0.01", "0.00001", agg)
    week = synthetic_agg_trades(50_000, T0_MS, mean_gap_ms=12_000)  # ~7 days of 1m candles
    candles_market = EmuMarket("ETHUSDT", "spot", "ETH", "USDT", "0.01", "0.0001", week)
    results = []
    with BinanceEmulator([market, candles_market]) as emu:
        peer = _bare_ccxt(emu)
        for limiter in (False, True):
            with tempfile.TemporaryDirectory() as root:
                conn = _connector(emu, limiter)
                conn.market("BTC/USDT")
                started = time.perf_counter()
                done = fetch_trades(conn, Store(root), "BTC/USDT", START, END)
                seconds = time.perf_counter() - started
            results.append(Result(
                "fetch", f"agg trades, rate limiter {'on' if limiter else 'off'}",
                done.rows_new / seconds, "rows/s", "bare ccxt loop, no store", peer,
                f"{done.rows_new:,} rows, {done.requests} requests"))
        with tempfile.TemporaryDirectory() as root:
            conn = _connector(emu, limiter=True)
            conn.market("ETH/USDT")
            started = time.perf_counter()
            candles = fetch_ohlcv(conn, Store(root), "ETH/USDT", START,
                                  START + dt.timedelta(days=8))
            seconds = time.perf_counter() - started
        results.append(Result("fetch", "ohlcv 1m, rate limiter on", candles.rows_new / seconds,
                              "rows/s", note=f"{candles.rows_new:,} candles"))
    return results
