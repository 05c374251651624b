"""The book in the live path: a paper session whose strategy reads the book
(``entry.book_imbalance_min``) gets the recorder's live DOM at each bar close; a bar that closes
on an invalid (not synced) or stale book decides nothing. On the WebSocket emulator streaming a
real capture (depth diffs and REST snapshots): the imbalance is in the bars, and every signal is
either submitted or counted as skipped for the book; with a book that is never usable, or
stale, nothing is submitted."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.config import ExchangeConfig
from botclave_cli.data.store import Store
from botclave_cli.data.synth import SynthConfig, generate
from botclave_cli.engine.book.dom_builder import DOMState
from botclave_cli.exchange.record_config import RecordConfig
from botclave_cli.exchange.recorder import ccxt_snapshot_fetcher
from botclave_cli.live.replay import replay_trades
from botclave_cli.live.session import PaperSession, run_paper_session
from tests.conftest import shared_file
from tests.emulator.binance_ws import BinanceWsEmulator
from tests.test_paper import params as paper_params
from tests.test_paper_session import BTC, LIMIT, Served, params, run_until_served, stored_trades


def book_tester() -> Backtester:
    p = params()
    p.entry.book_imbalance_min = -1.0  # any imbalance passes: only the book's state decides
    return Backtester(p, ExchangeConfig(), tick_size=0.01, lot_size=0.00001)


def test_a_live_session_reads_the_book_and_skips_bars_without_one(tmp_path: Path) -> None:
    emu = BinanceWsEmulator(shared_file(BTC), limit=LIMIT)
    served = Served(emu)
    cfg = RecordConfig(symbol="BTC/USDT", market="spot", ws_url=emu.ws_url, flush_every_s=0.2,
                       store_every_s=0.5)
    store = Store(tmp_path / "store")
    try:
        paper, _ = run_until_served(emu, lambda: run_paper_session(
            store, cfg, book_tester(), data_dir=tmp_path / "store", out_dir=tmp_path / "rep",
            session="b1", capture_dir=tmp_path / "cap",
            fetch_snapshot=ccxt_snapshot_fetcher("spot", emu.rest_url), grace_s=1.0,
            write_every_s=0.5))
    finally:
        served.close()
    bars = paper.trader.result().bars
    known = bars["book_imbalance"].drop_nulls()
    assert known.len() >= 10 and known.abs().max() <= 1.0
    without = sum(paper.trader.bars_without_book.values())
    assert without == bars.height - known.len() and without > 0  # the start: not synced yet
    # bars with a usable book decide as the backtest does; the others decide nothing
    batch = Backtester(params(), ExchangeConfig(), tick_size=0.01, lot_size=0.00001).run(
        stored_trades(store))
    usable = bars.filter(bars["book_imbalance"].is_not_null())["bar_end"]
    expected = batch.signals.filter(batch.signals["ts"].is_in(usable.implode()))
    assert paper.trader.n_signals == expected.height
    assert batch.signals.height > expected.height  # the backtest traded where no book was


class _Builder:
    def __init__(self, valid: bool, ts_us: int | None) -> None:
        self.valid, self.ts_us = valid, ts_us

    def state(self, depth: int = 20) -> DOMState:
        return DOMState(self.valid, self.ts_us, 1, np.array([100.0]), np.array([3.0]),
                        np.array([100.01]), np.array([1.0]))


MARKET = generate(SynthConfig(trades_per_day=20_000, seed=5))


def _replay_with(builder: _Builder | None, tmp: Path) -> PaperSession:
    p = paper_params()
    p.entry.book_imbalance_min = -1.0
    t = MARKET.truth
    tester = Backtester(p, ExchangeConfig(), tick_size=t.tick_size, lot_size=t.lot_size)
    session = PaperSession(tester, tmp, "u1")
    session.recorder = SimpleNamespace(_builder=builder)  # type: ignore[assignment]
    session.use_book(stale_s=2.0)
    replay_trades(session.trader, MARKET.trades)
    return session


def test_invalid_stale_and_fresh_books(tmp_path: Path) -> None:
    fresh = _replay_with(_Builder(True, 2**62), tmp_path / "a")  # always just updated
    assert fresh.trader.n_signals > 0 and not fresh.trader.bars_without_book
    bars = fresh.trader.result().bars
    assert bars["book_imbalance"].unique().to_list() == [0.5]  # (3 - 1) / (3 + 1)
    for builder, why in ((_Builder(False, None), "book invalid"),
                         (_Builder(True, 0), "book stale"),  # its last diff at the epoch
                         (None, "book invalid")):  # no depth message yet
        other = _replay_with(builder, tmp_path / why.replace(" ", "_"))
        assert other.trader.n_signals == 0 and other.trader.result().trades.height == 0
        assert other.trader.bars_without_book == {why: bars.height}
