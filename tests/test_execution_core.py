"""The execution core fed whole or in chunks: byte-identical outputs, and bad events refused.

The scenario is a small synthetic market (its planted events give the strategy entries, stops,
targets and reversals) with partial participation (partial fills across trades), funding every
8 hours, and the book on (walks and queues) or off. The chunked driver feeds each event just in
time, as a live loop would: before a chunk, the signals arriving and the book samples and
funding due by the chunk's last trade.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.backtest.book import book_arrays
from botclave_cli.config import ExchangeConfig
from botclave_cli.data.synth import SynthConfig, generate
from botclave_cli.errors import DataError
from botclave_cli.execution import layout as L
from botclave_cli.execution.core import CoreInputs, ExecutionCore
from botclave_cli.execution.replay import chunk_bounds, replay
from botclave_cli.strategy.params import StrategyParams


def _scenario(with_book: bool, order_type: str) -> dict:
    market = generate(SynthConfig(trades_per_day=30_000, seed=11))
    truth = market.truth
    p = StrategyParams()
    p.entry.setups = ["bos", "absorption"]
    p.entry.order_type = order_type
    p.execution.participation = 0.3
    p.risk.max_daily_loss = p.risk.max_drawdown = 1.0
    p.risk.cooldown_losses = 0
    p.trailing.enabled = True
    p.execution.book_sample_ms, p.execution.book_depth = 1000.0, 10
    tester = Backtester(p, ExchangeConfig(), tick_size=truth.tick_size, lot_size=truth.lot_size)
    book = {"book_snapshot": market.book_snapshot, "book_diff": market.book_diff}
    res = tester.run(market.trades, book=book if with_book else None)
    start = market.trades["ts"].min()
    funding = pl.DataFrame({"ts": pl.datetime_range(start, market.trades["ts"].max(), "8h",
                                                    eager=True),
                            "funding_rate": [0.0001, -0.0002, 0.0003]})
    arrays = book_arrays(book, truth.tick_size, truth.lot_size, interval_us=1_000_000,
                         depth=10) if with_book else None
    inputs = tester.core_inputs(res.signals, funding, False, arrays)
    trades = market.trades.sort("ts", maintain_order=True)
    ts = trades["ts"].dt.epoch("us").to_numpy()
    px = np.rint(trades["price"].to_numpy() / truth.tick_size).astype(np.int64)
    qty = np.rint(trades["qty"].to_numpy() / truth.lot_size).astype(np.int64)
    return dict(tester=tester, inputs=inputs, ts=ts, px=px, qty=qty, result=res)


@pytest.fixture(scope="module", params=[(True, "market"), (True, "limit"), (False, "market")],
                ids=["book-market", "book-limit", "nobook-market"])
def scenario(request):
    return _scenario(*request.param)


def _whole(sc: dict) -> ExecutionCore:
    core = sc["tester"].new_core(sc["inputs"])
    inp: CoreInputs = sc["inputs"]
    core.submit(inp.signals)
    if inp.book is not None:
        core.add_book(inp.book)
    core.add_funding(inp.funding_ts, inp.funding_rate)
    core.trades_ticks(sc["ts"], sc["px"], sc["qty"])
    return core


def _chunked(sc: dict, cuts: list[int]) -> ExecutionCore:
    core = sc["tester"].new_core(sc["inputs"])
    return replay(core, sc["inputs"], sc["ts"], sc["px"], sc["qty"], cuts)


def _assert_same(a: ExecutionCore, b: ExecutionCore, n_marks: int) -> None:
    oa, ob = a.outputs(), b.outputs()
    for key in oa:
        assert oa[key].tobytes() == ob[key].tobytes(), key
    for x, y in zip(a.marks(n_marks), b.marks(n_marks), strict=True):
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()
    assert a.state.fv.tobytes() == b.state.fv.tobytes()


def test_whole_core_equals_the_backtest(scenario):
    """The backtester is the whole-stream driver: its fills are the core's."""
    core = _whole(scenario)
    res = scenario["result"]
    fills = core.outputs()["fills_i"]
    assert fills.shape[0] == res.fills.height > 0
    assert core.outputs()["trades_i"].shape[0] == res.trades.height > 0
    assert np.abs(core.outputs()["trades_f"][:, L.F_FUNDING]).sum() > 0  # funding was paid
    if scenario["inputs"].book is not None:
        assert (fills[:, L.FI_TRADE] == -1).any() or (fills[:, L.FI_TAKER] == 0).any()


