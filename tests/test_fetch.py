"""Library tests of ``botclave_cli.exchange`` against the local Binance emulator (no internet).

The connector and the emulator share a FakeClock: retries and the rate limiter "sleep" by
advancing it, so no test waits for Retry-After or backoff in real time, and the emulator can
check that a Retry-After was honoured (it answers 418 to a request made too early).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from botclave_cli.config import ExchangeConfig, RateLimit
from botclave_cli.data.store import DatasetRef, Store
from botclave_cli.errors import ExchangeUnreachable, UsageError
from botclave_cli.exchange.connector import Connector
from botclave_cli.exchange.series import fetch_book, fetch_funding, fetch_my_trades, fetch_ohlcv
from botclave_cli.exchange.trades import fetch_trades
from tests.conftest import shared_file
from tests.emulator.binance_rest import (
    BinanceEmulator,
    EmuMarket,
    FakeClock,
    FaultPlan,
    agg_trades_from_ccxt_json,
    synthetic_agg_trades,
)

T0_MS = 1_723_075_200_000  # 2024-08-08 00:00 UTC
DAY = dt.datetime(2024, 8, 8, tzinfo=dt.UTC)
KEY, SECRET = "k" * 64, "s" * 64


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def spot_market(n: int = 6_000, **kw) -> EmuMarket:
    return EmuMarket("BTCUSDT", "spot", "BTC", "USDT", "0.01", "0.00001",
                     synthetic_agg_trades(n, T0_MS, **kw))


def usdm_market() -> EmuMarket:
    # 2.5 hours of trades with a quiet first hour: futures windows must walk hour by hour
    agg = synthetic_agg_trades(3_000, T0_MS + 3_900_000, seed=3, mean_gap_ms=3_000)
    return EmuMarket("BTCUSDT", "usdm", "BTC", "USDT", "0.01", "0.001", agg)


def connector(emu: BinanceEmulator, clock: FakeClock, market: str = "spot", retries: int = 8,
              timeout_ms: int = 10_000, **kw) -> Connector:
    cfg = ExchangeConfig(market=market, api_urls=emu.api_urls(),
                         rate_limit=RateLimit(max_retries=retries, timeout_ms=timeout_ms))
    return Connector(cfg, clock=clock, **kw)


def stored(store: Store, ref: DatasetRef) -> pl.DataFrame:
    return store.scan(ref).collect().sort(list(ref_sort(ref)))


def ref_sort(ref: DatasetRef) -> tuple[str, ...]:
    from botclave_cli.data.schemas import spec

    return spec(ref.kind).sort


def expected_agg(agg: pl.DataFrame, start_ms: int, end_ms: int) -> pl.DataFrame:
    """The store rows the emulator's table must give, computed straight from the table."""
    return (agg.filter((pl.col("T") >= start_ms) & (pl.col("T") < end_ms)).sort("a")
            .select((pl.col("T") * 1000).cast(pl.Datetime("us", "UTC")).alias("ts"),
                    pl.col("p").cast(pl.Float64).alias("price"),
                    pl.col("q").cast(pl.Float64).alias("qty"),
                    pl.when(pl.col("m")).then(pl.lit("sell")).otherwise(pl.lit("buy"))
                    .alias("side"),
                    pl.col("a").alias("agg_id"), pl.col("f").alias("first_trade_id"),
                    pl.col("l").alias("last_trade_id")))


AGG_COLS = ["ts", "price", "qty", "side", "agg_id", "first_trade_id", "last_trade_id"]


