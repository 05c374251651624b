import datetime as dt

import polars as pl
import pytest

from botclave_cli.data.manifest import Interval, Manifest, merge_intervals
from botclave_cli.data.schemas import conform
from botclave_cli.data.store import DatasetRef, params_hash, symbol_folder, to_us
from botclave_cli.data.verify import (
    find_book_breaks,
    find_candle_gaps,
    find_id_gaps,
    verify_dataset,
)
from botclave_cli.errors import DataError

REF = DatasetRef("binance", "spot", "BTC/USDT", "agg_trades")


def _trades(ids, day="2024-08-08"):
    base = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    return pl.DataFrame({
        "ts": [base + dt.timedelta(hours=23, seconds=i * 60) for i in ids],
        "agg_id": ids,
        "price": [100.0 + i for i in ids],
        "qty": [1.0] * len(ids),
        "side": ["buy" if i % 2 else "sell" for i in ids],
    })


def _manifest():
    return Manifest(kind="agg_trades", exchange="binance", market="spot", symbol="BTC/USDT",
                    source="test")


def test_symbol_folder_follows_decisions():
    assert symbol_folder("BTC/USDT") == "BTC-USDT"
    assert symbol_folder("BTC/USDT:USDT") == "BTC-USDT_USDT"
    assert symbol_folder("BTC/USD:BTC") == "BTC-USD_BTC"


def test_write_partitions_by_utc_date_dedupes_and_sorts(store):
    # ids 0..89: minutes 23:00 .. 00:29 next day -> two partitions
    first = store.write(REF, _trades(list(range(60))), new_manifest=_manifest)
    again = store.write(REF, _trades(list(range(30, 90))[::-1]))
    assert first.rows_new == 60 and again.rows_new == 30
    assert sorted(store.partition_files(REF)) == ["2024-08-08", "2024-08-09"]
    out = store.scan(REF).collect()
    assert out["agg_id"].to_list() == list(range(90))
    assert out.schema["ts"] == pl.Datetime("us", "UTC")
    m = store.manifest(REF)
    assert m.row_count == 90 and m.partitions == {"2024-08-08": 60, "2024-08-09": 30}


def test_scan_range_is_half_open(store):
    store.write(REF, _trades(list(range(90))), new_manifest=_manifest)
    start = dt.datetime(2024, 8, 8, 23, 10, tzinfo=dt.UTC)
    end = dt.datetime(2024, 8, 9, 0, 5, tzinfo=dt.UTC)
    ids = store.scan(REF, start, end).collect()["agg_id"].to_list()
    assert ids == list(range(10, 65))


def test_scan_missing_dataset_is_empty_with_schema(store):
    out = store.scan(REF).collect()
    assert out.height == 0 and "agg_id" in out.columns


def test_conform_names_missing_column():
    with pytest.raises(DataError, match="missing column 'price'"):
        conform(_trades([1]).drop("price"), "agg_trades")


def test_no_temp_file_left_and_reader_ignores_temp(store, tmp_path):
    store.write(REF, _trades([1, 2, 3]), new_manifest=_manifest)
    part = store.path(REF) / "date=2024-08-08"
    (part / ".data.parquet.tmp-999999").write_bytes(b"half written")
    assert store.scan(REF).collect().height == 3
    assert store.clean_stale_temp() == 1


def test_merge_intervals_and_uncovered():
    merged = merge_intervals([Interval(start_us=5, end_us=10), Interval(start_us=0, end_us=5),
                              Interval(start_us=20, end_us=30)])
    assert merged == [Interval(start_us=0, end_us=10), Interval(start_us=20, end_us=30)]
    m = _manifest()
    m.coverage = merged
    assert m.uncovered(0, 40) == [
        Interval(start_us=10, end_us=20),
        Interval(start_us=30, end_us=40),
    ]
    assert m.covers(21, 29) and not m.covers(9, 21)


