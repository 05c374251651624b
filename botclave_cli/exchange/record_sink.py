"""Where a live recording goes: the day's capture file, the store, and the gaps it saw.

Memory stays flat however long a recording runs: lines are dropped after each flush, and the
store gets each chunk as new part files (``Store.append``: the day's stored rows are never read
back); the parts are compacted into the day's file when a dataset reaches a new UTC day and on
exit.

Gaps go to the datasets' manifests as they are seen: a depth diff that does not continue the
previous one (a lost message, a reconnect, a restart), a trade id that skips ids across flushes,
and the time a disconnect or a restart lasted (for every recorded kind).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from botclave_cli.data.manifest import Gap
from botclave_cli.data.store import DatasetRef, Store
from botclave_cli.logs import get_logger

if TYPE_CHECKING:
    from botclave_cli.exchange.record_config import RecordConfig, RecordResult

log = get_logger(__name__)

STORE_KINDS = ("trades", "book_snapshot", "book_diff", "quotes")
#: the store kinds each stream feeds (a disconnect is a time gap in each)
STREAM_KINDS = {"trades": ("trades",), "depth": ("book_diff",), "quotes": ("quotes",)}


class RecordSink:
    """Buffers capture lines; ``flush`` appends them to the capture file (fsync) and, every
    ``store_every_s`` or when asked, parses them into the store with ``seq`` continuing the
    stored ``seq``. Counts go to the recorder's ``result``."""

    def __init__(self, store: Store, cfg: RecordConfig, result: RecordResult, *,
                 capture_dir: Path, symbol_id: str, exchange: str) -> None:
        self.store = store
        self.cfg = cfg
        self.result = result
        self.capture_dir = Path(capture_dir)
        self.symbol_id = symbol_id
        self.exchange = exchange
        #: seq of the next line to reach the store
        self.seq = 0
        self._pending: list[str] = []
        self._unstored: list[str] = []
        self._last_store = time.monotonic()
        #: kind -> gaps seen live and not yet in the manifest
        self._gaps: dict[str, list[Gap]] = {}
        self._last_diff_u: int | None = None
        self._last_trade_id: int | None = None
        #: kind -> the newest ``date=`` partition written (YYYY-MM-DD)
        self._newest_day: dict[str, str] = {}

    def add(self, line: str) -> None:
        """One capture line: ``<receive time ns> <JSON>``."""
        self._pending.append(line)

    def resume(self) -> int | None:
        """Continue a stored recording: the next ``seq``, the last diff update id and trade id
        (what a restart missed becomes gaps); returns the last stored receive time (us)."""
        top: dict[str, int] = {}
        last_us: int | None = None
        for kind, columns in (("book_snapshot", ("seq",)), ("book_diff", ("seq", "last_update_id")),
                              ("quotes", ("seq",)), ("trades", ("trade_id",))):
            ref = self._ref(kind)
            if not self.store.exists(ref):
                continue
            row = self.store.scan(ref).select(
                *(pl.col(c).max() for c in columns), pl.col("ts_local").max()).collect().row(0)
            for column, value in zip(columns, row[:-1], strict=True):
                if value is not None:
                    top[column] = max(int(value), top.get(column, int(value)))
            if row[-1] is not None:
                us = int(row[-1].timestamp() * 1_000_000)
                last_us = us if last_us is None else max(last_us, us)
        self.seq = self.result.first_seq = top.get("seq", -1) + 1
        self._last_diff_u = top.get("last_update_id")
        self._last_trade_id = top.get("trade_id")
        return last_us

    # gaps --------------------------------------------------------------------------------------
    def check_diff(self, first: int, last: int, prev: int | None, ts_us: int) -> None:
        """A diff that does not continue the previous one (spot: ``U`` = last ``u`` + 1;
        futures: ``pu`` = last ``u``) is a book-sequence gap; a diff already covered is not."""
        before = self._last_diff_u
        if before is not None and last > before:
            missing_to = (first - 1) if prev is None else int(prev)
            if missing_to > before:
                self.result.gaps += 1
                self._add_gap("book_diff", Gap(
                    kind="book_sequence", start=before + 1, end=missing_to,
                    detail=f"seen live by the recorder at {_iso(ts_us)}; the book resynced"))
        self._last_diff_u = last if before is None else max(before, last)

    def note_disconnect(self, since_us: int | None, until_us: int) -> None:
        if since_us is None:
            return
        for stream in self.cfg.streams:
            for kind in STREAM_KINDS[stream]:
                self._add_gap(kind, Gap(kind="time", start=since_us, end=until_us,
                                        detail="not connected: a disconnect or a restart"))

    def _add_gap(self, kind: str, gap: Gap) -> None:
        self._gaps.setdefault(kind, []).append(gap)
        log.info("gap", extra={"kind": kind, "gap": gap.kind, "start": gap.start,
                               "end": gap.end, "symbol": self.cfg.symbol})

    # writing -----------------------------------------------------------------------------------
    def flush(self, store: bool = False) -> None:
        """Append pending lines to the day's capture file (fsync); every ``store_every_s`` (or
        with ``store=True``) also parse the lines not yet stored into the store."""
        lines, self._pending = self._pending, []
        if lines:
            self._append_capture(lines)
            self.result.lines_written += len(lines)
            self._unstored.extend(lines)
        due = time.monotonic() - self._last_store >= self.cfg.store_every_s
        if self._unstored and (store or due):
            chunk, self._unstored = self._unstored, []
            self.result.rows_written += self._write_store(chunk)
            self.seq += len(chunk)
            self._last_store = time.monotonic()

    def _append_capture(self, lines: list[str]) -> None:
        by_day: dict[str, list[str]] = {}
        for line in lines:
            day = dt.datetime.fromtimestamp(int(line[:19]) / 1e9, dt.UTC).strftime("%Y%m%d")
            by_day.setdefault(day, []).append(line)
        self.capture_dir.mkdir(parents=True, exist_ok=True)
        for day, chunk in by_day.items():
            path = self.capture_dir / f"{self.cfg.market}_{self.symbol_id.lower()}_{day}.txt"
            with open(path, "a", encoding="utf-8") as fh:
                fh.write("\n".join(chunk) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            if str(path) not in self.result.capture_files:
                self.result.capture_files.append(str(path))

    def _write_store(self, lines: list[str]) -> int:
        from botclave_cli.data.importers.capture import read_capture
        from botclave_cli.data.importers.imports import capture_parsed
        from botclave_cli.data.importers.writer import write_import

        with tempfile.TemporaryDirectory(prefix="botclave-rec-") as tmp:
            path = Path(tmp) / "chunk.txt"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            cap = read_capture([path], skip_bad=True, market=self.cfg.market,
                               symbol=self.cfg.symbol)
        parsed = capture_parsed(cap)
        parsed.source = "record"
        parsed.sources = [f"ws:{self.symbol_id.lower()}"]
        parsed.bad = []
        parsed.frames = [(kind, levels, df.with_columns(pl.col("seq") + self.seq))
                         for kind, levels, df in parsed.frames if df.height]
        if not parsed.frames:
            return 0
        for kind, _, df in parsed.frames:
            if kind == "trades":
                self._check_trade_ids(df["trade_id"])
        kinds = {kind for kind, _, _ in parsed.frames}
        parsed.gaps = {k: g for k, g in self._gaps.items() if k in kinds}
        self._gaps = {k: g for k, g in self._gaps.items() if k not in kinds}
        written = write_import(self.store, parsed, tick_size=self.cfg.tick_size,
                               lot_size=self.cfg.lot_size, append=True)
        for warning in written.warnings:
            if warning not in self.result.warnings and len(self.result.warnings) < 20:
                self.result.warnings.append(warning)
                log.warning(warning, extra={"symbol": self.cfg.symbol})
        for dataset in written.datasets:  # a new day: the past days' parts -> one file each
            kind, days = dataset["kind"], dataset["partitions"]
            if len(days) > 1 or max(days) > self._newest_day.setdefault(kind, max(days)):
                self.compact([kind], before=max(days))
                self._newest_day[kind] = max(days)
        return parsed.rows

    def _check_trade_ids(self, ids: pl.Series) -> None:
        """Trade ids skipped between the last stored trade and this chunk (gaps inside the chunk
        are found by the import writer)."""
        ids = ids.drop_nulls()
        if ids.is_empty():
            return
        first, last = int(ids.min()), int(ids.max())  # type: ignore[arg-type]
        before = self._last_trade_id
        if before is not None and first > before + 1:
            self._add_gap("trades", Gap(kind="trade_id", start=before + 1, end=first - 1,
                                        detail=f"{first - before - 1} id(s) missing"))
        self._last_trade_id = last if before is None else max(before, last)

    def compact(self, kinds: tuple[str, ...] | list[str] = STORE_KINDS,
                 before: str | None = None) -> None:
        """Fold the store's part files into one file per day (all days, or days < ``before``)."""
        for kind in kinds:
            ref = self._ref(kind)
            if not self.store.exists(ref):
                continue
            days = list(self.store.partition_files(ref))
            self.store.compact(ref, [d for d in days if before is None or d < before])

    def _ref(self, kind: str) -> DatasetRef:
        return DatasetRef(self.exchange, self.cfg.market, self.cfg.symbol, kind)


def _iso(ts_us: int) -> str:
    return dt.datetime.fromtimestamp(ts_us / 1e6, dt.UTC).isoformat(timespec="milliseconds")


