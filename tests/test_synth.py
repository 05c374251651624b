"""The synthetic market: determinism, a consistent book, id continuity, OHLCV, the CLI.

Checks are independent re-implementations: a plain dict order book replayed from the snapshot
and the diffs, a per-minute aggregation with polars group_by, Python loops over the tape.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from botclave_cli.data.store import Store
from botclave_cli.data.synth import SynthConfig, generate, read_truth, write_synth

SMALL = SynthConfig(trades_per_day=20_000, book_interval_ms=1_000)


@pytest.fixture(scope="module")
def market():
    return generate(SMALL)


def test_same_config_gives_identical_frames_and_truth(market):
    again = generate(SMALL)
    for kind, df in market.frames().items():
        assert_frame_equal(df, again.frames()[kind], check_exact=True)
    assert market.truth == again.truth


def test_other_seed_gives_other_market(market):
    other = generate(SMALL.model_copy(update={"seed": 8}))
    assert not other.trades["price"].equals(market.trades["price"])


def test_parquet_is_byte_identical(tmp_path):
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    wa = write_synth(a, SMALL)
    write_synth(b, SMALL)
    files = sorted(p.relative_to(a.root) for p in a.root.rglob("*.parquet"))
    assert len(files) == 5
    for rel in files:
        assert (a.root / rel).read_bytes() == (b.root / rel).read_bytes(), rel
    assert (a.root / wa.truth_path.relative_to(a.root)).read_bytes() == (
        b.root / wa.truth_path.relative_to(a.root)).read_bytes()


def test_trade_ids_consecutive_and_sorted(market):
    t = market.trades
    ids = t["trade_id"].to_numpy()
    assert (np.diff(ids) == 1).all()
    assert t["ts"].is_sorted()
    assert set(t["side"].unique()) == {"buy", "sell"}
    assert t["qty"].min() > 0


def test_update_ids_follow_the_spot_rule(market):
    snap_last = market.book_snapshot["last_update_id"][0]
    diffs = (market.book_diff.group_by("seq", maintain_order=True)
             .agg(pl.first("first_update_id", "last_update_id", "prev_update_id"), pl.len()))
    first = diffs["first_update_id"].to_list()
    last = diffs["last_update_id"].to_list()
    prev = diffs["prev_update_id"].to_list()
    assert first[0] == snap_last + 1
    for i in range(1, len(first)):
        assert first[i] == last[i - 1] + 1
        assert prev[i] == last[i - 1]
    # one update id per level row; quotes carry the id of their diff
    assert (diffs["last_update_id"] - diffs["first_update_id"] + 1).to_list() == \
        diffs["len"].to_list()
    assert market.quotes["update_id"].to_list() == last
    assert diffs.height == 86_400 == market.quotes.height


def _replay(market):
    """Yield (interval k, bids, asks) after each diff, from a dict book built from scratch."""
    snap = market.book_snapshot.filter(pl.col("seq") == 0)
    bids = {p: q for s, p, q in snap.select("side", "price", "qty").iter_rows() if s == "bid"}
    asks = {p: q for s, p, q in snap.select("side", "price", "qty").iter_rows() if s == "ask"}
    yield -1, bids, asks
    rows = market.book_diff.select("seq", "side", "price", "qty").iter_rows()
    current, pending = None, []
    for seq, side, price, qty in [*rows, (None, None, None, None)]:
        if seq != current and current is not None:
            for s, p, q in pending:
                if s is None:
                    continue
                book = bids if s == "bid" else asks
                if q == 0:
                    book.pop(p, None)
                else:
                    book[p] = q
            yield (current - 1) // 3, bids, asks
            pending = []
        current = seq
        pending.append((side, price, qty))


def test_replayed_book_never_crosses_and_matches_every_quote(market):
    quotes = market.quotes.select("bid_price", "bid_qty", "ask_price", "ask_qty").rows()
    checked = 0
    for k, bids, asks in _replay(market):
        if k < 0:
            continue
        bb, ba = max(bids), min(asks)
        assert bb < ba, f"crossed after diff {k}"
        assert (bb, bids[bb], ba, asks[ba]) == quotes[k]
        checked += 1
    assert checked == 86_400


def test_trades_hit_the_published_book(market):
    """Every interval's buys start at the best ask of the book published before them and walk
    up level by level (sells: down from the best bid); no level gives more than it showed."""
    dt_us = SMALL.interval_us
    t = market.trades.select(
        k=(pl.col("ts").dt.epoch("us") - SMALL.start_us) // dt_us, price=pl.col("price"),
        qty=pl.col("qty"), side=pl.col("side"))
    by_k: dict[int, list] = defaultdict(list)
    for k, price, qty, side in t.iter_rows():
        by_k[k].append((price, qty, side))
    prints = 0
    state = None
    for k, bids, asks in _replay(market):
        if state is not None:
            before_bids, before_asks = state
            taken: dict[tuple[str, float], float] = defaultdict(float)
            last = {"buy": None, "sell": None}
            for price, qty, side in by_k.get(k + 0, []):
                book = before_asks if side == "buy" else before_bids
                levels = sorted(book) if side == "buy" else sorted(book, reverse=True)
                assert price in book, f"interval {k}: {side} at {price} not in the book"
                if last[side] is None:
                    assert price == levels[0], f"interval {k}: {side} not at the touch"
                elif price != last[side]:
                    # walked exactly one level further
                    assert levels.index(price) == levels.index(last[side]) + 1
                taken[side, price] += qty
                assert taken[side, price] <= book[price] + 1e-9
                last[side] = price
                prints += 1
        state = (dict(bids), dict(asks))
        if k + 1 >= 86_400:
            break
    assert prints == market.trades.height


def test_ohlcv_equals_an_independent_aggregation(market):
    t = market.trades.with_columns(minute=pl.col("ts").dt.truncate("1m"))
    agg = (t.group_by("minute").agg(
        pl.col("price").sort_by("trade_id").first().alias("open"),
        pl.col("price").max().alias("high"), pl.col("price").min().alias("low"),
        pl.col("price").sort_by("trade_id").last().alias("close"),
        pl.col("qty").sum().alias("volume"), pl.len().alias("trade_count"))
        .sort("minute"))
    o = market.ohlcv
    assert o.height == 1_440
    assert (o["ts"].dt.epoch("us").diff().drop_nulls() == 60_000_000).all()
    assert o["ts"][0].timestamp() * 1e6 == SMALL.start_us
    joined = o.join(agg, left_on="ts", right_on="minute", how="left", suffix="_x")
    traded = joined.filter(pl.col("trade_count_x").is_not_null())
    for c in ("open", "high", "low", "close"):
        assert (traded[c] == traded[f"{c}_x"]).all(), c
    assert (traded["trade_count"] == traded["trade_count_x"]).all()
    assert np.allclose(traded["volume"], traded["volume_x"], rtol=0, atol=1e-9)
    empty = joined.filter(pl.col("trade_count_x").is_null())
    assert (empty["volume"] == 0).all() and (empty["high"] == empty["low"]).all()
    assert o["volume"].sum() == pytest.approx(market.trades["qty"].sum())


def test_cli_writes_datasets_and_truth(tmp_path):
    from botclave_cli.cli.app import app

    data = tmp_path / "store"
    result = CliRunner().invoke(app, ["synth", "--trades-per-day", "20000",
                                      "--book-interval-ms", "1000", "--data-dir", str(data),
                                      "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["rows"]["quotes"] == 86_400 and out["rows"]["ohlcv"] == 1_440
    truth = read_truth(data / "synth/spot/BTC-USDT/truth.json")
    assert truth.seed == 7 and len(truth.events) >= 9
    store = Store(data)
    for kind in ("trades", "book_snapshot", "book_diff", "quotes"):
        assert (data / f"synth/spot/BTC-USDT/{kind}/date=2024-01-01/data.parquet").exists()
    m = store.manifest(next(r for r in store.datasets() if r.kind == "trades"))
    assert m.source == "synth" and m.tick_size == 1.0 and m.tick_source == "synth"
    assert m.row_count == out["rows"]["trades"]
    ohlcv = data / "synth/spot/BTC-USDT/ohlcv/timeframe=1m/date=2024-01-01/data.parquet"
    assert pl.read_parquet(ohlcv).height == 1_440


def test_cli_bad_option_is_one_line_exit_2(tmp_path):
    from botclave_cli.cli.app import app

    result = CliRunner().invoke(app, ["synth", "--days", "0", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--days" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["synth", "--from", "2024-01-01T12:00",
                                      "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "midnight" in result.output
    result = CliRunner().invoke(app, ["synth", "--tick-size", "0.001234567891",
                                      "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--tick-size" in result.output
    assert not list(tmp_path.rglob("*.parquet"))


def test_frames_are_already_in_store_order(market):
    from botclave_cli.data.schemas import normalise

    for kind, df in market.frames().items():
        assert_frame_equal(normalise(df, kind), df, check_exact=True)


class _Recorder:
    def __init__(self):
        self.calls = []

    def start(self, total, description):
        self.calls.append(("start", total, description))

    def advance(self, amount=1):
        self.calls.append(("advance", amount))


def test_two_days_snapshot_each_midnight_and_ids_run_on(tmp_path):
    cfg = SynthConfig(trades_per_day=5_000, book_interval_ms=1_000, days=2,
                      start="2024-03-09")
    progress = _Recorder()
    written = write_synth(Store(tmp_path), cfg, progress=progress, keep_market=True)
    m = written.market
    snaps = m.book_snapshot.group_by("seq", maintain_order=True).agg(
        pl.first("ts", "last_update_id"), pl.len())
    assert snaps["seq"].to_list() == [0, 3 * 86_400]
    assert [t.isoformat() for t in snaps["ts"]] == ["2024-03-09T00:00:00+00:00",
                                                   "2024-03-10T00:00:00+00:00"]
    assert snaps["len"].to_list() == [2 * cfg.book_levels] * 2
    first_of_day2 = m.book_diff.filter(pl.col("seq") == 3 * 86_400 + 1)["first_update_id"][0]
    assert first_of_day2 == snaps["last_update_id"][1] + 1
    assert (np.diff(m.trades["trade_id"].to_numpy()) == 1).all()
    assert m.ohlcv.height == 2 * 1_440
    for kind, path in written.datasets.items():
        days = sorted(p.parent.name for p in path.glob("date=*/data.parquet"))
        assert days == ["date=2024-03-09", "date=2024-03-10"], kind
    by_day = defaultdict(set)
    for e in m.truth.events:
        by_day[(e.start_us - cfg.start_us) // 86_400_000_000].add(e.kind)
    assert by_day[0] == by_day[1] == set(m.truth.detector_params["kinds"])
    starts = [c for c in progress.calls if c[0] == "start"]
    advanced = sum(c[1] for c in progress.calls if c[0] == "advance")
    assert len(starts) == 2 and advanced == sum(c[1] for c in starts)


def test_regenerating_replaces_the_previous_market(tmp_path):
    store = Store(tmp_path)
    write_synth(store, SynthConfig(trades_per_day=5_000, book_interval_ms=1_000, seed=1))
    derived = tmp_path / "synth/spot/BTC-USDT/footprint/params=abc/manifest.json"
    derived.parent.mkdir(parents=True)
    derived.write_text("{}")
    second = write_synth(store, SynthConfig(trades_per_day=5_000, book_interval_ms=1_000,
                                            seed=2))
    assert not derived.exists()
    assert read_truth(second.truth_path).seed == 2
    trades = pl.read_parquet(second.datasets["trades"] / "date=2024-01-01/data.parquet")
    assert trades.height == second.rows["trades"]
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]


def test_cli_plain_prints_one_summary_line_quiet_prints_nothing(tmp_path):
    from botclave_cli.cli.app import app

    args = ["synth", "--trades-per-day", "5000", "--book-interval-ms", "1000", "--seed", "3",
            "--data-dir", str(tmp_path)]
    plain = CliRunner().invoke(app, args)
    assert plain.exit_code == 0, plain.output
    lines = plain.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synth BTC/USDT 2024-01-01 +1d seed 3: ")
    assert "truth.json" in lines[0]
    quiet = CliRunner().invoke(app, [*args, "--quiet"])
    assert quiet.exit_code == 0 and quiet.stdout == ""


def test_a_store_that_cannot_be_written_is_one_line_exit_1_not_an_internal_error(tmp_path):
    from botclave_cli.cli.app import app

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    r = CliRunner().invoke(app, ["synth", "--data-dir", str(blocker / "data"),
                                 "--trades-per-day", "5000"])
    assert r.exit_code == 1
    assert "Not a directory" in r.output and str(blocker) in r.output
    assert "internal error" not in r.output and "Traceback" not in r.output


def test_two_days_one_book_across_midnight():
    """Generated day by day, the book carries over midnight: replayed from the first snapshot
    through both days' diffs it matches every quote, and at midnight it holds exactly what
    the second day's snapshot lists (its top levels per side)."""
    two = generate(SMALL.model_copy(update={"days": 2}))
    quotes = two.quotes.select("bid_price", "bid_qty", "ask_price", "ask_qty").rows()
    depth = SMALL.book_levels
    snap = two.book_snapshot.filter(pl.col("seq") == 3 * 86_400)
    checked = 0
    for k, bids, asks in _replay(two):
        if k < 0:
            continue
        assert (max(bids), bids[max(bids)], min(asks), asks[min(asks)]) == quotes[k]
        checked += 1
        if k == 86_399:
            top_b = sorted(bids.items(), reverse=True)[:depth]
            top_a = sorted(asks.items())[:depth]
            assert snap.filter(pl.col("side") == "bid").select("price", "qty").rows() == top_b
            assert snap.filter(pl.col("side") == "ask").select("price", "qty").rows() == top_a
    assert checked == 2 * 86_400
    assert (np.diff(two.trades["trade_id"].to_numpy()) == 1).all()