def test_to_us_and_params_hash():
    assert to_us(dt.datetime(1970, 1, 1, 0, 0, 1, 5)) == 1_000_005
    assert to_us(dt.date(2024, 8, 8)) == 1_723_075_200_000_000
    assert params_hash({"a": 1, "b": 2}) == params_hash({"b": 2, "a": 1})


def test_find_id_gaps():
    gaps = find_id_gaps(pl.Series([1, 2, 3, 7, 8, 10]))
    assert [(g.start, g.end) for g in gaps] == [(4, 6), (9, 9)]


def test_find_candle_gaps():
    minute = 60_000_000
    ts = pl.Series([0, minute, 4 * minute]).cast(pl.Datetime("us", "UTC"))
    gaps = find_candle_gaps(ts, minute)
    assert [(g.start, g.end) for g in gaps] == [(2 * minute, 3 * minute)]


def test_find_book_breaks_spot_and_futures():
    diffs = pl.DataFrame({
        "seq": [1, 1, 2, 3],
        "first_update_id": [10, 10, 13, 20],
        "last_update_id": [12, 12, 15, 22],
        "prev_update_id": [9, 9, 12, 17],
    })
    spot = find_book_breaks(diffs, "spot")
    assert [(g.start, g.end) for g in spot] == [(16, 19)]
    futures = find_book_breaks(diffs, "usdm")
    assert [(g.start, g.end) for g in futures] == [(16, 17)]


def test_verify_finds_id_gap_and_corrupt_file(store):
    store.write(REF, _trades([1, 2, 5, 6]), new_manifest=_manifest)
    report = verify_dataset(store, REF)
    assert [(g.start, g.end) for g in report.gaps] == [(3, 4)] and not report.corrupt
    (path,) = store.partition_files(REF)["2024-08-08"]
    path.write_bytes(b"PAR1 not really")
    report = verify_dataset(store, REF)
    assert report.corrupt and not report.ok


def test_params_level_path():
    ref = DatasetRef("binance", "spot", "BTC/USDT", "footprint").with_level("params", "abc")
    assert str(ref.relpath()) == "binance/spot/BTC-USDT/footprint/params=abc"


def test_prefer_new_replaces_rows_with_the_same_key(store):
    store.write(REF, _trades([1, 2]), new_manifest=_manifest)
    changed = _trades([2, 3]).with_columns(qty=pl.lit(5.0))
    store.write(REF, changed)
    assert store.scan(REF).collect()["qty"].to_list() == [1.0, 1.0, 5.0]
    store.write(REF, changed, prefer_new=True)
    assert store.scan(REF).collect()["qty"].to_list() == [1.0, 5.0, 5.0]


def test_append_writes_parts_and_compact_folds_them_in(store):
    store.write(REF, _trades(list(range(0, 20))), new_manifest=_manifest)
    store.append(REF, _trades(list(range(20, 40))))
    store.append(REF, _trades(list(range(40, 50))))
    (compacted, *parts) = store.partition_files(REF)["2024-08-08"]
    assert compacted.name == "data.parquet"
    assert [p.name for p in parts] == ["part-000000.parquet", "part-000001.parquet"]
    assert store.scan(REF).collect()["agg_id"].to_list() == list(range(50))
    assert store.manifest(REF).partitions == {"2024-08-08": 50}
    assert verify_dataset(store, REF).ok
    assert store.compact(REF) == ["2024-08-08"]
    assert [p.name for p in store.partition_files(REF)["2024-08-08"]] == ["data.parquet"]
    assert store.scan(REF).collect()["agg_id"].to_list() == list(range(50))
    assert store.compact(REF) == []
    # a write after a compaction merges as before, numbering of later parts goes on
    store.append(REF, _trades([50]))
    assert [p.name for p in store.partition_files(REF)["2024-08-08"]][1:] == [
        "part-000002.parquet"]


def test_compact_merges_parts_out_of_order_and_dedupes(store):
    store.write(REF, _trades([5, 6, 7]), new_manifest=_manifest)
    store.append(REF, _trades([1, 2, 6]))  # overlaps the stored rows: not a plain concatenation
    assert store.manifest(REF).row_count == 6
    store.compact(REF)
    assert store.scan(REF).collect()["agg_id"].to_list() == [1, 2, 5, 6, 7]


