"""``make bench``: run every ``benchmarks/bench_*.py`` and print one table.

Each bench module defines ``run() -> list[Result]``. Figures are printed, never asserted; peers
installed in the bench environment are measured on the same data in the same run.
Set ``BOTCLAVE_BENCH_ONLY=fetch,footprint`` to run a subset.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table


@dataclass
class Result:
    area: str
    what: str
    value: float
    unit: str
    peer: str = ""
    peer_value: float | None = None
    note: str = ""


def _modules() -> list[str]:
    import benchmarks

    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__)
                   if m.name.startswith("bench_"))
    only = os.environ.get("BOTCLAVE_BENCH_ONLY")
    if only:
        wanted = {f"bench_{w.strip()}" for w in only.split(",")}
        names = [n for n in names if n in wanted]
    return names


def main() -> int:
    # a wide table when piped to a file or a CI log: figures must not be cut to 80 columns
    console = Console() if sys.stdout.isatty() else Console(width=220)
    results: list[Result] = []
    failed = []
    for name in _modules():
        started = time.perf_counter()
        console.print(f"[bold]{name}[/] ...")
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            results.extend(module.run())
        except Exception as exc:  # noqa: BLE001 - one failing bench must not hide the others
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
        console.print(f"  done in {time.perf_counter() - started:.1f} s")
    table = Table(title="botclave benchmarks (this machine)")
    for column in ("area", "what", "value", "unit", "peer", "peer value", "ours / peer", "note"):
        table.add_column(column)
    for r in results:
        ratio = f"{r.value / r.peer_value:.1f}x" if r.peer_value else ""
        table.add_row(r.area, r.what, f"{r.value:,.6g}", r.unit, r.peer,
                      f"{r.peer_value:,.6g}" if r.peer_value is not None else "", ratio, r.note)
    console.print(table)
    for line in failed:
        console.print(f"[red]failed[/] {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
