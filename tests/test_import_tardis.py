"""Tardis.dev CSV: shared samples (checked against Python's csv module), hand-written files."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import polars as pl
import pytest

from botclave_cli.data.importers.tardis import instrument, read_tardis
from botclave_cli.errors import DataError, UsageError
from tests.conftest import shared_file


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def only(parsed, kind: str) -> pl.DataFrame:
    found = [df for k, _, df in parsed.frames if k == kind]
    assert len(found) == 1, [k for k, _, _ in parsed.frames]
    return found[0]


def test_instruments() -> None:
    assert instrument("bitmex", "XBTUSD") == ("bitmex", "coinm", "BTC/USD:BTC", "contracts")
    assert instrument("deribit", "ETH-PERPETUAL") == (
        "deribit",
        "coinm",
        "ETH/USD:ETH",
        "contracts",
    )
    assert instrument("binance-futures", "BTCUSDT") == ("binance", "usdm", "BTC/USDT:USDT", "base")
    assert instrument("binance", "ethusdt") == ("binance", "spot", "ETH/USDT", "base")
    assert instrument("huobi-dm-swap", "BTC-USD") == ("huobi", "coinm", "BTC/USD:BTC", "contracts")


def test_bitmex_trades_string_ids_in_contracts() -> None:
    path = shared_file("tardis/bitmex_trades_XBTUSD.csv")
    want = rows_of(path)
    parsed = read_tardis([path])
    df = only(parsed, "trades")
    assert (parsed.exchange, parsed.market, parsed.symbol, parsed.qty_unit) == (
        "bitmex",
        "coinm",
        "BTC/USD:BTC",
        "contracts",
    )
    assert df.height == len(want) == 10
    assert df["trade_id"].null_count() == 10
    assert df["trade_uid"].to_list() == [r["id"] for r in want]
    assert df["qty"].to_list() == [float(r["amount"]) for r in want]
    assert df["side"].to_list() == [r["side"] for r in want]
    assert df["ts"].dt.epoch("us").to_list() == [int(r["timestamp"]) for r in want]
    assert df["ts_local"].dt.epoch("us").to_list() == [int(r["local_timestamp"]) for r in want]


@pytest.mark.parametrize("depth", [5, 25])
def test_book_snapshot_n(depth: int) -> None:
    path = shared_file(f"tardis/binance-futures_book_snapshot_{depth}_BTCUSDT.csv")
    want = rows_of(path)
    parsed = read_tardis([path])
    df = only(parsed, "book_snapshot")
    assert (parsed.market, parsed.symbol) == ("usdm", "BTC/USDT:USDT")
    assert df.height == len(want) * depth * 2
    row = want[3]
    got = df.filter(pl.col("seq") == 3)
    for side, name in (("bid", "bids"), ("ask", "asks")):
        levels = got.filter(pl.col("side") == side).sort("level")
        assert levels["level"].to_list() == list(range(depth))
        assert levels["price"].to_list() == [float(row[f"{name}[{i}].price"]) for i in range(depth)]
        assert levels["qty"].to_list() == [float(row[f"{name}[{i}].amount"]) for i in range(depth)]


def test_deribit_incremental_snapshot_rows() -> None:
    path = shared_file("tardis/deribit_incremental_book_L2_BTC-PERPETUAL.csv")
    want = rows_of(path)
    parsed = read_tardis([path])
    assert parsed.qty_unit == "contracts" and parsed.symbol == "BTC/USD:BTC"
    assert all(r["is_snapshot"] == "true" for r in want)
    df = only(parsed, "book_snapshot")
    assert df["seq"].unique().to_list() == [0]  # one message
    asks = df.filter(pl.col("side") == "ask").sort("level")
    assert asks["price"].to_list() == sorted(float(r["price"]) for r in want if r["side"] == "ask")


def test_huobi_quotes() -> None:
    path = shared_file("tardis/huobi-dm-swap_quotes_BTC-USD.csv")
    want = rows_of(path)
    df = only(read_tardis([path]), "quotes")
    assert df.select("bid_price", "bid_qty", "ask_price", "ask_qty").rows() == [
        (
            float(r["bid_price"]),
            float(r["bid_amount"]),
            float(r["ask_price"]),
            float(r["ask_amount"]),
        )
        for r in want
    ]
    assert df["seq"].to_list() == list(range(len(want)))


HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"


def test_incremental_messages_and_update_counter(tmp_path: Path) -> None:
    t = 1_700_000_000_000_000
    text = HEADER + "".join(
        [
            f"binance-futures,BTCUSDT,{t},{t + 5},true,bid,100.0,1\n",
            f"binance-futures,BTCUSDT,{t},{t + 5},true,bid,100.5,2\n",
            f"binance-futures,BTCUSDT,{t},{t + 5},true,ask,101.0,3\n",
            f"binance-futures,BTCUSDT,{t + 100},{t + 105},false,bid,100.5,0\n",
            f"binance-futures,BTCUSDT,{t + 100},{t + 105},false,ask,101.5,4\n",
            f"binance-futures,BTCUSDT,{t + 200},{t + 205},false,ask,101.0,1.5\n",
        ]
    )
    path = tmp_path / "binance-futures_incremental_book_L2_2023-11-14_BTCUSDT.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    parsed = read_tardis([path])
    snap, diff = only(parsed, "book_snapshot"), only(parsed, "book_diff")
    assert snap.select("seq", "side", "level", "price").rows() == [
        (0, "ask", 0, 101.0),
        (0, "bid", 0, 100.5),
        (0, "bid", 1, 100.0),
    ]
    assert diff.select(
        "seq", "first_update_id", "last_update_id", "prev_update_id", "side", "price", "qty"
    ).rows() == [
        (3, 1, 1, 0, "ask", 101.5, 4.0),
        (3, 1, 1, 0, "bid", 100.5, 0.0),
        (5, 2, 2, 1, "ask", 101.0, 1.5),
    ]
    assert parsed.params == {"update_ids": "tardis message counter"}


TRADES = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("binance,BTCUSDT,1700000000000,1700000000000100,9,buy,100,1", "not in microseconds"),
        ("binance,BTCUSDT,1700000000000300,1700000000000400,9,unknown,100,1", "no aggressor side"),
        ("binance,BTCUSDT,1700000000000300,1700000000000400,9,buy,100", "missing column amount"),
        ("binance,BTCUSDT,1700000000000300,1700000000000400,9,buy,x,1", "non-numeric price x"),
        ("binance,BTCUSDT,1700000000000300,1700000000000400,9,buy,100,-2", "negative amount -2"),
    ],
)
def test_bad_trade_rows(tmp_path: Path, row: str, reason: str) -> None:
    good = (
        "binance,BTCUSDT,1700000000000000,1700000000000100,7,buy,100.5,0.25\n"
        "binance,BTCUSDT,1700000000000200,1700000000000300,8,sell,100.0,0.5\n"
    )
    path = tmp_path / "t.csv"
    path.write_text(TRADES + good + row + "\n")
    with pytest.raises(DataError, match=r"t.csv:4: ") as err:
        read_tardis([path])
    assert reason in str(err.value)
    parsed = read_tardis([path], skip_bad=True)
    df = only(parsed, "trades")
    assert df["trade_id"].to_list() == [7, 8] and df["trade_uid"].null_count() == 2
    assert (parsed.market, parsed.symbol) == ("spot", "BTC/USDT")
    assert [(b.line, reason in b.reason) for b in parsed.bad] == [(4, True)]


def test_no_good_row_names_the_first_bad_one(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(TRADES + "x,y,1,2,3,buy,1,1\n")
    for skip in (False, True):
        with pytest.raises(DataError, match=r"t.csv:2: timestamp 1 is not in microseconds"):
            read_tardis([path], skip_bad=skip)
    empty = tmp_path / "e.csv"
    empty.write_text(TRADES)
    with pytest.raises(DataError, match=r"e.csv: no good row \(empty file\)"):
        read_tardis([empty])


def test_unknown_instrument_needs_symbol_and_market(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(TRADES + "someex,WEIRD-THING,1700000000000000,1700000000000100,1,buy,5,1\n")
    with pytest.raises(UsageError, match="cannot map Tardis symbol 'WEIRD-THING'"):
        read_tardis([path])
    parsed = read_tardis([path], symbol="WEIRD/USD", market="spot", exchange="someex")
    assert (parsed.exchange, parsed.market, parsed.symbol) == ("someex", "spot", "WEIRD/USD")