def test_a_crash_before_the_parts_are_deleted_shows_no_row_twice(store):
    from botclave_cli.data import partition

    store.write(REF, _trades([1, 2]), new_manifest=_manifest)
    store.append(REF, _trades([3, 4]))
    day = store.path(REF) / "date=2024-08-08"
    (part,) = partition.all_parts(day)
    saved = part.read_bytes()
    store.compact(REF)
    part.write_bytes(saved)  # the compaction "crashed" before unlinking the folded part
    assert store.scan(REF).collect()["agg_id"].to_list() == [1, 2, 3, 4]
    assert verify_dataset(store, REF).ok
    store.append(REF, _trades([5]))  # a new part is numbered past the folded one
    assert store.scan(REF).collect()["agg_id"].to_list() == [1, 2, 3, 4, 5]
    store.compact(REF)
    assert partition.all_parts(day) == []
    assert store.scan(REF).collect()["agg_id"].to_list() == [1, 2, 3, 4, 5]


def test_write_into_a_partition_with_parts_replaces_them(store):
    store.write(REF, _trades([1]), new_manifest=_manifest)
    store.append(REF, _trades([2]))
    store.write(REF, _trades([0, 3]))
    assert [p.name for p in store.partition_files(REF)["2024-08-08"]] == ["data.parquet"]
    assert store.scan(REF).collect()["agg_id"].to_list() == [0, 1, 2, 3]
    assert store.manifest(REF).partitions == {"2024-08-08": 4}


# atomic_dir: a folder written beside its target and swapped in whole ----------------------------
def _tree(root):
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _dead_pid() -> int:
    import subprocess

    done = subprocess.Popen(["true"])
    done.wait()  # reaped: no process has this id any more (until the system reuses it)
    return done.pid


def test_atomic_dir_swaps_the_folder_in_whole_and_leaves_nothing_beside_it(tmp_path):
    from botclave_cli.data.atomic import atomic_dir

    target = tmp_path / "runs" / "abc"
    with atomic_dir(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".") and not target.exists()
        (tmp / "a.txt").write_text("first")
    assert _tree(target) == {"a.txt": "first"}
    target.joinpath("extra.txt").write_text("mine")
    seen = []

    def keep(old, new):
        seen.append((old, new, _tree(old), _tree(new)))
        (new / "extra.txt").write_text((old / "extra.txt").read_text())

    with atomic_dir(target, keep=keep) as tmp:
        (tmp / "b.txt").write_text("second")
        assert _tree(target) == {"a.txt": "first", "extra.txt": "mine"}  # the old one until the end
    assert seen == [(target, tmp, {"a.txt": "first", "extra.txt": "mine"}, {"b.txt": "second"})]
    assert _tree(target) == {"b.txt": "second", "extra.txt": "mine"}
    assert [p.name for p in target.parent.iterdir()] == ["abc"]


