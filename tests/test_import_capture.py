"""Capture parser: hand-written captures and the shared Binance captures."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from botclave_cli.data.importers.capture import read_capture
from botclave_cli.errors import DataError, UsageError
from tests.conftest import shared_file

T0 = 1_723_161_255_000  # ms, 2024-08-08 23:54:15 UTC


def trade(t: int, p: str, q: str, ms: int, m: bool, futures: bool = False) -> dict:
    data = {"e": "trade", "E": ms + 1, "s": "BTCUSDT", "t": t, "p": p, "q": q, "T": ms, "m": m}
    data.update({"X": "MARKET"} if futures else {"M": True})
    return {"stream": "btcusdt@trade", "data": data}


def diff(U: int, u: int, ms: int, b: list, a: list, pu: int | None = None) -> dict:
    data = {"e": "depthUpdate", "E": ms, "s": "BTCUSDT", "U": U, "u": u, "b": b, "a": a}
    if pu is not None:
        data["pu"] = pu
    return {"stream": "btcusdt@depth@100ms", "data": data}


def ticker(u: int) -> dict:
    return {
        "stream": "btcusdt@bookTicker",
        "data": {"u": u, "s": "BTCUSDT", "b": "100.0", "B": "1.5", "a": "100.1", "A": "2.0"},
    }


SNAPSHOT = {
    "lastUpdateId": 12,
    "bids": [["100.0", "1.0"], ["99.9", "2.0"]],
    "asks": [["100.1", "3.0"]],
}


def messages() -> list[dict]:
    return [
        diff(10, 12, T0, [["100.0", "1.0"]], []),
        trade(1, "100.1", "0.5", T0 + 10, False),
        SNAPSHOT,
        diff(13, 15, T0 + 100, [["99.9", "0"]], [["100.1", "2.5"], ["100.2", "1"]]),
        ticker(15),
        trade(2, "100.0", "0.25", T0 + 150, True),
        diff(16, 16, T0 + 200, [], []),
    ]


def write_capture(path: Path, msgs: list, unit: str = "ns", start: int = 0) -> Path:
    scale = {"ns": 1_000_000, "us": 1_000, "ms": 1}[unit]
    lines = []
    for i, msg in enumerate(msgs):
        local_ms = T0 - 1270 + 5 * (start + i)
        body = msg if isinstance(msg, str) else json.dumps(msg)
        lines.append(f"{local_ms * scale + (start + i) % scale} {body}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_hand_written_capture(tmp_path: Path) -> None:
    cap = read_capture([write_capture(tmp_path / "c.txt", messages())])
    assert (cap.market, cap.symbol, cap.local_unit, cap.raw_symbol) == (
        "spot",
        "BTC/USDT",
        "ns",
        "BTCUSDT",
    )
    t = cap.trades
    assert t["trade_id"].to_list() == [1, 2]
    assert t["side"].to_list() == ["buy", "sell"]  # m=true: the buyer is the maker, so a sell
    assert t["price"].to_list() == [100.1, 100.0] and t["qty"].to_list() == [0.5, 0.25]
    assert t["seq"].to_list() == [1, 5]
    assert t["ts"].dt.epoch("ms").to_list() == [T0 + 10, T0 + 150]
    # ns receive time kept to the microsecond: line 1 is T0 - 1270 + 5 ms plus 1 ns
    assert t["ts_local"].dt.epoch("us").to_list()[0] == (T0 - 1270 + 5) * 1000
    d = cap.book_diff
    assert d["seq"].to_list() == [0, 3, 3, 3, 6]
    assert d.filter(pl.col("seq") == 6).row(0, named=True) | {"ts": None, "ts_local": None} == {
        "ts": None,
        "ts_local": None,
        "seq": 6,
        "first_update_id": 16,
        "last_update_id": 16,
        "prev_update_id": None,
        "side": None,
        "price": None,
        "qty": None,
    }
    assert d.filter(pl.col("seq") == 3).select("side", "price", "qty").rows() == [
        ("ask", 100.1, 2.5),
        ("ask", 100.2, 1.0),
        ("bid", 99.9, 0.0),
    ]
    s = cap.book_snapshot
    assert s.select("side", "level", "price", "qty").rows() == [
        ("ask", 0, 100.1, 3.0),
        ("bid", 0, 100.0, 1.0),
        ("bid", 1, 99.9, 2.0),
    ]
    assert s["last_update_id"].unique().to_list() == [12] and s["ts"].null_count() == 3
    q = cap.quotes
    assert q.select("seq", "update_id", "bid_price", "bid_qty", "ask_price", "ask_qty").rows() == [
        (4, 15, 100.0, 1.5, 100.1, 2.0)
    ]
    assert q["ts"].null_count() == 1  # spot bookTicker carries no exchange time


@pytest.mark.parametrize("unit", ["us", "ms"])
def test_receive_time_unit_is_detected(tmp_path: Path, unit: str) -> None:
    ns = read_capture([write_capture(tmp_path / "ns.txt", messages(), "ns")])
    other = read_capture([write_capture(tmp_path / f"{unit}.txt", messages(), unit)])
    assert other.local_unit == unit
    # the sub-ms part differs by construction; compare at ms resolution
    for kind, frame in ns.frames().items():
        a = frame["ts_local"].dt.epoch("ms")
        b = other.frames()[kind]["ts_local"].dt.epoch("ms")
        assert a.to_list() == b.to_list(), kind


def test_mixed_units_in_one_file_are_bad_lines(tmp_path: Path) -> None:
    path = write_capture(tmp_path / "c.txt", messages())
    lines = path.read_text().splitlines()
    head, body = lines[3].split(" ", 1)
    lines[3] = f"{int(head) // 1000} {body}"  # microseconds among nanoseconds
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"c.txt:4: receive time in us but the file uses ns"):
        read_capture([path])


def test_futures_detected_from_pu(tmp_path: Path) -> None:
    msgs = [diff(10, 12, T0, [["100.0", "1.0"]], [], pu=9), trade(1, "100", "1", T0, False, True)]
    cap = read_capture([write_capture(tmp_path / "f.txt", msgs)])
    assert (cap.market, cap.symbol) == ("usdm", "BTC/USDT:USDT")
    assert cap.book_diff["prev_update_id"].to_list() == [9]
    over = read_capture([tmp_path / "f.txt"], market="spot", symbol="BTC/USDT")
    assert (over.market, over.symbol) == ("spot", "BTC/USDT")


def test_trades_only_capture_detects_market_from_trade_fields(tmp_path: Path) -> None:
    spot = read_capture([write_capture(tmp_path / "s.txt", [trade(1, "1", "1", T0, False)])])
    fut = read_capture([write_capture(tmp_path / "u.txt", [trade(1, "1", "1", T0, False, True)])])
    assert (spot.market, fut.market) == ("spot", "usdm")
    with pytest.raises(UsageError, match="--market"):
        read_capture([write_capture(tmp_path / "t.txt", [SNAPSHOT])], symbol="BTC/USDT")


BAD_CASES = [
    ("garbage here", "no receive time before the message", False),
    ("garbage here", "not a Binance stream message or depth snapshot", True),
    (json.dumps(trade(3, "abc", "1", T0 + 160, False)), "non-numeric price p abc", True),
    (json.dumps(trade(3, "100", "-1", T0 + 160, False)), "negative qty q -1", True),
    (
        json.dumps(trade(3, "100", "1", 1_200_000_000_000, False)),
        "trade time T before 2010-01-01",
        True,
    ),
    (json.dumps(trade(3, "100", "1", T0 - 5000, False)), "behind an earlier trade", True),
    (json.dumps(diff(17, 18, T0 + 300, [["100.0", "x"]], [])), "non-numeric level qty x", True),
    (json.dumps(diff(17, 18, T0 + 300, [["100.0"]], [])), "book level is not [price, qty]", True),
    ('{"stream":"btcusdt@trade","data":{"e":"trade","t":', "malformed JSON message", True),
]


@pytest.mark.parametrize(("line", "reason", "has_time"), BAD_CASES)
def test_bad_line_named_by_file_and_line(
    tmp_path: Path, line: str, reason: str, has_time: bool
) -> None:
    msgs: list = messages()
    msgs.insert(6, line)
    path = write_capture(tmp_path / "bad.txt", msgs)
    if not has_time:  # the garbage line has no receive time at all
        text = path.read_text().splitlines()
        text[6] = line
        path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=rf"bad.txt:7: .*{reason.split()[0]}") as err:
        read_capture([path])
    assert reason in str(err.value)
    cap = read_capture([path], skip_bad=True)
    assert [(b.file, b.line) for b in cap.bad_lines] == [("bad.txt", 7)]
    assert reason in cap.bad_lines[0].reason
    clean = read_capture([write_capture(tmp_path / "clean.txt", messages())])
    # the good lines are all kept, in place: seq counts every line, bad ones included
    assert cap.trades["trade_id"].to_list() == clean.trades["trade_id"].to_list()
    assert cap.book_diff.height == clean.book_diff.height
    assert cap.book_diff["seq"].to_list()[-1] == 7


def test_truncated_last_line_plain_and_gzip(tmp_path: Path) -> None:
    path = write_capture(tmp_path / "cut.txt", messages())
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # cut inside the last message, no final newline
    with pytest.raises(DataError, match=r"cut.txt:7: truncated last line"):
        read_capture([path])
    gz = tmp_path / "cut.gz"
    gz.write_bytes(gzip.compress(text.encode())[:-30])  # compressed stream ends early
    partial = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(gz.read_bytes()).decode()
    complete = partial.count("\n")
    assert 0 < complete < 7 and not partial.endswith("\n")
    cap = read_capture([gz], skip_bad=True)
    assert [(b.line, b.reason) for b in cap.bad_lines] == [(complete + 1, "truncated last line")]
    assert cap.trades["seq"].max() < complete


def _split(src: Path, dst: Path, at: int) -> tuple[Path, Path]:
    with gzip.open(src, "rt") as fh:
        lines = fh.readlines()
    a, b = dst / "part1.txt", dst / "part2.gz"
    a.write_text("".join(lines[:at]))
    with gzip.open(b, "wt") as fh:
        fh.write("".join(lines[at:]))
    assert "lastUpdateId" not in "".join(lines[at:])
    return a, b


@pytest.mark.parametrize(
    ("name", "trades", "tickers", "diffs", "market", "symbol"),
    [
        ("spot_btcusdt_20240808.gz", 9757, None, None, "spot", "BTC/USDT"),
        ("spot_ethusdt_20240808.gz", 6106, None, None, "spot", "ETH/USDT"),
        ("usdm_btcusdt_20240808.gz", 21313, 66089, 6551, "usdm", "BTC/USDT:USDT"),
    ],
)
def test_shared_captures(
    name: str, trades: int, tickers: int | None, diffs: int | None, market: str, symbol: str
) -> None:
    cap = read_capture([shared_file(f"binance-ws/{name}")])
    assert (cap.market, cap.symbol, cap.local_unit) == (market, symbol, "ns")
    assert cap.trades.height == trades and cap.bad_lines == []
    assert cap.trades["trade_id"].diff().drop_nulls().unique().to_list() == [1]
    assert cap.book_snapshot["seq"].n_unique() == 1
    if tickers is not None:
        assert cap.quotes.height == tickers
        assert cap.book_diff["seq"].n_unique() == diffs
        assert cap.book_diff["prev_update_id"].null_count() == 0


def test_shared_capture_rows_match_a_json_reading() -> None:
    """Row counts per kind against an independent line-by-line json reading."""
    path = shared_file("binance-ws/spot_ethusdt_20240808.gz")
    counts = {"trade": 0, "ticker": 0, "levels": 0, "snap": 0}
    with gzip.open(path, "rt") as fh:
        for line in fh:
            msg = json.loads(line.split(" ", 1)[1])
            if "lastUpdateId" in msg:
                counts["snap"] += len(msg["bids"]) + len(msg["asks"])
                continue
            stream, data = msg["stream"], msg["data"]
            if stream.endswith("@trade"):
                counts["trade"] += 1
            elif stream.endswith("@bookTicker"):
                counts["ticker"] += 1
            else:
                counts["levels"] += max(1, len(data["b"]) + len(data["a"]))
    cap = read_capture([path])
    assert (
        cap.trades.height,
        cap.quotes.height,
        cap.book_diff.height,
        cap.book_snapshot.height,
    ) == (counts["trade"], counts["ticker"], counts["levels"], counts["snap"])


def test_split_capture_imports_like_the_whole(tmp_path: Path) -> None:
    src = shared_file("binance-ws/spot_btcusdt_20240808.gz")
    whole = read_capture([src])
    parts = read_capture(list(_split(src, tmp_path, 20_000)))
    assert parts.files == ["part1.txt", "part2.gz"]
    for kind, frame in whole.frames().items():
        assert_frame_equal(parts.frames()[kind], frame)


def test_raw_events_without_envelope(tmp_path: Path) -> None:
    """Single-stream collectors write the bare event; ``e`` names it, ``s`` the symbol."""
    msgs = [
        m["data"]
        for m in (
            diff(10, 12, T0, [["100.0", "1.0"]], [], pu=9),
            trade(1, "100", "1", T0, False, True),
        )
    ]
    path = tmp_path / "raw.txt"
    write_capture(path, [json.dumps(m, indent=None, separators=(", ", ": ")) for m in msgs], "us")
    cap = read_capture([path])
    assert (cap.market, cap.symbol, cap.local_unit) == ("usdm", "BTC/USDT:USDT", "us")
    assert cap.trades["trade_id"].to_list() == [1]
    assert cap.book_diff.select("first_update_id", "prev_update_id", "price").rows() == [
        (10, 9, 100.0)
    ]


def test_two_symbols_in_one_capture_refused(tmp_path: Path) -> None:
    eth = trade(5, "2600", "1", T0 + 5, False)
    eth["stream"] = "ethusdt@trade"
    eth["data"]["s"] = "ETHUSDT"
    path = write_capture(tmp_path / "two.txt", [*messages(), eth])
    with pytest.raises(
        DataError, match=r"two.txt: capture holds several symbols \(BTCUSDT, ETHUSDT\)"
    ):
        read_capture([path])


def test_unsupported_stream_is_a_bad_line(tmp_path: Path) -> None:
    mark = {"stream": "btcusdt@markPrice", "data": {"e": "markPriceUpdate", "p": "100"}}
    path = write_capture(tmp_path / "m.txt", [*messages(), mark])
    with pytest.raises(DataError, match=r"m.txt:8: unsupported stream btcusdt@markPrice"):
        read_capture([path])


@pytest.mark.parametrize("at", range(1, 7))
def test_hand_written_capture_split_anywhere(tmp_path: Path, at: int) -> None:
    whole = write_capture(tmp_path / "whole.txt", messages())
    lines = whole.read_text().splitlines(keepends=True)
    (tmp_path / "a.txt").write_text("".join(lines[:at]))
    (tmp_path / "b.txt").write_text("".join(lines[at:]))
    one, two = read_capture([whole]), read_capture([tmp_path / "a.txt", tmp_path / "b.txt"])
    assert one.frames().keys() == two.frames().keys()
    for kind, frame in one.frames().items():
        assert_frame_equal(two.frames()[kind], frame)