# trades ------------------------------------------------------------------------------------------
def test_xrp_agg_trades_equal_the_real_ccxt_response(store: Store) -> None:
    path = shared_file("binance-rest/xrpeth_aggtrades_ccxt_20191011.json.gz")
    market = EmuMarket("XRPETH", "spot", "XRP", "ETH", "0.00000001", "1.00000000",
                       agg_trades_from_ccxt_json(path))
    clock = FakeClock()
    with BinanceEmulator([market], clock=clock) as emu:
        result = fetch_trades(connector(emu, clock), store, "XRP/ETH", utc(2019, 10, 11),
                              utc(2019, 10, 14))
    with gzip.open(path, "rt") as fh:
        real = json.load(fh)  # ccxt's own parse of the live Binance response
    got = stored(store, DatasetRef("binance", "spot", "XRP/ETH", "agg_trades"))
    assert got.height == len(real) == result.rows_new == 12_477
    assert got["agg_id"].to_list() == [int(t["id"]) for t in real]
    assert got["side"].to_list() == [t["side"] for t in real]
    assert got["price"].to_list() == [t["price"] for t in real]
    assert got["qty"].to_list() == [t["amount"] for t in real]
    assert (got["ts"].dt.epoch("ms").to_list() == [t["timestamp"] for t in real])
    manifest = store.manifest(DatasetRef("binance", "spot", "XRP/ETH", "agg_trades"))
    assert manifest.tick_size == 1e-8 and manifest.lot_size == 1.0
    assert manifest.tick_source == "exchange" and manifest.source == "ccxt:binance"
    assert manifest.gaps == []
    # the first hour by time, then pages by id up to an empty page
    first_hour = sum(t["timestamp"] < 1_570_755_600_000 for t in real)
    assert 0 < first_hour < 1000
    pages = -(-(len(real) - first_hour) // 1000) + 1
    assert result.requests == 1 + pages  # the time query, then the id pages


def test_spot_range_is_exact_and_gaps_are_recorded(store: Store) -> None:
    market = spot_market(6_000, missing_ids=(2_000, 2_001, 4_500))
    clock = FakeClock()
    start, end = utc(2024, 8, 8, 0, 1), utc(2024, 8, 8, 0, 3)
    with BinanceEmulator([market], clock=clock) as emu:
        result = fetch_trades(connector(emu, clock), store, "BTC/USDT", start, end,
                              chunk_rows=700)
    want = expected_agg(market.agg, T0_MS + 60_000, T0_MS + 180_000)
    got = stored(store, DatasetRef("binance", "spot", "BTC/USDT", "agg_trades"))
    assert_frame_equal(got.select(AGG_COLS), want)
    assert result.coverage == [(int(start.timestamp() * 1e6), int(end.timestamp() * 1e6))]
    inside = sorted({2_000, 2_001, 4_500} & set(range(want["agg_id"].min(),
                                                      want["agg_id"].max())))
    assert inside  # the planted gaps fall inside the range
    assert [(g.start, g.end) for g in result.gaps] == _runs(inside)


def _runs(ids: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for i in ids:
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def test_usdm_windows_stay_under_one_hour(store: Store) -> None:
    market = usdm_market()
    clock = FakeClock()
    with BinanceEmulator([market], clock=clock) as emu:
        fetch_trades(connector(emu, clock, "usdm"), store, "BTC/USDT", DAY, utc(2024, 8, 8, 4))
        windows = [(int(q["startTime"]), int(q["endTime"])) for p, q, s in emu.log
                   if p == "/fapi/v1/aggTrades" and "startTime" in q]
        statuses = emu.statuses("/fapi/v1/aggTrades")
    assert windows and all(e - s < 3_600_000 for s, e in windows)
    # the quiet first hour, then the next hour (too many trades for one page), then narrower
    assert windows[:2] == [(T0_MS, T0_MS + 3_599_999), (T0_MS + 3_600_000, T0_MS + 7_199_999)]
    assert all(s == T0_MS + 3_600_000 and e < T0_MS + 7_199_999 for s, e in windows[2:])
    assert set(statuses) == {200}
    got = stored(store, DatasetRef("binance", "usdm", "BTC/USDT:USDT", "agg_trades"))
    assert_frame_equal(got.select(AGG_COLS), expected_agg(market.agg, T0_MS, T0_MS + 4 * 3_600_000))


def test_full_fetch_under_faults_equals_fault_free_fetch(tmp_path) -> None:
    def run(faults: FaultPlan | None, root: str) -> tuple[pl.DataFrame, Connector, list]:
        store = Store(tmp_path / root)
        clock = FakeClock()
        with BinanceEmulator([spot_market(12_000)], clock=clock, faults=faults) as emu:
            conn = connector(emu, clock, retries=10, timeout_ms=250)
            fetch_trades(conn, store, "BTC/USDT", DAY, utc(2024, 8, 8, 1), chunk_rows=1_500)
            fetch_ohlcv(conn, store, "BTC/USDT", DAY, utc(2024, 8, 8, 1))
            log = list(emu.log)
        trades = stored(store, DatasetRef("binance", "spot", "BTC/USDT", "agg_trades"))
        candles = stored(store, DatasetRef("binance", "spot", "BTC/USDT", "ohlcv",
                                           (("timeframe", "1m"),)))
        return pl.concat([trades.select("ts", "price"), candles.select("ts", "close")
                          .rename({"close": "price"})]), conn, log

    clean, _, _ = run(None, "clean")
    # every kind at least once (scripted), then seeded random faults on a quarter of requests
    script = {2: "429", 4: "500", 6: "502", 7: "truncated", 9: "418", 11: "slow", 12: "reset",
              14: "503"}
    faults = FaultPlan(rate=0.25, seed=11, script=script, retry_after_s=3, slow_s=0.4)
    faulty, conn, log = run(faults, "faulty")
    assert_frame_equal(faulty, clean)
    statuses = {s for _, _, s in log}
    assert {429, 418, 500, 502, 503, 0} <= statuses  # 0: connection reset
    reasons = " ".join(r for r, _ in conn.stats.waits)
    assert "timeout" in reasons and "truncated response" in reasons
    assert conn.stats.retries == len(conn.stats.waits) >= 8


def test_retry_after_is_honoured_through_the_injected_clock(store: Store) -> None:
    clock = FakeClock()
    # request 1 is exchangeInfo; request 2 (the first trades page) gets a 429, the retry a 418
    faults = FaultPlan(script={2: "429", 3: "418"}, retry_after_s=7, ban_s=130)
    with BinanceEmulator([spot_market(500)], clock=clock, faults=faults) as emu:
        conn = connector(emu, clock)
        fetch_trades(conn, store, "BTC/USDT", DAY, utc(2024, 8, 8, 1))
        statuses = emu.statuses()
    assert [w for _, w in conn.stats.waits] == [7.0, 130.0]
    assert 7.0 in clock.sleeps and 130.0 in clock.sleeps
    assert statuses.count(418) == 1  # only the scripted one: the client never came back early


def test_weight_limit_429s_are_waited_out_never_banned(store: Store) -> None:
    clock = FakeClock(start=1_800_000_000.0)
    market = spot_market(10_000)
    with BinanceEmulator([market], clock=clock, weight_limit=30) as emu:
        conn = connector(emu, clock)
        conn.exchange.rateLimit = 1  # let ccxt's own spacing run far too fast on purpose
        fetch_trades(conn, store, "BTC/USDT", DAY, utc(2024, 8, 8, 1))
        statuses = emu.statuses()
    assert 429 in statuses and 418 not in statuses
    got = stored(store, DatasetRef("binance", "spot", "BTC/USDT", "agg_trades"))
    assert got.height == 10_000


def test_a_long_ban_fails_at_once_with_exit_4(store: Store) -> None:
    clock = FakeClock()
    faults = FaultPlan(script={2: "418"}, ban_s=3 * 86_400)
    with BinanceEmulator([spot_market(500)], clock=clock, faults=faults) as emu:
        with pytest.raises(ExchangeUnreachable,
                           match=r"HTTP 418 \(IP banned\), Retry-After 259200"):
            fetch_trades(connector(emu, clock), store, "BTC/USDT", DAY, utc(2024, 8, 8, 1))
    assert clock.sleeps == [] or max(clock.sleeps) < 60


def test_unreachable_exchange_backs_off_exponentially_then_exit_4() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the with block ends: nobody listens
    clock = FakeClock()
    cfg = ExchangeConfig(api_urls={"all": f"http://127.0.0.1:{port}"},
                         rate_limit=RateLimit(max_retries=4, backoff_seconds=0.5))
    conn = Connector(cfg, clock=clock)
    with pytest.raises(ExchangeUnreachable) as err:
        conn.market("BTC/USDT")
    assert err.value.exit_code == 4
    assert [w for _, w in conn.stats.waits] == [0.5, 1.0, 2.0, 4.0]
    assert "gave up after 4 retries" in str(err.value)


def test_resume_skips_rows_written_before_the_manifest_caught_up(store: Store) -> None:
    market = spot_market(9_000)
    clock = FakeClock()
    ref = DatasetRef("binance", "spot", "BTC/USDT", "agg_trades")
    with BinanceEmulator([market], clock=clock) as emu:
        conn = connector(emu, clock)
        full = fetch_trades(conn, store, "BTC/USDT", DAY, utc(2024, 8, 8, 1))
        whole = stored(store, ref)
        # a run killed after writing 5,000 rows but before its manifest said so
        manifest = store.manifest(ref)
        manifest.coverage = []
        store.save_manifest(ref, manifest)
        for (path,) in store.partition_files(ref).values():
            pl.read_parquet(path).sort("agg_id").head(5_000).write_parquet(path)
        emu.log.clear()
        again = fetch_trades(conn, store, "BTC/USDT", DAY, utc(2024, 8, 8, 1))
        by_id = [int(q["fromId"]) for p, q, _ in emu.log if "fromId" in q]
    assert_frame_equal(stored(store, ref), whole)
    assert again.rows_new == 4_000 and full.rows_new == 9_000
    # ids 1000..5999 were on disk: paging starts at 6000 and ends with an empty page at 10000
    assert by_id == [6_000, 7_000, 8_000, 9_000, 10_000]


def test_raw_trades_follow_the_first_aggregate_trade(store: Store) -> None:
    market = spot_market(3_000)
    clock = FakeClock()
    with BinanceEmulator([market], clock=clock) as emu:
        conn = connector(emu, clock, credentials=(KEY, SECRET), sandbox=False)
        result = fetch_trades(conn, store, "BTC/USDT", utc(2024, 8, 8, 0, 0, 30),
                              utc(2024, 8, 8, 0, 1, 30), raw=True, chunk_rows=999)
    agg = market.agg.filter((pl.col("T") >= T0_MS + 30_000) & (pl.col("T") < T0_MS + 90_000))
    got = stored(store, DatasetRef("binance", "spot", "BTC/USDT", "trades"))
    assert got["trade_id"].to_list() == list(range(agg["f"].min(), agg["l"].max() + 1))
    assert got.height == (agg["l"] - agg["f"] + 1).sum() == result.rows_new
    assert result.gaps == []


def test_unknown_symbol_is_a_usage_error(store: Store) -> None:
    clock = FakeClock()
    with BinanceEmulator([spot_market(100)], clock=clock) as emu:
        with pytest.raises(UsageError, match="--symbol DOGE/USDT: not a binance spot market"):
            fetch_trades(connector(emu, clock), store, "DOGE/USDT", DAY)


# candles, funding, book, own trades -------------------------------------------------------------
def test_ohlcv_matches_candles_computed_by_hand(store: Store) -> None:
    market = spot_market(6_000)
    market.missing_klines = (T0_MS + 120_000,)  # the exchange lost the 00:02 candle
    clock = FakeClock()
    with BinanceEmulator([market], clock=clock) as emu:
        conn = connector(emu, clock)
        fetch_ohlcv(conn, store, "BTC/USDT", DAY, utc(2024, 8, 8, 0, 4), chunk_rows=2)
        again = fetch_ohlcv(conn, store, "BTC/USDT", DAY, utc(2024, 8, 8, 0, 4))
    got = stored(store, DatasetRef("binance", "spot", "BTC/USDT", "ohlcv", (("timeframe", "1m"),)))
    bars: dict[int, list[float]] = {}
    for p, q, t in market.agg.select("p", "q", "T").iter_rows():
        minute = (t - T0_MS) // 60_000
        if minute < 4:
            price, qty = float(p), float(q)
            bar = bars.setdefault(minute, [price, price, price, price, 0.0])
            bar[1], bar[2], bar[3] = max(bar[1], price), min(bar[2], price), price
            bar[4] += qty
    want = [bars[m] for m in (0, 1, 3)]
    assert got["ts"].dt.epoch("ms").to_list() == [T0_MS, T0_MS + 60_000, T0_MS + 180_000]
    for row, (o, h, lo, c, v) in zip(got.iter_rows(named=True), want, strict=True):
        assert (row["open"], row["high"], row["low"], row["close"]) == (o, h, lo, c)
        assert row["volume"] == pytest.approx(v, abs=1e-8)
    assert [(g.kind, g.start, g.end) for g in again.gaps] == [
        ("candle", (T0_MS + 120_000) * 1000, (T0_MS + 120_000) * 1000)]
    assert again.rows_new == 0 and again.requests == 0


def test_funding_history_of_a_perpetual(store: Store) -> None:
    agg = synthetic_agg_trades(2_000, T0_MS, mean_gap_ms=60_000)  # ~33 hours
    market = EmuMarket("BTCUSDT", "usdm", "BTC", "USDT", "0.1", "0.001", agg)
    clock = FakeClock()
    with BinanceEmulator([market], clock=clock) as emu:
        result = fetch_funding(connector(emu, clock, "usdm"), store, "BTC/USDT", DAY,
                               utc(2024, 8, 10))
    got = stored(store, DatasetRef("binance", "usdm", "BTC/USDT:USDT", "funding"))
    last = agg["T"].max()
    assert got["ts"].dt.epoch("ms").to_list() == list(range(T0_MS + 8 * 3_600_000, last + 1,
                                                            8 * 3_600_000))
    assert got["funding_rate"].to_list()[:3] == [-7e-5, 7e-5, -2e-5]  # ((37 i) % 23 - 7) 1e-5
    assert result.rows_new == got.height == 4


def test_book_snapshots_long_form(store: Store) -> None:
    clock = FakeClock()
    with BinanceEmulator([spot_market(100)], clock=clock) as emu:
        conn = connector(emu, clock)
        fetch_book(conn, store, "BTC/USDT", limit=5, repeat=3, interval_s=2.0)
        with pytest.raises(UsageError, match="--limit 6000: spot depth takes 1 to 5000"):
            fetch_book(conn, store, "BTC/USDT", limit=6000)
    got = stored(store, DatasetRef("binance", "spot", "BTC/USDT", "book_snapshot"))
    assert got.height == 3 * 10
    assert got["ts"].null_count() == 30  # spot depth has no exchange time
    assert got["last_update_id"].unique().sort().to_list() == [1_000_017, 1_000_034, 1_000_051]
    assert clock.sleeps.count(2.0) == 2
    first = got.filter(pl.col("seq") == got["seq"].min())
    bids = first.filter(pl.col("side") == "bid").sort("level")
    asks = first.filter(pl.col("side") == "ask").sort("level")
    assert bids["level"].to_list() == [0, 1, 2, 3, 4]
    assert bids["price"].is_sorted(descending=True) and asks["price"].is_sorted()
    assert asks["price"][0] - bids["price"][0] == pytest.approx(0.01)


def test_futures_depth_limits_are_checked_before_calling(store: Store) -> None:
    clock = FakeClock()
    with BinanceEmulator([usdm_market()], clock=clock) as emu:
        conn = connector(emu, clock, "usdm")
        with pytest.raises(UsageError, match="one of 5, 10, 20, 50, 100, 500, 1000"):
            fetch_book(conn, store, "BTC/USDT", limit=7)
        result = fetch_book(conn, store, "BTC/USDT", limit=20)
    got = stored(store, DatasetRef("binance", "usdm", "BTC/USDT:USDT", "book_snapshot"))
    assert got.height == 40 and got["ts"].null_count() == 0 and result.rows_new == 40


def test_my_trades_are_signed_and_secrets_stay_out_of_errors(store: Store) -> None:
    market = spot_market(12_000)
    market.own_every = 10  # 1,200 own trades in 8 minutes: more than one page
    clock = FakeClock()
    with BinanceEmulator([market], clock=clock, api_key=KEY, secret=SECRET) as emu:
        conn = connector(emu, clock, credentials=(KEY, SECRET))
        result = fetch_my_trades(conn, store, "BTC/USDT", DAY, utc(2024, 8, 9))
        assert any(p == "/api/v3/myTrades" for p, _, _ in emu.log)
        bad = connector(emu, clock, credentials=(KEY, "w" * 64))
        with pytest.raises(UsageError) as err:
            fetch_my_trades(bad, Store(store.root / "bad"), "BTC/USDT", DAY, utc(2024, 8, 9))
    assert result.rows_new == len(range(0, 12_000, 10)) == 1_200  # every 10th trade
    mine = stored(store, DatasetRef("binance", "spot", "BTC/USDT", "my_trades",
                                    (("account", "testnet"),)))
    assert mine["trade_id"].to_list() == list(range(1, 1_201))
    assert "Signature for this request is not valid" in str(err.value)
    assert KEY not in str(err.value) and "w" * 64 not in str(err.value)
    assert "signature=" not in str(err.value)


def test_private_calls_default_to_the_testnet_and_urls_can_be_overridden() -> None:
    creds = (KEY, SECRET)
    testnet = Connector(ExchangeConfig(), credentials=creds).exchange.urls["api"]
    live = Connector(ExchangeConfig(testnet=False), credentials=creds).exchange.urls["api"]
    public = Connector(ExchangeConfig()).exchange.urls["api"]
    assert testnet["private"] == "https://testnet.binance.vision/api/v3"
    assert live["private"] == public["private"] == "https://api.binance.com/api/v3"
    local = Connector(ExchangeConfig(market="usdm", api_urls={
        "all": "http://127.0.0.1:9", "fapiPublic": "http://127.0.0.1:8/x"})).exchange.urls["api"]
    assert local["public"] == "http://127.0.0.1:9/api/v3"
    assert local["dapiPublic"] == "http://127.0.0.1:9/dapi/v1"
    assert local["fapiPublic"] == "http://127.0.0.1:8/x"
    with pytest.raises(UsageError, match="--exchange 'kraken': fetch supports binance"):
        Connector(ExchangeConfig(exchange="kraken"))


def test_a_synth_day_served_by_the_emulator_comes_back_whole(store: Store) -> None:
    from botclave_cli.data.synth.config import SynthConfig
    from botclave_cli.data.synth.generate import generate
    from tests.emulator.binance_rest import agg_trades_from_store_trades

    synth = generate(SynthConfig(trades_per_day=5_000, book_interval_ms=1_000, book_levels=40))
    market = EmuMarket("BTCUSDT", "spot", "BTC", "USDT", "0.01", "0.00001",
                       agg_trades_from_store_trades(synth.trades))
    clock = FakeClock()
    with BinanceEmulator([market], clock=clock) as emu:
        conn = connector(emu, clock)
        result = fetch_trades(conn, store, "BTC/USDT", utc(2024, 1, 1), utc(2024, 1, 1, 6))
        fetch_ohlcv(conn, store, "BTC/USDT", utc(2024, 1, 1), utc(2024, 1, 1, 6))
    got = stored(store, DatasetRef("binance", "spot", "BTC/USDT", "agg_trades"))
    six_hours = pl.col("ts") < utc(2024, 1, 1, 6)
    tape = synth.trades.filter(six_hours).sort("trade_id")
    assert result.rows_new == tape.height and result.gaps == []
    assert got["agg_id"].to_list() == tape["trade_id"].to_list()
    assert got["side"].to_list() == tape["side"].to_list()
    assert got["price"].to_list() == tape["price"].to_list()
    assert got["qty"].to_list() == tape["qty"].to_list()
    assert got["ts"].dt.epoch("ms").to_list() == (tape["ts"].dt.epoch("us") // 1000).to_list()
    # candles the emulator built from the served trades against synth's own integer-tick candles
    candles = stored(store, DatasetRef("binance", "spot", "BTC/USDT", "ohlcv",
                                       (("timeframe", "1m"),)))
    own = synth.ohlcv.filter(six_hours).sort("ts")
    assert candles["ts"].to_list() == own["ts"].to_list()
    for column in ("open", "high", "low", "close"):
        assert candles[column].to_list() == own[column].to_list()
    assert candles["volume"].to_list() == pytest.approx(own["volume"].to_list(), abs=1e-8)
