"""A live paper session on the local WebSocket emulator (a real capture streamed): the trades it
received are stored by the recorder, and its run folder equals the backtest of them; a session
stopped halfway and started again resumes from the store and ends with the same result."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.backtest.results import RESULT_FILES, read_results
from botclave_cli.config import ExchangeConfig
from botclave_cli.data.store import DatasetRef, Store
from botclave_cli.exchange.record_config import RecordConfig
from botclave_cli.exchange.recorder import ccxt_snapshot_fetcher
from botclave_cli.live.session import run_paper_session
from botclave_cli.strategy.params import StrategyParams
from tests.conftest import shared_file
from tests.emulator.binance_ws import BinanceWsEmulator

BTC = "binance-ws/spot_btcusdt_20240808.gz"
LIMIT = 40_000  # stream messages served (about a third of the capture): keeps it short


def params() -> StrategyParams:
    p = StrategyParams()
    p.entry.setups = ["bos", "absorption"]
    p.bars.timeframe = "5s"
    p.structure.swing_confirm_bars = 2
    p.orderflow.absorption_min_baseline_bars = 5
    p.risk.max_daily_loss = p.risk.max_drawdown = 1.0
    return p


def make_tester(tick_size: float = 0.01, lot_size: float = 0.00001, **kwargs) -> Backtester:
    """The sessions' backtester: spot BTC/USDT by default; ``kwargs``: Backtester's (a futures
    ``symbol`` and ``market``)."""
    return Backtester(params(), ExchangeConfig(), tick_size=tick_size, lot_size=lot_size,
                      **kwargs)


class Served:
    """The WebSocket emulator on its own event loop thread."""

    def __init__(self, emu: BinanceWsEmulator) -> None:
        self.emu = emu
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(emu.start(), self.loop).result(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.emu.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def serve_and_run(emu: BinanceWsEmulator, tmp: Path, until_cursor: int | None = None):
    """Run a paper session against ``emu`` until it has served everything (or ``until_cursor``
    messages), then stop it like SIGTERM would."""
    cfg = RecordConfig(symbol="BTC/USDT", market="spot", ws_url=emu.ws_url, flush_every_s=0.2,
                       store_every_s=0.5)
    store = Store(tmp / "store")
    holder: dict = {}

    already_sent = emu.sent

    def stopper() -> None:
        give_up = time.monotonic() + 60
        rec = None
        while time.monotonic() < give_up:
            rec = holder.get("recorder")
            done = emu.finished if until_cursor is None else emu.cursor >= until_cursor
            if rec is not None and done and rec.result.messages >= emu.sent - already_sent:
                time.sleep(2.5)  # the last bar closes on the clock (grace 1 s)
                rec.stop("test")
                return
            time.sleep(0.05)
        if rec is not None:
            rec.stop("test timeout")

    import botclave_cli.live.session as session_mod

    original = session_mod.Recorder

    def keep(*a, **kw):
        rec = original(*a, **kw)
        holder["recorder"] = rec
        return rec

    session_mod.Recorder = keep
    watcher = threading.Thread(target=stopper, daemon=True)
    watcher.start()
    try:
        paper, folder = run_paper_session(
            store, cfg, make_tester(), data_dir=tmp / "store", out_dir=tmp / "reports",
            session="t1", capture_dir=tmp / "captures",
            fetch_snapshot=ccxt_snapshot_fetcher("spot", emu.rest_url), grace_s=1.0,
            write_every_s=0.5)
    finally:
        session_mod.Recorder = original
    return store, paper, folder


def run_until_served(emu: BinanceWsEmulator, start, *, settle_s: float = 2.5):
    """Run ``start()`` (a run_paper_session / run_live_session call) on a thread until
    ``emu`` has served everything and its recorder has read all of it (a busy session lags
    behind the socket), wait ``settle_s`` (the last bar closes on the clock), stop its
    recorder as SIGTERM would and return what ``start`` returned."""
    import botclave_cli.live.session as session_mod

    original = session_mod.Recorder
    holder: dict = {}
    already_sent = emu.sent

    def keep(*a, **kw):
        holder["rec"] = original(*a, **kw)
        return holder["rec"]

    def run() -> None:
        holder["result"] = start()

    session_mod.Recorder = keep
    runner = threading.Thread(target=run, daemon=True)
    try:
        runner.start()
        give_up = time.monotonic() + 300
        while not (emu.finished and "rec" in holder
                   and holder["rec"].result.messages >= emu.sent - already_sent):
            assert time.monotonic() < give_up, "the session did not get going"
            time.sleep(0.05)
        time.sleep(settle_s)
        holder["rec"].stop("test")
        runner.join(60)
    finally:
        session_mod.Recorder = original
    return holder["result"]


def stored_trades(store: Store) -> pl.DataFrame:
    ref = DatasetRef("binance", "spot", "BTC/USDT", "trades")
    return store.scan(ref).select("ts", "price", "qty", "side").collect().sort(
        "ts", maintain_order=True)


def test_a_live_paper_session_equals_the_backtest_of_what_it_received(tmp_path: Path) -> None:
    emu = BinanceWsEmulator(shared_file(BTC), limit=LIMIT)
    served = Served(emu)
    try:
        store, paper, folder = serve_and_run(emu, tmp_path)
    finally:
        served.close()
    trades = stored_trades(store)
    assert trades.height > 2000 and paper.trader.late_trades == 0
    batch = make_tester().run(trades)
    written = read_results(folder)
    assert written["manifest"]["status"] == "stopped"
    assert batch.signals.height >= 3
    for name in RESULT_FILES:
        assert_frame_equal(written[name], getattr(batch, name))


def test_a_stopped_session_resumes_from_the_store(tmp_path: Path) -> None:
    emu = BinanceWsEmulator(shared_file(BTC), limit=LIMIT)
    served = Served(emu)
    try:
        _, first, _ = serve_and_run(emu, tmp_path, until_cursor=len(emu.messages) // 2)
        store, second, folder = serve_and_run(emu, tmp_path)
    finally:
        served.close()
    trades = stored_trades(store)
    # the second run replayed what the first received, then went on live
    assert second.replayed_until_us is not None
    assert first.trader.result().input_rows > 1000
    batch = make_tester().run(trades)
    written = read_results(folder)
    for name in RESULT_FILES:
        assert_frame_equal(written[name], getattr(batch, name))