def _interesting(sc: dict) -> list[int]:
    """Trade indices where something happens: signal arrivals and fills (partial ones too)."""
    ts = sc["ts"]
    arrivals = np.searchsorted(ts, sc["inputs"].signals.arr)
    fills = _whole(sc).outputs()["fills_i"]
    at = fills[fills[:, L.FI_TRADE] >= 0, L.FI_TRADE]
    return sorted({int(i) for i in (*arrivals, *at) if 0 < i < len(ts)})


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_cut_anywhere_gives_the_same_bytes(scenario, data):
    ts = scenario["ts"]
    n = len(ts)
    cuts = data.draw(st.lists(st.integers(1, n - 1), max_size=40), label="cuts")
    spots = _interesting(scenario)
    center = data.draw(st.sampled_from(spots), label="center")
    width = data.draw(st.integers(1, 40), label="one-trade chunks around it")
    cuts += list(range(max(1, center - width), min(n, center + width)))
    whole = _whole(scenario)
    n_marks = int(whole.state.iv[L.I_N_MARKS]) + 1
    _assert_same(whole, _chunked(scenario, cuts), n_marks)


def test_every_trade_fed_alone(scenario):
    whole = _whole(scenario)
    one_by_one = _chunked(scenario, list(range(1, len(scenario["ts"]))))
    _assert_same(whole, one_by_one, int(whole.state.iv[L.I_N_MARKS]) + 1)


def _snapshot(core: ExecutionCore) -> list[bytes]:
    return [a.tobytes() for a in core.state] + [core._signals.view().arr.tobytes()]


def test_bad_events_are_refused_and_leave_the_state_alone():
    sc = _scenario(False, "market")
    inp = sc["inputs"]
    core = sc["tester"].new_core(inp)
    ts, px, qty = sc["ts"], sc["px"], sc["qty"]
    k = int(np.searchsorted(inp.signals.arr, ts[999], side="right"))
    core.submit(type(inp.signals)(*(x[:k] for x in inp.signals)))
    core.add_funding(inp.funding_ts[:1], inp.funding_rate[:1])
    core.trades_ticks(ts[:1000], px[:1000], qty[:1000])
    before = _snapshot(core)
    clock = int(ts[999])
    with pytest.raises(DataError, match=r"trade 1000 at .* older than the core's clock"):
        core.trades_ticks(ts[:10], px[:10], qty[:10])
    with pytest.raises(DataError, match=r"trade 1001 at .* before the trade before it"):
        core.trades_ticks(np.array([clock + 5, clock + 1]), px[:2], qty[:2])
    with pytest.raises(DataError, match=r"negative quantity -3 lots"):
        core.trades_ticks(np.array([clock + 1]), px[:1], np.array([-3]))
    with pytest.raises(DataError, match=r"price nan"):
        core.trades(np.array([clock + 1]), np.array([np.nan]), np.array([0.01]))
    with pytest.raises(DataError, match=r"signal for ETH/USDT: this execution core trades"):
        core.submit(inp.signals, symbol="ETH/USDT")
    late = type(inp.signals)(*(np.array([x[0]]) for x in inp.signals))
    late = late._replace(arr=np.array([clock]), dec=np.array([clock]))
    with pytest.raises(DataError, match=r"not after the core's clock"):
        core.submit(late)
    with pytest.raises(DataError, match=r"funding at .* not after the core's clock"):
        core.add_funding(np.array([clock]), np.array([0.0001]))
    assert _snapshot(core) == before
    # and it goes on as if nothing had happened
    core.submit(type(inp.signals)(*(x[k:] for x in inp.signals)))
    core.add_funding(inp.funding_ts[1:], inp.funding_rate[1:])
    core.trades_ticks(ts[1000:], px[1000:], qty[1000:])
    _assert_same(_whole(sc), core, int(core.state.iv[L.I_N_MARKS]) + 1)


def test_chunk_bounds():
    assert chunk_bounds(5, [3, 0, 3, 9, 1]) == [(0, 1), (1, 3), (3, 5)]
    assert chunk_bounds(3, []) == [(0, 3)]


def test_stale_numba_cache_is_dropped_when_a_step_changes(tmp_path, monkeypatch):
    """advance() inlines the steps of sibling modules, which numba's cache does not track."""
    from botclave_cli.execution import numba_cache as nc

    src = tmp_path / "pkg"
    src.mkdir()
    for name in nc.COMPILED:
        (src / name).write_text(f"# {name}\n")
    cache = src / "__pycache__"
    monkeypatch.setattr(nc, "HERE", src)
    monkeypatch.setattr(nc, "CACHE", cache)
    monkeypatch.setattr(nc, "STAMP", cache / "core_sources.sha256")
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    nc.drop_stale_cache()
    (cache / "kernel.advance-1.py311.nbi").write_text("index")
    nc.drop_stale_cache()  # same sources: the cache stays
    assert (cache / "kernel.advance-1.py311.nbi").exists()
    (src / "steps.py").write_text("# changed\n")
    nc.drop_stale_cache()
    assert not (cache / "kernel.advance-1.py311.nbi").exists()
    assert (cache / "core_sources.sha256").read_text() == nc.sources_digest()
