"""The recorder against the local WebSocket emulator replaying a shared capture."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from botclave_cli.data.store import DatasetRef, Store
from botclave_cli.engine.book.replay_report import replay_capture
from botclave_cli.exchange.record_config import RecordConfig
from botclave_cli.exchange.recorder import Recorder, ccxt_snapshot_fetcher
from tests.conftest import PROJECT_ROOT, shared_file
from tests.emulator.binance_ws import BinanceWsEmulator

ETH = "binance-ws/spot_ethusdt_20240808.gz"
N = 9_000  # stream messages served: keeps the test short


def _depth_index(emu: BinanceWsEmulator, after: int) -> int:
    return next(i for i, (k, _) in enumerate(emu.messages) if k == "depth" and i > after)


async def _record(store: Store, emu: BinanceWsEmulator, capture_dir: Path) -> Recorder:
    cfg = RecordConfig(symbol="ETH/USDT", market="spot", ws_url=emu.ws_url, flush_every_s=0.2,
                       store_every_s=1.0)
    rec = Recorder(store, cfg, capture_dir=capture_dir,
                   fetch_snapshot=ccxt_snapshot_fetcher("spot", emu.rest_url))

    async def stop_when_served() -> None:
        # until everything served is received and the last resync (if any) is answered
        give_up = time.monotonic() + 60
        while (not emu.finished or rec.result.messages < emu.sent
               or rec._builder is None or not rec._builder.valid):
            if time.monotonic() > give_up:
                rec.stop(f"test timeout: cursor {emu.cursor}/{len(emu.messages)}, sent "
                         f"{emu.sent}, got {rec.result.messages}, builder {rec._builder}")
                return
            await asyncio.sleep(0.05)
        rec.stop("test")

    watcher = asyncio.create_task(stop_when_served())
    await rec.run()
    watcher.cancel()
    assert rec.result.stopped_by == "test", rec.result.stopped_by
    return rec


def test_record_reconnects_resyncs_and_its_capture_replays(tmp_path):
    async def main():
        emu = BinanceWsEmulator(shared_file(ETH), limit=N, lost_on_disconnect=100)
        dropped = _depth_index(emu, 6_000)
        emu.drop = {dropped}
        emu.disconnect_after = {3_000}
        assert any(k == "depth" for k, _ in emu.messages[3_001:3_101])  # lost: a gap
        await emu.start()
        try:
            rec = await _record(Store(tmp_path / "store"), emu, tmp_path / "captures")
        finally:
            await emu.stop()
        return emu, rec.result

    emu, result = asyncio.run(main())
    assert emu.connections == 2 and result.reconnects == 1
    assert result.messages == emu.sent
    # live: the reconnect's lost diffs and the dropped diff are gaps; REST snapshots answer
    # the first sync, the reconnect and the dropped diff
    assert result.gaps == 2 and result.snapshots == 3 and emu.rest_calls == 3
    assert result.lines_written == result.messages + result.snapshots == result.next_seq
    # the capture file replays: the reconnect's lost messages and the dropped diff are gaps,
    # each healed by the snapshot recorded after it; every checkable ticker matches
    report = replay_capture([Path(p) for p in result.capture_files]).as_dict()
    assert report["gaps"] == 2 and report["syncs"] == 3 and report["valid_at_end"]
    assert report["tickers_checkable"] > 50
    assert report["tickers_matched"] == report["tickers_checkable"]
    # the store holds every trade once, and book rows in seq order
    store = Store(tmp_path / "store")
    trades = store.scan(DatasetRef("binance", "spot", "ETH/USDT", "trades")).collect()
    sent_trades = sum(1 for i, (k, _) in enumerate(emu.messages) if k == "trade")
    assert trades.height == sent_trades - sum(
        1 for i, (k, _) in enumerate(emu.messages[3_001:3_101]) if k == "trade")
    diffs = store.scan(DatasetRef("binance", "spot", "ETH/USDT", "book_diff")).collect()
    assert diffs["seq"].max() < result.next_seq
    snaps = store.scan(DatasetRef("binance", "spot", "ETH/USDT", "book_snapshot")).collect()
    assert snaps["seq"].n_unique() == 3
    # the gaps seen live are in the manifests: the dropped diff's exact update ids, the trade
    # ids lost in the reconnect, and the disconnect's time in every recorded kind
    manifest = {kind: store.manifest(DatasetRef("binance", "spot", "ETH/USDT", kind))
                for kind in ("book_diff", "trades", "quotes")}
    lost = emu.messages[3_001:3_101]
    dropped_diff = emu.messages[next(iter(emu.drop))][1]["data"]
    book_gaps = [(g.start, g.end) for g in manifest["book_diff"].gaps
                 if g.kind == "book_sequence"]
    assert len(book_gaps) == 2 and (dropped_diff["U"], dropped_diff["u"]) in book_gaps
    lost_ids = [m["data"]["t"] for k, m in lost if k == "trade"]
    assert [(g.start, g.end) for g in manifest["trades"].gaps if g.kind == "trade_id"] == [
        (min(lost_ids), max(lost_ids))]
    for m in manifest.values():
        (outage,) = [g for g in m.gaps if g.kind == "time"]
        assert 0 <= outage.end - outage.start < 60_000_000
    # the recorder compacted its part files on exit: one file per day
    assert all(len(files) == 1 for files in store.partition_files(
        DatasetRef("binance", "spot", "ETH/USDT", "book_diff")).values())


def test_restart_continues_the_dataset_and_the_capture(tmp_path):
    async def part(limit, skip):
        emu = BinanceWsEmulator(shared_file(ETH), limit=limit)
        emu.cursor = skip
        for i in range(skip):
            emu._advance_book(i)
        await emu.start()
        try:
            rec = await _record(Store(tmp_path / "store"), emu, tmp_path / "captures")
        finally:
            await emu.stop()
        return rec.result

    first = asyncio.run(part(3_000, 0))
    second = asyncio.run(part(6_000, 3_000))
    # no tick/lot given: the store's inferred grid is reported, once per distinct warning
    assert any("inferred from the data" in w for w in first.warnings)
    assert len(first.warnings) == len(set(first.warnings))
    assert second.first_seq == first.next_seq
    assert first.capture_files == second.capture_files
    lines = Path(first.capture_files[0]).read_text().splitlines()
    assert len(lines) == first.lines_written + second.lines_written
    store = Store(tmp_path / "store")
    quotes = store.scan(DatasetRef("binance", "spot", "ETH/USDT", "quotes")).collect()
    assert quotes["seq"].is_unique().all()
    assert quotes.height == quotes["update_id"].n_unique()
    # the second run continued the update ids and trade ids exactly: the only gap recorded is
    # the time the recorder was not running, in each kind
    for kind in ("book_diff", "trades", "quotes"):
        gaps = store.manifest(DatasetRef("binance", "spot", "ETH/USDT", kind)).gaps
        assert [g.kind for g in gaps] == ["time"], (kind, gaps)


@contextlib.contextmanager
def emulator_thread(**kwargs):
    """The emulator on its own event loop in a thread (for a recorder in a subprocess)."""
    loop = asyncio.new_event_loop()
    emu = BinanceWsEmulator(**kwargs)
    ready = threading.Event()

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(emu.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield emu
    finally:
        asyncio.run_coroutine_threadsafe(emu.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_cli_record_flushes_on_signal(tmp_path, sig):
    with emulator_thread(capture=shared_file(ETH), pause_s=0.002) as emu:
        env = {**os.environ, "BOTCLAVE_DATA_DIR": str(tmp_path / "store")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "botclave_cli", "record", "--symbol", "ETH/USDT",
             "--ws-url", emu.ws_url, "--rest-url", emu.rest_url, "--flush-every", "200ms",
             "--store-every", "10m", "--json"],
            cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while emu.sent < 1_500 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    import json

    data = json.loads(out)
    assert data["stopped_by"] == sig.name
    assert data["messages"] >= 1_500 and data["rows_written"] > 0
    capture = Path(data["capture_files"][0])
    assert len(capture.read_text().splitlines()) == data["lines_written"]
    # the store write was due only every 10 minutes: the signal flushed it
    trades = Store(tmp_path / "store").scan(
        DatasetRef("binance", "spot", "ETH/USDT", "trades")).collect()
    trade_lines = sum(1 for line in capture.read_text().splitlines() if "@trade" in line)
    assert trades.height == trade_lines > 0


def test_record_usage_errors():
    from typer.testing import CliRunner

    from botclave_cli.cli.app import app

    runner = CliRunner()
    result = runner.invoke(app, ["record", "--symbol", "ETH/USDT", "--streams", "trades,klines"])
    assert result.exit_code == 2 and "--streams" in result.stderr
    result = runner.invoke(app, ["record", "--symbol", "ETH/USDT", "--duration", "soon"])
    assert result.exit_code == 2 and "--duration" in result.stderr
    result = runner.invoke(app, ["record", "--symbol", "ETH/USDT", "--market", "options"])
    assert result.exit_code == 2


def test_record_without_a_reachable_stream_exits_4(tmp_path):
    from typer.testing import CliRunner

    from botclave_cli.cli.app import app

    result = CliRunner().invoke(app, [
        "record", "--symbol", "ETH/USDT", "--ws-url", "ws://127.0.0.1:9/stream",
        "--rest-url", "http://127.0.0.1:9", "--duration", "1500ms",
        "--data-dir", str(tmp_path)])
    assert result.exit_code == 4 and "no message received" in result.stderr


def test_a_recording_across_midnight_compacts_the_past_day_when_the_new_one_starts(
        tmp_path, monkeypatch):
    import gzip
    import json

    # the ETH capture's first 3,000 lines with exchange times moved so that UTC midnight falls
    # at the middle line
    lines = gzip.decompress(shared_file(ETH).read_bytes()).decode().splitlines()[:3_000]
    bodies = [json.loads(line.split(" ", 1)[1]) for line in lines]
    times = [b["data"]["E"] for b in bodies if "E" in b.get("data", {})]
    middle = times[len(times) // 2]
    shift = (middle // 86_400_000 + 1) * 86_400_000 - middle  # ms: middle -> next midnight
    moved = []
    for line, body in zip(lines, bodies, strict=True):
        for field in ("E", "T"):
            if field in body.get("data", {}):
                body["data"][field] += shift
        moved.append(f"{line.split(' ', 1)[0]} {json.dumps(body, separators=(',', ':'))}")
    capture = tmp_path / "spot_ethusdt_midnight.txt"
    capture.write_text("\n".join(moved) + "\n")

    store = Store(tmp_path / "store")
    calls: list[tuple[str, tuple[str, ...] | None]] = []
    compact = Store.compact

    def spy(self, ref, dates=None):
        calls.append((ref.kind, None if dates is None else tuple(dates)))
        return compact(self, ref, dates)

    monkeypatch.setattr(Store, "compact", spy)

    async def main():
        emu = BinanceWsEmulator(capture, pause_s=0.0005)
        await emu.start()
        try:
            return await _record(store, emu, tmp_path / "captures")
        finally:
            await emu.stop()

    rec = asyncio.run(main())
    trades = DatasetRef("binance", "spot", "ETH/USDT", "trades")
    days = list(store.partition_files(trades))
    assert len(days) == 2 and rec.result.rows_written > 0
    # while recording, the first day was compacted once the second began; on exit, everything
    first_day_calls = [i for i, (kind, dates) in enumerate(calls)
                       if kind == "trades" and dates == (days[0],)]
    assert first_day_calls and first_day_calls[0] < len(calls) - 4
    for files in store.partition_files(trades).values():
        assert [f.name for f in files] == ["data.parquet"]
    sent = [m["data"]["t"] for k, m in emu_messages(capture) if k == "trade"]
    assert store.scan(trades).collect()["trade_id"].to_list() == sent


def emu_messages(capture: Path) -> list:
    return BinanceWsEmulator(capture).messages
