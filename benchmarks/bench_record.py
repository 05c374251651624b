"""Recorder: resident memory over a long replay (it must stay flat, not grow with the day).

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


def _peak_mb() -> float:
    with open("/proc/self/status") as fh:
        line = next(x for x in fh if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024 / 1e6  # kB


def run() -> list[Result]:
    if not USDM.exists():
        return [Result(AREA, "recorder memory", 0.0, "MB", note=f"{USDM} absent: skipped")]
    from botclave_cli.data.store import Store
    from botclave_cli.exchange.recorder import RecordConfig, Recorder, ccxt_snapshot_fetcher
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
               note=f"peak {_peak_mb():.0f} MB (process, emulator included); "
                    f"{stats['messages']:,.0f} messages, {stats['rows']:,.0f} rows stored "
                    f"in {stats['seconds']:.0f} s"),
    ]
