"""Binance public data archives: hand-written files in every layout the archive uses."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import polars as pl
import pytest

from botclave_cli.data.importers.binance_archive import parse_name, read_binance_archive
from botclave_cli.errors import DataError, UsageError

# 2024-08-08 23:54:15.342 UTC in ms; 2025-01-02 00:00:00 UTC in us
T_MS = 1_723_161_255_342
T_US_2025 = 1_735_776_000_000_000

SPOT_TRADES = (
    f"3735683259,61837.63000000,0.02000000,1236.75260000,{T_MS},True,True\n"
    f"3735683260,61837.64000000,0.00100000,61.83764000,{T_MS + 58},False,True\n"
    f"3735683262,61837.64000000,0.50000000,30918.82000000,{T_MS + 58},False,True\n"
)
FUTURES_TRADES = (
    "id,price,qty,quote_qty,time,is_buyer_maker\n"
    f"5266583935,61800.30,0.006,370.8018,{T_MS + 980},false\n"
    f"5266583936,61800.30,0.199,12298.2597,{T_MS + 1002},true\n"
)


def write(path: Path, text: str, zipped: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if zipped:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(path.name.replace(".zip", ".csv"), text)
    else:
        path.write_text(text)
    return path


def frame(parsed):
    ((kind, levels, df),) = parsed.frames
    return kind, levels, df


def test_names() -> None:
    n = parse_name("BTCUSDT-aggTrades-2024-08-08.zip")
    assert (n.symbol, n.kind, n.timeframe) == ("BTCUSDT", "aggTrades", None)
    assert n.period == (dt.date(2024, 8, 8), dt.date(2024, 8, 9))
    m = parse_name("BTCUSD_PERP-1h-2024-12.zip")
    assert (m.symbol, m.kind, m.timeframe) == ("BTCUSD_PERP", "klines", "1h")
    assert m.period == (dt.date(2024, 12, 1), dt.date(2025, 1, 1))
    assert parse_name("trades.csv").kind is None


def test_spot_trades_without_header_ms(tmp_path: Path) -> None:
    parsed = read_binance_archive([write(tmp_path / "BTCUSDT-trades-2024-08-08.csv", SPOT_TRADES)])
    kind, levels, df = frame(parsed)
    assert (kind, levels, parsed.market, parsed.symbol) == ("trades", (), "spot", "BTC/USDT")
    assert parsed.notes == ["BTCUSDT-trades-2024-08-08.csv: times in ms"]
    assert df["trade_id"].to_list() == [3735683259, 3735683260, 3735683262]
    assert df["side"].to_list() == ["sell", "buy", "buy"]  # isBuyerMaker True -> aggressor sold
    assert df["price"].to_list() == [61837.63, 61837.64, 61837.64]
    assert df["qty"].to_list() == [0.02, 0.001, 0.5]
    assert df["ts"].dt.epoch("us").to_list() == [
        T_MS * 1000,
        (T_MS + 58) * 1000,
        (T_MS + 58) * 1000,
    ]


def test_futures_trades_with_header_zipped(tmp_path: Path) -> None:
    path = write(
        tmp_path / "futures" / "um" / "BTCUSDT-trades-2024-08-08.zip", FUTURES_TRADES, True
    )
    parsed = read_binance_archive([path])
    kind, _, df = frame(parsed)
    assert (parsed.market, parsed.symbol, parsed.qty_unit) == ("usdm", "BTC/USDT:USDT", "base")
    assert parsed.notes == ["BTCUSDT-trades-2024-08-08.zip: times in ms, with header"]
    assert df["side"].to_list() == ["buy", "sell"]
    assert df["ts"].dt.epoch("ms").to_list() == [T_MS + 980, T_MS + 1002]


def test_header_alone_means_futures_and_coinm_names(tmp_path: Path) -> None:
    usdm = read_binance_archive([write(tmp_path / "BTCUSDT-trades-2024-08-08.csv", FUTURES_TRADES)])
    assert usdm.market == "usdm"
    cm = read_binance_archive(
        [
            write(
                tmp_path / "BTCUSD_PERP-trades-2024-08-08.csv",
                FUTURES_TRADES.replace("quote_qty", "base_qty"),
            )
        ]
    )
    assert (cm.market, cm.symbol, cm.qty_unit) == ("coinm", "BTC/USD:BTC", "contracts")
    spot = read_binance_archive([tmp_path / "BTCUSDT-trades-2024-08-08.csv"], market="spot")
    assert spot.symbol == "BTC/USDT"


def test_agg_trades_spot_zip(tmp_path: Path) -> None:
    text = (
        f"100,61837.63,0.5,200,202,{T_MS},True,True\n"
        f"101,61837.64,0.25,203,203,{T_MS + 1},False,True\n"
    )
    path = write(tmp_path / "BTCUSDT-aggTrades-2024-08-08.zip", text, True)
    kind, _, df = frame(read_binance_archive([path]))
    assert kind == "agg_trades"
    assert df.select("agg_id", "first_trade_id", "last_trade_id", "side", "qty").rows() == [
        (100, 200, 202, "sell", 0.5),
        (101, 203, 203, "buy", 0.25),
    ]


def test_microseconds_detected_on_2025_spot_file(tmp_path: Path) -> None:
    text = (
        f"4000000000,96000.10,0.1,9600.01,{T_US_2025 + 123_456},False,True\n"
        f"4000000001,96000.20,0.2,19200.04,{T_US_2025 + 999_999},True,True\n"
    )
    parsed = read_binance_archive([write(tmp_path / "BTCUSDT-trades-2025-01-02.csv", text)])
    _, _, df = frame(parsed)
    assert parsed.notes == ["BTCUSDT-trades-2025-01-02.csv: times in us"]
    # the microseconds survive: 00:00:00.123456 and 00:00:00.999999
    assert df["ts"].to_list() == [
        dt.datetime(2025, 1, 2, 0, 0, 0, 123_456, tzinfo=dt.UTC),
        dt.datetime(2025, 1, 2, 0, 0, 0, 999_999, tzinfo=dt.UTC),
    ]


def test_unit_checked_against_file_name(tmp_path: Path) -> None:
    # microsecond values in a file named for 2024-08-09: read as us they fall on 2025-01-02
    text = f"1,96000.1,0.1,1,{T_US_2025},False,True\n2,96000.1,0.1,1,{T_US_2025 + 5},False,True\n"
    path = write(tmp_path / "BTCUSDT-trades-2024-08-09.csv", text)
    with pytest.raises(
        DataError,
        match=r"BTCUSDT-trades-2024-08-09.csv: time read as us falls "
        r"on 2025-01-02, not in the period 2024-08-09",
    ):
        read_binance_archive([path])


def test_klines_with_header_and_timeframe(tmp_path: Path) -> None:
    day = 1_723_075_200_000  # 2024-08-08 00:00 UTC, ms
    text = (
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
        "taker_buy_volume,taker_buy_quote_volume,ignore\n"
        f"{day},61000.1,61050,60990.5,61020,12.5,{day + 59_999},762500.5,1500,6,366000,0\n"
        f"{day + 120_000},61020,61030,61000,61010,3,{day + 179_999},183000,300,1,61000,0\n"
    )
    parsed = read_binance_archive([write(tmp_path / "BTCUSDT-1m-2024-08-08.csv", text)])
    kind, levels, df = frame(parsed)
    assert (kind, levels, parsed.market) == ("ohlcv", (("timeframe", "1m"),), "usdm")
    assert df.select("open", "high", "low", "close", "volume", "trade_count").row(0) == (
        61000.1,
        61050.0,
        60990.5,
        61020.0,
        12.5,
        1500,
    )
    assert df["ts"].dt.epoch("ms").to_list() == [day, day + 120_000]


BAD = [
    (f"3735683261,61837.64,0.1,1.0,{T_MS + 60}\n", "missing column is_buyer_maker"),
    (f"3735683261,abc,0.1,1.0,{T_MS + 60},True,True\n", "non-numeric price abc"),
    (f"3735683261,61837.64,-0.1,1.0,{T_MS + 60},True,True\n", "negative qty -0.1"),
    (f"3735683261,61837.64,0.1,1.0,{T_MS - 2000},True,True\n", "behind an earlier trade"),
    ("3735683261,61837.64,0.1,1.0,1262304000,True,True\n", "has 10 digits"),
    (
        f"3735683261,61837.64,0.1,1.0,{T_MS + 86_400_000},True,True\n",
        "outside the file name's period 2024-08-08",
    ),
    (f"3735683261,61837.64,0.1,1.0,{T_MS + 60},maybe,True\n", "is_buyer_maker maybe"),
    ("\n", "empty line"),
]


@pytest.mark.parametrize(("line", "reason"), BAD)
def test_bad_rows_named_with_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    lines = SPOT_TRADES.splitlines(keepends=True)
    text = "".join(lines[:2]) + line + lines[2]
    path = write(tmp_path / "BTCUSDT-trades-2024-08-08.csv", text)
    with pytest.raises(DataError, match=r"BTCUSDT-trades-2024-08-08.csv:3: ") as err:
        read_binance_archive([path])
    assert reason in str(err.value)
    parsed = read_binance_archive([path], skip_bad=True)
    assert [(b.file, b.line) for b in parsed.bad] == [("BTCUSDT-trades-2024-08-08.csv", 3)]
    assert frame(parsed)[2]["trade_id"].to_list() == [3735683259, 3735683260, 3735683262]


def test_before_2010_is_bad(tmp_path: Path) -> None:
    text = SPOT_TRADES + "3735683263,1,1,1,1200000000000,True,True\n"
    path = write(tmp_path / "BTCUSDT-trades-2024-08-08.csv", text)
    with pytest.raises(DataError, match=r":4: time before 2010-01-01"):
        read_binance_archive([path], max_disorder_ms=1e15)


def test_header_missing_a_needed_column(tmp_path: Path) -> None:
    path = write(tmp_path / "BTCUSDT-trades-2024-08-08.csv", "id,price,qty,time\n1,2,3,4\n")
    with pytest.raises(
        DataError,
        match=r"BTCUSDT-trades-2024-08-08.csv:1: header lacks column "
        r"is_buyer_maker",
    ):
        read_binance_archive([path])


def test_files_of_two_symbols_refused(tmp_path: Path) -> None:
    a = write(tmp_path / "BTCUSDT-trades-2024-08-08.csv", SPOT_TRADES)
    b = write(tmp_path / "ETHUSDT-trades-2024-08-08.csv", SPOT_TRADES)
    with pytest.raises(UsageError, match="mix symbols"):
        read_binance_archive([a, b])


def test_two_days_in_one_import(tmp_path: Path) -> None:
    t2 = T_MS + 3_600_000  # 2024-08-09 00:54
    day2 = f"3735684259,61837.6,0.1,1,{t2},True,True\n3735684260,61837.7,0.2,1,{t2 + 1},True,True\n"
    a = write(tmp_path / "BTCUSDT-trades-2024-08-08.csv", SPOT_TRADES)
    b = write(tmp_path / "BTCUSDT-trades-2024-08-09.csv", day2)
    _, _, df = frame(read_binance_archive([a, b]))
    assert df.height == 5
    assert df["ts"].dt.date().unique().sort().to_list() == [
        dt.date(2024, 8, 8),
        dt.date(2024, 8, 9),
    ]
    assert pl.Series(df["trade_id"]).n_unique() == 5


def test_truncated_last_line_and_broken_zip(tmp_path: Path) -> None:
    cut = SPOT_TRADES[: SPOT_TRADES.rindex(",61837.64") + 5]  # ends inside the price, no newline
    path = write(tmp_path / "BTCUSDT-trades-2024-08-08.csv", cut)
    with pytest.raises(DataError, match=r"BTCUSDT-trades-2024-08-08.csv:3: truncated last line "
                                        r"\(missing column qty"):
        read_binance_archive([path])
    z = write(tmp_path / "BTCUSDT-trades-2024-08-09.zip", SPOT_TRADES, zipped=True)
    z.write_bytes(z.read_bytes()[:40])
    with pytest.raises(DataError, match=r"BTCUSDT-trades-2024-08-09.zip: unreadable zip archive"):
        read_binance_archive([z])


def test_kind_and_symbol_options_for_renamed_files(tmp_path: Path) -> None:
    path = write(tmp_path / "my_trades.csv", "100,61837.63,0.5,200,202,1723161255342,True,True\n")
    with pytest.raises(UsageError, match="not a standard archive name"):
        read_binance_archive([path])
    parsed = read_binance_archive([path], kind="agg_trades", symbol="BTC/USDT", market="spot")
    kind, _, df = frame(parsed)
    assert (kind, parsed.symbol, df["agg_id"].to_list()) == ("agg_trades", "BTC/USDT", [100])
