"""``import capture`` over files of several streams: grouping, time order, repeats, time gaps."""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from botclave_cli.data.importers import capture_streams
from botclave_cli.data.importers.capture import read_capture, read_captures
from botclave_cli.data.store import DatasetRef, Store
from botclave_cli.errors import DataError
from tests.conftest import shared_file
from tests.test_import_capture import T0, messages, trade, write_capture
from tests.test_import_cli import invoke

MIDNIGHT_MS = 1_723_161_600_000  # 2024-08-09 00:00:00 UTC
SHARED = {
    "spot_btcusdt_20240808.gz": ("spot", "BTC/USDT", 9757),
    "spot_ethusdt_20240808.gz": ("spot", "ETH/USDT", 6106),
    "usdm_btcusdt_20240808.gz": ("usdm", "BTC/USDT:USDT", 21313),
}
KINDS = ("trades", "book_snapshot", "book_diff", "quotes")


def eth(msg: dict) -> dict:
    """The same message as an ETHUSDT one."""
    return json.loads(json.dumps(msg).replace("btcusdt", "ethusdt").replace("BTCUSDT", "ETHUSDT"))


def shared_lines(name: str) -> list[str]:
    with gzip.open(shared_file(f"binance-ws/{name}"), "rt") as fh:
        return fh.readlines()


def coinm_lines() -> list[str]:
    """The USD-M capture renamed to the COIN-M perpetual BTCUSD_PERP (same shapes and ids)."""
    return [
        line.replace("btcusdt@", "btcusd_perp@").replace('"s":"BTCUSDT"', '"s":"BTCUSD_PERP"')
        for line in shared_lines("usdm_btcusdt_20240808.gz")
    ]


def exchange_ms(line: str) -> int | None:
    """Exchange time of a line as the store keeps it, read with json: trade T, else E."""
    msg = json.loads(line.split(" ", 1)[1])
    data = msg.get("data", msg)
    if "lastUpdateId" in data and "E" not in data:
        return None
    return data.get("T") if data.get("e") == "trade" else data.get("E", data.get("T"))


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as fh:
            fh.write("".join(lines))
    else:
        path.write_text("".join(lines))
    return path


def first_at_or_after(lines: list[str], ms: int) -> int:
    """Index of the first line whose message has an event time ``E`` >= ``ms``."""
    found = (re.search(r'"E":(\d+)', line) for line in lines)
    return next(i for i, m in enumerate(found) if m is not None and int(m[1]) >= ms)


# hand-written -----------------------------------------------------------------------------------


def test_two_symbols_given_together_are_two_streams(tmp_path: Path) -> None:
    btc = write_capture(tmp_path / "btc.txt", messages())
    # ETH trades six minutes before BTC's: judged against BTC's clock they would be disorder
    early = [eth(m) for m in messages()]
    for m in early:
        if "data" in m and "T" in m["data"]:
            m["data"]["T"] -= 360_000
    eth_path = write_capture(tmp_path / "eth.txt", early)
    caps = read_captures([btc, eth_path])
    assert [(c.symbol, c.files) for c in caps] == [
        ("BTC/USDT", ["btc.txt"]),
        ("ETH/USDT", ["eth.txt"]),
    ]
    alone = read_capture([btc])
    for kind, frame in alone.frames().items():
        assert_frame_equal(caps[0].frames()[kind], frame)
    assert caps[1].trades["seq"].to_list() == [1, 5]  # its own seq, from 0
    assert caps[1].trades["ts"].dt.epoch("ms").to_list() == [T0 + 10 - 360_000, T0 + 150 - 360_000]
    with pytest.raises(DataError, match=r"the files hold 2 streams \(spot BTCUSDT, spot ETHUSDT\)"):
        read_capture([btc, eth_path])


