"""``botclave import``: the store it writes, manifests, refusals and the bad-rows report."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from botclave_cli.cli.app import app
from botclave_cli.data.importers.writer import infer_step
from botclave_cli.data.store import DatasetRef, Store
from tests.conftest import shared_file
from tests.test_import_capture import T0, diff, messages, trade, write_capture

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def config_file(tmp_path: Path, symbol: str, tick: float, lot: float) -> Path:
    path = tmp_path / "exchange_config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "exchange": "binance",
                "market": "spot",
                "symbols": [{"symbol": symbol, "tick_size": tick, "lot_size": lot}],
            }
        )
    )
    return path


@pytest.mark.parametrize("command", ["capture", "binance-archive", "tardis"])
def test_help_has_an_example(command: str) -> None:
    result = invoke("import", command, "--help")
    assert result.exit_code == 0 and "Example: botclave import" in result.stdout


def test_capture_import_writes_datasets_and_manifests(tmp_path: Path) -> None:
    data = tmp_path / "store"
    src = write_capture(tmp_path / "c.txt", messages())
    cfg = config_file(tmp_path, "BTC/USDT", 0.01, 0.00001)
    result = invoke("import", "capture", src, "--data-dir", data, "--config", cfg, "--json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert {d["kind"]: d["rows"] for d in out["datasets"]} == {
        "trades": 2,
        "book_snapshot": 3,
        "book_diff": 5,
        "quotes": 1,
    }
    (stream,) = out["streams"]
    assert (stream["tick_size"], stream["lot_size"], stream["tick_source"]) == (
        0.01,
        0.00001,
        "config",
    )
    assert {k: stream[k] for k in ("market", "symbol", "files", "rows", "days", "gaps")} == {
        "market": "spot",
        "symbol": "BTC/USDT",
        "files": 1,
        "rows": 11,
        "days": ["2024-08-08"],
        "gaps": 0,
    }
    assert (stream["bad_rows"], stream["sources"]) == (0, ["c.txt"])
    store = Store(data)
    m = store.manifest(DatasetRef("binance", "spot", "BTC/USDT", "trades"))
    assert (m.source, m.sources, m.row_count) == ("capture", ["c.txt"], 2)
    assert [(i.start_us, i.end_us) for i in m.coverage] == [
        ((T0 + 10) * 1000, (T0 + 150) * 1000 + 1)
    ]
    assert m.gaps == []  # trade ids 1, 2: none missing
    diffs = store.scan(DatasetRef("binance", "spot", "BTC/USDT", "book_diff")).collect()
    assert sorted(diffs["seq"].unique().to_list()) == [0, 3, 6]
    # the same files again add nothing
    again = json.loads(invoke("import", "capture", src, "--data-dir", data, "--json").stdout)
    assert all(d["rows_new"] == 0 for d in again["datasets"])


def test_gaps_in_manifest(tmp_path: Path) -> None:
    msgs = [
        diff(10, 12, T0, [["100.0", "1.0"]], []),
        trade(1, "100.1", "0.5", T0 + 10, False),
        trade(4, "100.1", "0.5", T0 + 20, False),  # ids 2 and 3 missing
        diff(13, 15, T0 + 100, [["99.9", "0"]], []),
        diff(20, 21, T0 + 200, [["99.8", "1"]], []),  # 16..19 missing
    ]
    data = tmp_path / "store"
    result = invoke(
        "import",
        "capture",
        write_capture(tmp_path / "g.txt", msgs),
        "--data-dir",
        data,
        "--tick-size",
        "0.1",
        "--lot-size",
        "0.1",
    )
    assert result.exit_code == 0, result.stderr
    store = Store(data)
    trades = store.manifest(DatasetRef("binance", "spot", "BTC/USDT", "trades"))
    assert [(g.kind, g.start, g.end) for g in trades.gaps] == [("trade_id", 2, 3)]
    assert trades.tick_source == "option" and trades.tick_size == 0.1
    book = store.manifest(DatasetRef("binance", "spot", "BTC/USDT", "book_diff"))
    assert [(g.kind, g.start, g.end) for g in book.gaps] == [("book_sequence", 16, 19)]


def test_inferred_tick_warns(tmp_path: Path) -> None:
    data = tmp_path / "store"
    result = invoke(
        "import",
        "capture",
        write_capture(tmp_path / "c.txt", messages()),
        "--data-dir",
        data,
        "--config",
        tmp_path / "none.yaml",
    )
    assert result.exit_code == 2  # a --config that does not exist is a config error
    result = invoke(
        "import",
        "capture",
        tmp_path / "c.txt",
        "--data-dir",
        data,
        "--config",
        config_file(tmp_path, "ETH/USDT", 0.01, 0.0001),
    )
    assert result.exit_code == 0, result.stderr
    assert "tick size 0.1 for BTC/USDT inferred from the data" in result.stderr
    m = Store(data).manifest(DatasetRef("binance", "spot", "BTC/USDT", "quotes"))
    assert (m.tick_source, m.tick_size) == ("inferred", 0.1)


def test_infer_step() -> None:
    assert infer_step(pl.Series([61837.63, 61837.64, 61840.0]), spacing=True) == 0.01
    assert infer_step(pl.Series([8531.5, 8531.5]), spacing=True) is None
    assert infer_step(pl.Series([6421.5, 6422.0, 6423.5]), spacing=True) == 0.5
    assert infer_step(pl.Series([0.006, 0.199, 0.045])) == 0.001


def bad_capture(tmp_path: Path) -> Path:
    msgs: list = messages()
    msgs.insert(3, json.dumps(trade(9, "100", "-1", T0 + 50, False)))
    return write_capture(tmp_path / "bad.txt", msgs)


def test_bad_row_refuses_and_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "store"
    result = invoke("import", "capture", bad_capture(tmp_path), "--data-dir", data)
    assert result.exit_code == 3
    assert result.stderr.startswith("error: bad.txt:4: negative qty q -1")
    assert [p for p in files_under(data) if p.name != "botclave.log"] == []


def test_skip_bad_writes_good_rows_and_a_report(tmp_path: Path) -> None:
    data = tmp_path / "store"
    result = invoke("import", "capture", bad_capture(tmp_path), "--data-dir", data, "--skip-bad")
    assert result.exit_code == 0, result.stderr
    assert "skipped 1 bad row(s)" in result.stdout
    reports = list((data / "binance" / "spot" / "BTC-USDT" / "bad_rows").glob("capture-*.csv"))
    assert len(reports) == 1
    report = pl.read_csv(reports[0])
    assert report.rows() == [("bad.txt", 4, "negative qty q -1")]
    trades = Store(data).scan(DatasetRef("binance", "spot", "BTC/USDT", "trades")).collect()
    assert trades["trade_id"].to_list() == [1, 2]


def test_skip_bad_with_no_good_row_exits_3(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    path.write_text("1,abc,1,1,1723161255342,True,True\n2,61800,-1,1,1723161255343,True,True\n")
    data = tmp_path / "store"
    result = invoke("import", "binance-archive", path, "--data-dir", data, "--skip-bad")
    assert result.exit_code == 3
    assert "no good row" in result.stderr
    assert not (data / "binance" / "spot" / "BTC-USDT" / "trades").exists()
    report = next((data / "binance" / "spot" / "BTC-USDT" / "bad_rows").glob("*.csv"))
    assert pl.read_csv(report)["line"].to_list() == [1, 2]


def test_binance_archive_and_tardis_through_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "store"
    path = tmp_path / "BTCUSDT-aggTrades-2024-08-08.csv"
    path.write_text(
        "100,61837.63,0.5,200,202,1723161255342,True,True\n"
        "102,61837.64,0.25,205,205,1723161255343,False,True\n"
    )
    result = invoke("import", "binance-archive", path, "--data-dir", data, "--json")
    assert result.exit_code == 0, result.stderr
    m = Store(data).manifest(DatasetRef("binance", "spot", "BTC/USDT", "agg_trades"))
    assert m.source == "binance-archive" and [(g.start, g.end) for g in m.gaps] == [(101, 101)]
    tardis = shared_file("tardis/bitmex_trades_XBTUSD.csv")
    result = invoke("import", "tardis", tardis, "--data-dir", data, "--tick-size", "0.5")
    assert result.exit_code == 0, result.stderr
    m = Store(data).manifest(DatasetRef("bitmex", "coinm", "BTC/USD:BTC", "trades"))
    assert (m.source, m.qty_unit, m.row_count, m.tick_source) == (
        "tardis",
        "contracts",
        10,
        "option",
    )


def test_bad_options_exit_2(tmp_path: Path) -> None:
    src = write_capture(tmp_path / "c.txt", messages())
    assert invoke("import", "capture", src, "--market", "margin").exit_code == 2
    assert invoke("import", "capture", src, "--tick-size", "-1").exit_code == 2
    assert invoke("import", "capture", tmp_path / "missing.txt").exit_code == 2


def test_split_shared_capture_gives_the_same_store(tmp_path: Path) -> None:
    import gzip

    src = shared_file("binance-ws/spot_ethusdt_20240808.gz")
    with gzip.open(src, "rt") as fh:
        lines = fh.readlines()
    (tmp_path / "a.txt").write_text("".join(lines[:15_000]))
    (tmp_path / "b.txt").write_text("".join(lines[15_000:]))
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert invoke("import", "capture", src, "--data-dir", whole).exit_code == 0
    r = invoke("import", "capture", tmp_path / "a.txt", tmp_path / "b.txt", "--data-dir", split)
    assert r.exit_code == 0, r.stderr
    for kind in ("trades", "book_snapshot", "book_diff", "quotes"):
        ref = DatasetRef("binance", "spot", "ETH/USDT", kind)
        a = Store(whole).scan(ref).collect()
        b = Store(split).scan(ref).collect()
        assert a.height > 0 and a.equals(b), kind
        assert Store(split).manifest(ref).sources == ["a.txt", "b.txt"]


def test_a_later_write_refines_an_inferred_tick_never_coarsens_it(tmp_path) -> None:
    import datetime as dt

    from botclave_cli.data.importers.writer import Parsed, finer_step, write_import

    assert finer_step(0.5, 0.1) == 0.1 and finer_step(0.1, 0.5) == 0.1
    assert finer_step(0.5, 0.2) == 0.1 and finer_step(None, 0.5) == 0.5

    def parsed(prices: list[float], first_id: int) -> Parsed:
        t0 = dt.datetime(2024, 8, 8, tzinfo=dt.UTC)
        df = pl.DataFrame({
            "ts": [t0 + dt.timedelta(seconds=first_id + i) for i in range(len(prices))],
            "price": prices, "qty": [1.0] * len(prices), "side": ["buy"] * len(prices),
            "trade_id": list(range(first_id, first_id + len(prices))),
        })
        return Parsed("binance", "spot", "BTC/USDT", "capture", ["x"], [("trades", (), df)])

    store = Store(tmp_path)
    ref = DatasetRef("binance", "spot", "BTC/USDT", "trades")
    write_import(store, parsed([100.0, 100.5, 101.5], 0))
    assert store.manifest(ref).tick_size == 0.5
    write_import(store, parsed([100.0, 100.1, 100.3], 10))
    assert store.manifest(ref).tick_size == 0.1
    write_import(store, parsed([100.0, 101.0, 103.0], 20))
    assert store.manifest(ref).tick_size == 0.1
    write_import(store, parsed([100.0, 101.0], 30), tick_size=1.0)  # an explicit option wins
    assert (store.manifest(ref).tick_source, store.manifest(ref).tick_size) == ("option", 1.0)