def test_atomic_dir_failure_keeps_the_old_folder_and_removes_the_temp(tmp_path, monkeypatch):
    import os

    from botclave_cli.data.atomic import atomic_dir

    target = tmp_path / "validation"
    with pytest.raises(RuntimeError, match="boom"), atomic_dir(target) as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []  # no target was there, none is made
    with atomic_dir(target) as tmp:
        (tmp / "v.json").write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_dir(target) as tmp:
        (tmp / "v.json").write_text("new")
        raise RuntimeError("boom")
    assert _tree(target) == {"v.json": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["validation"]
    # the second rename (temp -> target) fails after the old folder moved aside: it comes back
    real, calls = os.replace, []

    def second_fails(src, dst):
        calls.append((src.name, dst.name))
        if len(calls) == 2:
            raise OSError("rename failed")
        real(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(OSError, match="rename failed"), atomic_dir(target) as tmp:
        (tmp / "v.json").write_text("new")
    monkeypatch.undo()
    pid = os.getpid()
    assert calls == [("validation", f".validation.old.tmp-{pid}"),
                     (f".validation.tmp-{pid}", "validation"),
                     (f".validation.old.tmp-{pid}", "validation")]
    assert _tree(target) == {"v.json": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["validation"]


def test_clean_stale_temp_removes_dead_writers_folders_and_puts_back_a_folder_left_aside(tmp_path):
    import os

    from botclave_cli.data.atomic import clean_stale_temp

    dead, live = _dead_pid(), os.getpid()
    runs = tmp_path / "runs"
    half = runs / f".r1.tmp-{dead}"  # a run folder being written when its writer died
    (half / f".trades.parquet.tmp-{dead}").parent.mkdir(parents=True)
    (half / f".trades.parquet.tmp-{dead}").write_text("half")
    (half / "metrics.json").write_text("{}")
    (runs / f".r2.old.tmp-{dead}").mkdir()  # died between the two renames: r2 is missing
    (runs / f".r2.old.tmp-{dead}" / "manifest.json").write_text("r2")
    (runs / "r3").mkdir()  # died after the swap: r3 is the new folder, the aside is stale
    (runs / "r3" / "manifest.json").write_text("new r3")
    (runs / f".r3.old.tmp-{dead}").mkdir()
    (runs / f".r3.old.tmp-{dead}" / "manifest.json").write_text("old r3")
    (runs / f".r4.tmp-{live}").mkdir()  # a live writer's folder stays
    assert clean_stale_temp(tmp_path) == 3
    assert sorted(p.name for p in runs.iterdir()) == [f".r4.tmp-{live}", "r2", "r3"]
    assert _tree(runs / "r2") == {"manifest.json": "r2"}
    assert _tree(runs / "r3") == {"manifest.json": "new r3"}
    assert clean_stale_temp(tmp_path) == 0


def test_cli_datasets_compact_folds_parts_and_removes_dead_writers_temp_files(store):
    import json

    from typer.testing import CliRunner

    from botclave_cli.cli.app import app

    store.write(REF, _trades([1, 2]), new_manifest=_manifest)
    store.append(REF, _trades([3]))
    store.append(REF, _trades([4, 5]))
    day = store.path(REF) / "date=2024-08-08"
    stale = day / ".part-000009.parquet.tmp-999999999"  # a killed writer's (no such pid)
    stale.write_bytes(b"half")
    r = CliRunner().invoke(app, ["datasets", "compact", "binance/spot", "--data-dir",
                                 str(store.root), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["datasets"] == [{"dataset": str(REF.relpath()), "days_compacted": ["2024-08-08"]}]
    assert out["temp_files_removed"] == 1 and not stale.exists()
    assert [p.name for p in store.partition_files(REF)["2024-08-08"]] == ["data.parquet"]
    assert store.scan(REF).collect()["agg_id"].to_list() == [1, 2, 3, 4, 5]
    assert verify_dataset(store, REF).ok
    again = CliRunner().invoke(app, ["datasets", "compact", "--data-dir", str(store.root)])
    assert again.exit_code == 0 and "0 day(s) compacted" in again.output


def test_in_sort_order_compares_the_files_first_and_last_keys(tmp_path):
    from botclave_cli.data import partition
    from botclave_cli.data.schemas import normalise

    def put(name, ids):
        path = tmp_path / name
        normalise(_trades(ids), "agg_trades").write_parquet(path, row_group_size=3)
        return path

    a, b = put("a.parquet", list(range(0, 10))), put("b.parquet", list(range(10, 17)))
    overlap = put("c.parquet", list(range(9, 12)))
    assert partition._end_keys(a, ["agg_id"]) == ((0,), (9,))  # 4 row groups of <= 3 rows
    assert partition.in_sort_order([a, b], "agg_trades")
    assert not partition.in_sort_order([a, overlap], "agg_trades")
    assert not partition.in_sort_order([b, a], "agg_trades")
