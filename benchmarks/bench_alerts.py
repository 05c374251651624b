"""What an alert costs the trading thread: ``Alerter.fill`` (build the text, queue it for the
sender thread) per call, p50/p99, against the floor (a bare ``queue.put_nowait``) and against
sending the same alert synchronously (one Bot API ``sendMessage`` to a local HTTPS fake, what
the trading thread would wait without the sender thread).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from queue import Queue

import numpy as np

from benchmarks.run import Result
from botclave_cli.config import AlertsConfig
from botclave_cli.live.alerts import Alerter, SendResult, TelegramChannel
from tests.alerts_fakes import FakeBotApi, self_signed_cert

AREA = "alerts"
N_CALLS = 100_000
N_SYNC = 200
TOKEN = "7123456789:AAF-bench_token_0123456789abcdefgh"


class _Sink:
    name = "sink"

    def send(self, text: str) -> SendResult:
        return SendResult(True)

    def close(self) -> None:
        pass


def _per_call_us(fn, n: int) -> np.ndarray:
    out = np.empty(n)
    clock = time.perf_counter_ns
    for i in range(n):
        started = clock()
        fn(i)
        out[i] = clock() - started
    return out / 1e3


def run() -> list[Result]:
    cfg = AlertsConfig(queue_size=N_CALLS, max_per_window=10, window_s=60)
    alerter = Alerter([_Sink()], cfg, session="bench")
    ours = _per_call_us(lambda i: alerter.fill("BTC/USDT", "buy", 0.001, 60000.0 + i,
                                               fee=0.06, client_id="bc-3f2a1c-0000000007-en"),
                        N_CALLS)
    stats = alerter.close(timeout_s=30)["sink"]
    floor: Queue[object] = Queue(maxsize=N_CALLS)
    bare = _per_call_us(lambda i: floor.put_nowait(i), N_CALLS)
    with tempfile.TemporaryDirectory() as tmp:
        cert = self_signed_cert(Path(tmp))
        with FakeBotApi(*cert, token=TOKEN) as api:
            channel = TelegramChannel(TOKEN, "42", api_url=api.url, ca_file=cert[0])
            sync = _per_call_us(lambda i: channel.send(f"FILL BTC/USDT buy 0.001 @ {i}"),
                                N_SYNC)
            channel.close()
    single = stats.sent - stats.summaries
    note = (f"{N_CALLS:,} fills, K=10/60 s: {single} sent one by one, {N_CALLS - single:,} "
            f"in {stats.summaries} summary")
    sync_note = f"{N_SYNC} sendMessage calls, keep-alive HTTPS on 127.0.0.1"
    return [
        Result(AREA, "fill() on the caller, p50", float(np.percentile(ours, 50)), "us",
               "queue.put_nowait", float(np.percentile(bare, 50)), note),
        Result(AREA, "fill() on the caller, p99", float(np.percentile(ours, 99)), "us",
               "queue.put_nowait", float(np.percentile(bare, 99))),
        Result(AREA, "fill() on the caller, p99 vs synchronous send", float(
            np.percentile(ours, 99)), "us", "sendMessage inline, p99",
               float(np.percentile(sync, 99)), sync_note),
    ]
