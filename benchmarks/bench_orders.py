"""The order manager's own cost: journal appends per second at the journal's durability
setting (SQLite WAL, ``synchronous=FULL``: every event is fsynced before ``append`` returns, one
transaction per event), and what botclave adds to an order's round trip against the local spot
trading emulator: the median of ``OrderManager.place`` (checks, journal rows ``new``,
``submitted`` and ``status``, the ccxt call) minus the median of the bare ccxt ``create_order``
of the same limit orders (the peer: same emulator, same process, same run).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.run import Result
from botclave_cli.config import ExchangeConfig, OrderLimits, RateLimit
from botclave_cli.exchange.orders.journal import Journal
from botclave_cli.exchange.orders.model import OrderRequest, client_order_id
from botclave_cli.exchange.orders.session import open_manager
from tests.emulator.binance_rest import EmuMarket, synthetic_agg_trades
from tests.emulator.binance_spot_trading import SpotTradingEmulator

EVENTS = 5_000
ORDERS = 300
KEY, SECRET = "bench-key", "bench-secret"
RAW = {"symbol": "BTCUSDT", "orderId": 123456, "clientOrderId": "bc-abcdef-0000000001-en",
       "price": "59000.00000000", "origQty": "0.01000000", "status": "NEW", "type": "LIMIT"}


def journal_rate(root: Path, sync: str, batch: int) -> float:
    """Events/s appended in transactions of ``batch`` events (1: every event its own)."""
    journal = Journal(root / f"journal-{sync}-{batch}.sqlite", sync=sync)
    started = time.perf_counter()
    for first in range(0, EVENTS, batch):
        with journal.batch():
            for i in range(first, first + batch):
                journal.append(f"bc-bench-{i // 4:010d}-en", "status", status="acknowledged",
                               exchange_id=str(i), filled=0.0, symbol="BTC/USDT", raw=RAW)
    rate = EVENTS / (time.perf_counter() - started)
    journal.close()
    return rate


def _request(i: int, offset: float) -> OrderRequest:
    return OrderRequest(client_id=client_order_id("bench1", i, "entry"), symbol="BTC/USDT",
                        side="buy", type="limit", qty=0.001, price=58_000.0 - offset)


def round_trips(root: Path) -> tuple[float, float]:
    """(median ms of the bare ccxt create_order, median ms of OrderManager.place)."""
    agg = synthetic_agg_trades(2000, 1_723_075_200_000)
    market = EmuMarket("BTCUSDT", "spot", "BTC", "USDT", "0.01", "0.00001", agg)
    with SpotTradingEmulator([market], api_key=KEY, secret=SECRET) as emu:
        emu.set_price("BTCUSDT", 60_000.0)
        emu.balances["USDT"] = 1e9
        cfg = ExchangeConfig(api_urls={"all": emu.base_url},
                             testnet_api_urls={"all": emu.base_url + "/testnet"},
                             rate_limit=RateLimit(enabled=False),
                             orders=OrderLimits(max_order_notional=1e6))
        env = {"BOTCLAVE_BINANCE_API_KEY": KEY, "BOTCLAVE_BINANCE_SECRET": SECRET}
        manager = open_manager(cfg, root, "bench1", environ=env)
        ex = manager.exchange
        bare, ours = [], []
        for i in range(ORDERS):  # interleaved, so both see the same machine load
            started = time.perf_counter()
            ex.create_order("BTC/USDT", "limit", "buy", 0.001, 58_500.0 - i * 0.01,
                            {"clientOrderId": f"peer-{i}", "timeInForce": "GTC"})
            bare.append(time.perf_counter() - started)
            request = _request(i, i * 0.01)
            started = time.perf_counter()
            manager.place(request, last_price=60_000.0)
            ours.append(time.perf_counter() - started)
        return statistics.median(bare) * 1e3, statistics.median(ours) * 1e3


def run() -> list[Result]:
    # the journal lives in the data directory: measure on the project's disk, not /tmp
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parents[1]) as tmp:
        rates = {(sync, batch): journal_rate(Path(tmp), sync, batch)
                 for sync, batch in (("full", 1), ("full", 4), ("full", 16), ("normal", 1))}
        bare_ms, ours_ms = round_trips(Path(tmp))
    out = [Result("orders", f"journal appends, synchronous={sync.upper()}, {batch} event(s) "
                  "per transaction", rate, "events/s",
                  note=("the default; " if sync == "full" else "survives kill -9, not a power "
                        "loss; ") + "target >= 5,000")
           for (sync, batch), rate in rates.items()]
    return out + [
        Result("orders", f"place() round trip, median of {ORDERS}", ours_ms, "ms",
               "bare ccxt create_order", bare_ms,
               note=f"botclave adds {ours_ms - bare_ms:.2f} ms (target <= 2 ms)"),
    ]