@pytest.mark.parametrize("at", range(1, 7))
def test_files_of_a_stream_are_read_in_time_order(tmp_path: Path, at: int) -> None:
    whole = write_capture(tmp_path / "whole.txt", messages())
    lines = whole.read_text().splitlines(keepends=True)
    a, b = write(tmp_path / "a.txt", lines[:at]), write(tmp_path / "b.txt", lines[at:])
    one, two = read_capture([whole]), read_capture([b, a])  # the later file first
    assert two.files == ["a.txt", "b.txt"]
    for kind, frame in one.frames().items():
        assert_frame_equal(two.frames()[kind], frame)


def test_disorder_across_files_of_one_stream_is_still_found(tmp_path: Path) -> None:
    a = write_capture(tmp_path / "a.txt", messages())
    late = [trade(3, "100", "1", T0 + 300, False), trade(4, "100", "1", T0 - 5000, False)]
    b = write_capture(tmp_path / "b.txt", late, start=7)
    with pytest.raises(DataError, match=r"^b.txt:2: trade time 5300.0 ms behind an earlier"):
        read_captures([b, a])


def test_repeated_lines_are_read_once(tmp_path: Path) -> None:
    whole = write_capture(tmp_path / "whole.txt", messages())
    lines = whole.read_text().splitlines(keepends=True)
    a = write(tmp_path / "a.txt", lines[:5])
    b = write(tmp_path / "b.txt", lines[2:])  # lines 3-5 twice
    cap, one = read_capture([a, b]), read_capture([whole])
    assert (cap.repeated_lines, cap.lines, cap.bad_lines) == (3, 7, [])
    for kind, frame in one.frames().items():
        assert_frame_equal(cap.frames()[kind], frame)


def test_time_gap_between_files_hand_worked(tmp_path: Path) -> None:
    a = write_capture(tmp_path / "a.txt", messages())  # last exchange time T0 + 200 (a diff)
    b = write_capture(tmp_path / "b.txt", [trade(3, "100", "1", T0 + 2500, False)], start=7)
    cap = read_capture([a, b])
    assert [(g.kind, g.start, g.end) for g in cap.time_gaps] == [
        ("time", (T0 + 200) * 1000, (T0 + 2500) * 1000)
    ]
    assert cap.time_gaps[0].detail == "no message between a.txt and b.txt (2.300 s)"
    assert read_capture([a, b], max_file_gap_ms=2300).time_gaps == []  # not more than 2.3 s


def test_a_file_that_does_not_tell_its_stream(tmp_path: Path) -> None:
    a = write_capture(tmp_path / "a.txt", messages())
    snap = write_capture(tmp_path / "snap.txt", [messages()[2]], start=7)  # received last
    result = invoke("import", "capture", a, snap, "--data-dir", tmp_path / "store")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: snap.txt: no stream name or message tells the symbol; pass --symbol"
    )
    assert read_capture([a, snap], symbol="BTC/USDT").files == ["a.txt", "snap.txt"]


def test_cli_summary_lists_each_stream(tmp_path: Path) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    write_capture(tmp_path / "in" / "sub" / "eth.txt", [eth(m) for m in messages()])
    write_capture(tmp_path / "in" / "btc.txt", messages())
    (tmp_path / "in" / "notes.md").write_text("not a capture\n")
    (tmp_path / "in" / ".hidden.txt").write_text("not a capture either\n")
    data = tmp_path / "store"
    result = invoke("import", "capture", tmp_path / "in", "--data-dir", data)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "spot BTC/USDT: 11 row(s), 1 day(s) (2024-08-08), 0 gap(s), 0 bad row(s), 1 file(s)",
        "spot ETH/USDT: 11 row(s), 1 day(s) (2024-08-08), 0 gap(s), 0 bad row(s), 1 file(s)",
        "imported 22 row(s) of capture from 2 stream(s) into 8 dataset(s)",
    ]
    again = invoke("import", "capture", f"{tmp_path}/in/**/*.txt", "--data-dir", data, "--json")
    out = json.loads(again.stdout)
    summary = [(s["symbol"], s["rows"], s["days"], s["gaps"], s["bad_rows"])
               for s in out["streams"]]
    assert summary == [
        ("BTC/USDT", 11, ["2024-08-08"], 0, 0),
        ("ETH/USDT", 11, ["2024-08-08"], 0, 0),
    ]
    assert all(d["rows_new"] == 0 for d in out["datasets"])  # the same files again add nothing
    ticks = invoke("import", "capture", tmp_path / "in", "--data-dir", data, "--tick-size", "0.1")
    assert ticks.exit_code == 2 and "--tick-size/--lot-size are for one stream" in ticks.stderr
    assert invoke("import", "capture", tmp_path / "none", "--data-dir", data).exit_code == 2
    nothing = invoke("import", "capture", f"{tmp_path}/in/*.gz", "--data-dir", data)
    assert (nothing.exit_code, nothing.stderr.strip()) == (
        2,
        f"error: {tmp_path}/in/*.gz: matches no file",
    )


