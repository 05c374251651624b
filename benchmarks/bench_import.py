"""Import speed: a Binance capture (parse, and parse + write) and a Binance aggTrades archive.

Uses the USD-M capture from ../shared when present (94k lines, 533k stored rows), else a
synthetic capture of the same shape. The peer is a plain ``json.loads`` loop over the same file
that only counts messages and levels (no checks, no frames): the floor of a pure-Python reader.
"""

from __future__ import annotations

import gzip
import json
import tempfile
import time
from pathlib import Path

from benchmarks.run import Result
from botclave_cli.data.importers.binance_archive import read_binance_archive
from botclave_cli.data.importers.capture import read_capture
from botclave_cli.data.importers.imports import import_capture
from botclave_cli.data.store import Store

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-ws"
USDM = SHARED / "usdm_btcusdt_20240808.gz"


def _synthetic_capture(path: Path, lines: int = 90_000) -> Path:
    t0, rows = 1_723_161_255_000, []
    for i in range(lines):
        local = (t0 + i) * 1_000_000
        if i % 3 == 0:
            msg = {
                "stream": "btcusdt@trade",
                "data": {
                    "e": "trade",
                    "t": i,
                    "p": "61800.1",
                    "q": "0.010",
                    "T": t0 + i,
                    "m": i % 2 == 0,
                    "X": "MARKET",
                },
            }
        elif i % 3 == 1:
            msg = {
                "stream": "btcusdt@depth@0ms",
                "data": {
                    "e": "depthUpdate",
                    "E": t0 + i,
                    "U": i,
                    "u": i,
                    "pu": i - 3,
                    "b": [[f"{61800 - k / 10:.1f}", "1.000"] for k in range(30)],
                    "a": [[f"{61800.1 + k / 10:.1f}", "1.000"] for k in range(30)],
                },
            }
        else:
            msg = {
                "stream": "btcusdt@bookTicker",
                "data": {
                    "e": "bookTicker",
                    "u": i,
                    "b": "61800.0",
                    "B": "1.0",
                    "a": "61800.1",
                    "A": "1.0",
                    "T": t0 + i,
                    "E": t0 + i,
                },
            }
        rows.append(f"{local} {json.dumps(msg)}")
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(rows) + "\n")
    return path


def _json_loop(path: Path) -> int:
    rows = 0
    with gzip.open(path, "rt") as fh:
        for line in fh:
            msg = json.loads(line.split(" ", 1)[1])
            data = msg.get("data", msg)
            rows += len(data.get("b", ())) + len(data.get("a", ())) if "U" in data else 1
    return rows


def _best(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _pieces(src: Path, folder: Path, count: int = 24) -> list[Path]:
    """``src`` cut into ``count`` gzip files at line boundaries, listed in reverse time order."""
    with gzip.open(src, "rt") as fh:
        lines = fh.readlines()
    step = -(-len(lines) // count)
    paths = []
    for i in range(count):
        paths.append(folder / f"piece{i:02d}.gz")
        with gzip.open(paths[-1], "wt") as fh:
            fh.write("".join(lines[i * step : (i + 1) * step]))
    return paths[::-1]


def _one_vs_many(src: Path, tmp: Path, note: str) -> Result:
    """``import capture`` of one file and of the same lines in 24 files (rows/s, parse + write):
    many files must stay within 10 % of one."""
    folder = tmp / "pieces"
    folder.mkdir()
    pieces = _pieces(src, folder)

    def run_import(paths: list[Path]) -> object:
        with tempfile.TemporaryDirectory() as root:
            return import_capture(Store(root), paths, tick_size=0.1, lot_size=0.001)

    one_secs, one = _best(lambda: run_import([src]), repeat=3)
    many_secs, many = _best(lambda: run_import(pieces), repeat=3)
    rows = sum(d["rows"] for d in one.datasets)  # type: ignore[attr-defined]
    assert rows == sum(d["rows"] for d in many.datasets)  # type: ignore[attr-defined]
    return Result(
        "import",
        f"import capture, {len(pieces)} files (parse + write)",
        rows / many_secs,
        "rows/s",
        "the same rows in one file",
        rows / one_secs,
        f"{note}: {rows} rows; one file {one_secs:.2f} s, {len(pieces)} files {many_secs:.2f} s, "
        f"many/one rows/s = {one_secs / many_secs:.3f}",
    )


def _agg_archive(path: Path, rows: int = 1_000_000) -> Path:
    t0 = 1_723_075_200_000
    with open(path, "w") as fh:
        fh.writelines(
            f"{i},61800.{i % 100:02d},0.{i % 1000:03d},{i * 2},{i * 2 + 1},{t0 + i // 20},"
            f"{'True' if i % 2 else 'False'},True\n"
            for i in range(rows)
        )
    return path


def run() -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        src = USDM if USDM.exists() else _synthetic_capture(Path(tmp) / "usdm_synthetic.gz")
        note = src.name
        secs, cap = _best(lambda: read_capture([src]))
        rows = sum(df.height for df in cap.frames().values())
        peer_secs, peer_rows = _best(lambda: _json_loop(src))
        results.append(
            Result(
                "import",
                "capture parse (read_capture)",
                rows / secs,
                "rows/s",
                "json.loads loop, no checks",
                peer_rows / peer_secs,
                f"{note}: {cap.lines} lines, {rows} rows, {secs:.2f} s",
            )
        )
        results.append(Result("import", "capture parse", cap.lines / secs, "lines/s", note=note))

        def full() -> object:
            with tempfile.TemporaryDirectory() as root:
                return import_capture(Store(root), [src], tick_size=0.1, lot_size=0.001)

        secs, _ = _best(full, repeat=2)
        results.append(
            Result(
                "import",
                "import capture (parse + write store)",
                rows / secs,
                "rows/s",
                note=f"{note}: {secs:.2f} s",
            )
        )

        results.append(_one_vs_many(src, Path(tmp), note))

        arch = _agg_archive(Path(tmp) / "BTCUSDT-aggTrades-2024-08-08.csv")
        secs, parsed = _best(lambda: read_binance_archive([arch]), repeat=2)
        results.append(
            Result(
                "import",
                "binance-archive aggTrades parse",
                parsed.rows / secs,
                "rows/s",
                note=f"{parsed.rows} rows synthetic CSV, {secs:.2f} s",
            )
        )
    return results
