"""Replay a recorded stream into an execution core chunk by chunk, each event just in time.

This is what a live loop does with events as they arrive, at full speed: before each chunk of
trades, the signals arriving, the book samples and the funding due by the chunk's last trade
are fed, never later (``kernel.py``: what a driver must feed before a chunk). The outputs equal
those of feeding the whole stream at once, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from botclave_cli.execution.core import CoreInputs, ExecutionCore


def chunk_bounds(n: int, cuts: Iterable[int]) -> list[tuple[int, int]]:
    """Non-empty ``[start, end)`` ranges of ``n`` trades cut before each index in ``cuts``."""
    edges = [0, *sorted({c for c in cuts if 0 < c < n}), n]
    return list(zip(edges, edges[1:], strict=False))


def replay(core: ExecutionCore, inputs: CoreInputs, ts_us: np.ndarray, px: np.ndarray,
           qty: np.ndarray, cuts: Iterable[int]) -> ExecutionCore:
    """Feed trades (us, ticks, lots) cut at ``cuts`` and every other event just in time."""
    sig, book = inputs.signals, inputs.book
    fed_sig = fed_book = fed_fund = 0
    for a, b in chunk_bounds(len(ts_us), cuts):
        last = ts_us[b - 1]
        n_sig = int(np.searchsorted(sig.arr, last, side="right"))
        if n_sig > fed_sig:
            core.submit(type(sig)(*(x[fed_sig:n_sig] for x in sig)))
            fed_sig = n_sig
        if book is not None:
            n_b = int(np.searchsorted(book.ts, last, side="right"))
            if n_b > fed_book:
                core.add_book(type(book)(*(x[fed_book:n_b] for x in book)))
                fed_book = n_b
        n_f = int(np.searchsorted(inputs.funding_ts, last, side="right"))
        if n_f > fed_fund:
            core.add_funding(inputs.funding_ts[fed_fund:n_f], inputs.funding_rate[fed_fund:n_f])
            fed_fund = n_f
        core.trades_ticks(ts_us[a:b], px[a:b], qty[a:b])
    return core
