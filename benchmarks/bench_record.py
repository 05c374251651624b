"""Recorder: resident memory over a long replay (it must stay flat, not grow with the day).

Two measurements:
- live: the whole recorder, WebSocket and all (below);
- long: the recorder's store side (``RecordSink``) fed the same capture several times over, ids
  and times moved on each pass as if the stream went on, a store write every 2,000 lines: what
  must not grow with the day's rows is measured over several times more rows than one replay.

The USD-M capture (../shared, ~100k messages) is served by the local WebSocket emulator, in the
same process, to a recorder writing its capture file and the store (a store write every 0.5 s,
appended as part files, compacted on exit). Resident memory is read after each tenth of the
stream; the emulator's copy of the whole capture is loaded before the first reading, so growth
between the first and the last tenth is the recorder's.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

from benchmarks.run import Result

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("POLARS_MAX_THREADS", "1")

AREA = "record"
USDM = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-ws"
        / "usdm_btcusdt_20240808.gz")


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _reset_peak() -> None:
    """Reset the process's peak RSS (VmHWM): ``make bench`` runs every bench in one process,
    and the earlier ones' peaks are not the recorder's. Linux >= 4.0; elsewhere a no-op."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _peak_mb() -> float:
    with open("/proc/self/status") as fh:
        line = next(x for x in fh if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024 / 1e6  # kB


def run() -> list[Result]:
    if not USDM.exists():
        return [Result(AREA, "recorder memory", 0.0, "MB", note=f"{USDM} absent: skipped")]
    return [*_live(), *_long_sink()]


def _live() -> list[Result]:
    from botclave_cli.data.store import Store
    from botclave_cli.exchange.record_config import RecordConfig
    from botclave_cli.exchange.recorder import Recorder, ccxt_snapshot_fetcher
    from tests.emulator.binance_ws import BinanceWsEmulator

    checkpoints: list[float] = []
    stats: dict[str, float] = {}

    async def main(tmp: Path) -> None:
        emu = await BinanceWsEmulator(USDM).start()
        cfg = RecordConfig(symbol="BTC/USDT:USDT", market="usdm", ws_url=emu.ws_url,
                           flush_every_s=0.25, store_every_s=0.5)
        store = Store(tmp / "store")
        rec = Recorder(store, cfg, capture_dir=tmp / "captures",
                       fetch_snapshot=ccxt_snapshot_fetcher("usdm", emu.rest_url))
        total = len(emu.messages)

        async def watch() -> None:
            marks = [total * i // 10 for i in range(1, 11)]
            while marks:
                if rec.result.messages >= marks[0]:
                    checkpoints.append(_rss_mb())
                    marks.pop(0)
                    continue
                await asyncio.sleep(0.05)
            rec.stop("bench")

        task = asyncio.create_task(watch())
        started = time.perf_counter()
        await rec.run()
        stats["seconds"] = time.perf_counter() - started
        task.cancel()
        await emu.stop()
        stats["messages"] = rec.result.messages
        stats["rows"] = rec.result.rows_written

    _reset_peak()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp)))
    if len(checkpoints) < 10:
        return [Result(AREA, "recorder memory", 0.0, "MB", note="did not finish")]
    growth = checkpoints[-1] - checkpoints[0]
    return [
        Result(AREA, "recorder RSS after 1/10 of the USD-M stream", checkpoints[0], "MB"),
        Result(AREA, "recorder RSS after the whole USD-M stream", checkpoints[-1], "MB",
               note=f"tenths: {', '.join(f'{c:.0f}' for c in checkpoints)} MB"),
        Result(AREA, "recorder RSS growth, first to last tenth", growth, "MB",
               note=f"peak {_peak_mb():.0f} MB during the replay (emulator included); "
                    f"{stats['messages']:,.0f} messages, {stats['rows']:,.0f} rows stored "
                    f"in {stats['seconds']:.0f} s"),
    ]


PASSES = 6


def _shifted_lines(k: int, lines: list[str], span_ns: int, id_span: int,
                   trade_span: int) -> list[str]:
    """Pass ``k`` of the capture: receive times, exchange times and ids moved past pass k-1."""
    import json

    out = []
    for line in lines:
        ns, body = line.split(" ", 1)
        msg = json.loads(body)
        data = msg.get("data", msg)
        for key in ("E", "T"):
            if key in data:
                data[key] += k * span_ns // 1_000_000
        for key in ("U", "u", "pu", "lastUpdateId"):
            if key in data:
                data[key] += k * id_span
        if "t" in data:
            data["t"] += k * trade_span
        out.append(f"{int(ns) + k * span_ns} {json.dumps(msg, separators=(',', ':'))}")
    return out


def _long_sink() -> list[Result]:
    import gzip
    import re

    from botclave_cli.data.store import Store
    from botclave_cli.exchange.record_config import RecordConfig, RecordResult
    from botclave_cli.exchange.record_sink import RecordSink

    lines = gzip.decompress(USDM.read_bytes()).decode().splitlines()
    span_ns = int(lines[-1][:19]) - int(lines[0][:19]) + 1_000_000_000
    ids = [int(x) for x in re.findall(r'"u":(\d+)', "\n".join(lines))]
    trades = [int(x) for x in re.findall(r'"t":(\d+)', "\n".join(lines))]
    id_span, trade_span = max(ids) - min(ids) + 1, max(trades) - min(trades) + 1
    cfg = RecordConfig(symbol="BTC/USDT:USDT", market="usdm", store_every_s=0.0,
                       tick_size=0.1, lot_size=0.001)
    after: list[float] = []
    rows = 0
    started = time.perf_counter()
    _reset_peak()
    with tempfile.TemporaryDirectory() as tmp:
        sink = RecordSink(Store(Path(tmp) / "store"), cfg, RecordResult(),
                          capture_dir=Path(tmp) / "captures", symbol_id="BTCUSDT",
                          exchange="binance")
        for k in range(PASSES):
            shifted = _shifted_lines(k, lines, span_ns, id_span, trade_span)
            for i in range(0, len(shifted), 2_000):
                for line in shifted[i:i + 2_000]:
                    sink.add(line)
                sink.flush(store=True)
            after.append(_rss_mb())
        sink.compact()
        rows = sink.result.rows_written
    took = time.perf_counter() - started
    return [Result(
        AREA, f"recorder store side, RSS growth over {PASSES} passes of the capture",
        after[-1] - after[0], "MB",
        note=f"RSS after each pass {', '.join(f'{a:.0f}' for a in after)} MB; "
             f"{rows:,} rows in {sink.result.lines_written // 2_000 + PASSES} appends, "
             f"compacted at the end; peak {_peak_mb():.0f} MB; {took:.0f} s")]