def test_cli_default_gap_is_the_library_default() -> None:
    from botclave_cli.cli.importer import DEFAULT_MAX_FILE_GAP_MS

    assert DEFAULT_MAX_FILE_GAP_MS == capture_streams.DEFAULT_MAX_FILE_GAP_MS


# the shared captures ----------------------------------------------------------------------------


def split(lines: list[str], cuts: list[int]) -> list[list[str]]:
    bounds = [0, *sorted(cuts), len(lines)]
    return [lines[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def test_a_shuffled_mix_of_pieces_gives_each_stream_alone(tmp_path: Path) -> None:
    """Spot BTC, spot ETH, USD-M BTC and COIN-M BTCUSD_PERP (the USD-M capture renamed), each cut
    at random lines and at midnight, the pieces shuffled, some gzipped, in nested folders."""
    streams = {name: shared_lines(name) for name in SHARED}
    streams["coinm_btcusd_perp_20240808.txt"] = coinm_lines()
    rng = random.Random(22)
    whole_dir, pieces = tmp_path / "whole", []
    for name, lines in streams.items():
        write(whole_dir / name, lines)
        cuts = {first_at_or_after(lines, MIDNIGHT_MS), *rng.sample(range(1, len(lines)), 3)}
        for i, piece in enumerate(split(lines, sorted(cuts))):
            suffix = ".gz" if i % 2 else ".txt"
            pieces.append(tmp_path / "mix" / f"day{i % 3}" / f"{rng.random():.6f}{suffix}")
            write(pieces[-1], piece)
    rng.shuffle(pieces)

    alone, mixed = tmp_path / "alone", tmp_path / "mixed"
    for path in sorted(whole_dir.iterdir()):
        assert invoke("import", "capture", path, "--data-dir", alone).exit_code == 0
    result = invoke("import", "capture", *pieces, "--data-dir", mixed, "--json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert [(s["market"], s["symbol"], s["days"], s["bad_rows"]) for s in out["streams"]] == [
        ("coinm", "BTC/USD:BTC", ["2024-08-08", "2024-08-09"], 0),
        ("spot", "BTC/USDT", ["2024-08-08", "2024-08-09"], 0),
        ("spot", "ETH/USDT", ["2024-08-08", "2024-08-09"], 0),
        ("usdm", "BTC/USDT:USDT", ["2024-08-08", "2024-08-09"], 0),
    ]
    trades = {symbol: count for _, symbol, count in SHARED.values()}
    trades["BTC/USD:BTC"] = SHARED["usdm_btcusdt_20240808.gz"][2]
    refs = sorted(Store(alone).datasets(), key=str)
    assert refs == sorted(Store(mixed).datasets(), key=str) and len(refs) == 16
    for ref in refs:
        a, m = Store(alone).scan(ref).collect(), Store(mixed).scan(ref).collect()
        assert_frame_equal(m, a)
        ma, mm = Store(alone).manifest(ref), Store(mixed).manifest(ref)
        assert ma is not None and mm is not None
        keep = {"coverage", "row_count", "partitions", "gaps", "tick_size", "lot_size"}
        assert mm.model_dump(include=keep) == ma.model_dump(include=keep), ref
        if ref.kind == "trades":  # every trade once
            assert m.height == m["trade_id"].n_unique() == trades[ref.symbol]


def test_overlapping_files_are_read_once(tmp_path: Path) -> None:
    lines = shared_lines("usdm_btcusdt_20240808.gz")
    n = len(lines)
    a = write(tmp_path / "a.txt", lines[: n // 2])
    b = write(tmp_path / "b.gz", lines[n // 3 : 3 * n // 4])
    c = write(tmp_path / "c.txt", lines[2 * n // 3 :])
    again = write(tmp_path / "b-again.txt", lines[n // 3 : 3 * n // 4])
    cap = read_capture([c, again, a, b])
    whole = read_capture([shared_file("binance-ws/usdm_btcusdt_20240808.gz")])
    overlap = (n // 2 - n // 3) + (3 * n // 4 - 2 * n // 3) + (3 * n // 4 - n // 3)
    assert (cap.repeated_lines, cap.lines, cap.bad_lines, cap.time_gaps) == (overlap, n, [], [])
    for kind, frame in whole.frames().items():
        assert_frame_equal(cap.frames()[kind], frame)


def test_a_real_time_gap_between_files_is_in_the_manifest(tmp_path: Path) -> None:
    lines = shared_lines("spot_ethusdt_20240808.gz")
    a = lines[:10_000]
    times_a = [t for t in map(exchange_ms, a) if t is not None]
    b = lines[first_at_or_after(lines, max(times_a) + 30_000) :]  # 30 s not captured
    times_b = [t for t in map(exchange_ms, b) if t is not None]
    start, end = max(times_a) * 1000, min(times_b) * 1000
    assert end - start > 30_000_000
    data = tmp_path / "store"
    paths = [write(tmp_path / "b.txt", b), write(tmp_path / "a.txt", a)]
    result = invoke("import", "capture", *paths, "--data-dir", data, "--json")
    assert result.exit_code == 0, result.stderr
    for kind in KINDS:
        m = Store(data).manifest(DatasetRef("binance", "spot", "ETH/USDT", kind))
        assert m is not None
        assert ("time", start, end) in [(g.kind, g.start, g.end) for g in m.gaps], kind
    trades = Store(data).manifest(DatasetRef("binance", "spot", "ETH/USDT", "trades"))
    assert trades is not None and sorted(g.kind for g in trades.gaps) == ["time", "trade_id"]


def test_skip_bad_stream_without_a_good_row_is_listed(tmp_path: Path) -> None:
    good = write_capture(tmp_path / "btc.txt", messages())
    bad = write_capture(tmp_path / "eth.txt", [eth(trade(1, "100", "-1", T0, False))])
    data = tmp_path / "store"
    refused = invoke("import", "capture", good, bad, "--data-dir", data)
    assert refused.exit_code == 3
    assert refused.stderr.strip() == (
        "error: eth.txt:1: negative qty q -1 (--skip-bad to import the rest)"
    )
    assert not Store(data).exists(DatasetRef("binance", "spot", "BTC/USDT", "trades"))
    result = invoke("import", "capture", good, bad, "--data-dir", data, "--skip-bad", "--json")
    assert result.exit_code == 0, result.stderr
    btc, eth_stream = json.loads(result.stdout)["streams"]
    assert (btc["rows"], btc["bad_rows"], btc["bad_rows_report"]) == (11, 0, None)
    assert (eth_stream["rows"], eth_stream["bad_rows"], eth_stream["datasets"]) == (0, 1, [])
    report = Path(eth_stream["bad_rows_report"])
    assert report.parent == data / "binance" / "spot" / "ETH-USDT" / "bad_rows"
    assert report.read_text().splitlines() == ["file,line,reason", "eth.txt,1,negative qty q -1"]
    only_bad = invoke("import", "capture", bad, bad, "--data-dir", data, "--skip-bad")
    assert only_bad.exit_code == 3 and "no good row to import" in only_bad.stderr
