"""Run a bench step in a fresh interpreter: its JSON answer, wall time and peak RSS.

A fresh process is how a first call is measured (imports and numba's on-disk cache loaded,
nothing compiled in this process before) and how a peak RSS belongs to one step alone. The
peak is the child's own VmHWM, read as it exits (``ru_maxrss`` would not do: Linux carries the
parent's high-water mark over fork and exec).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEAK_MARK = "__bench_peak_mib__"
_PEAK = f"""
import atexit, sys
def _peak():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM'):
            sys.stderr.write('{PEAK_MARK} %f\\n' % (int(line.split()[1]) / 1024))
atexit.register(_peak)
"""


def run_child(code: str, env: dict[str, str] | None = None) -> tuple[dict, float, float]:
    """(the JSON the child printed on its last stdout line, wall seconds, peak RSS MiB).
    Raises RuntimeError with the child's stderr tail when it fails."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _PEAK + code], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, check=False)
    wall = time.perf_counter() - started
    peaks = [float(line.split()[1]) for line in proc.stderr.splitlines()
             if line.startswith(PEAK_MARK)]
    if proc.returncode:
        raise RuntimeError(f"bench child failed ({proc.returncode}): {proc.stderr[-400:]}")
    return _json(proc.stdout), wall, (peaks[-1] if peaks else math.nan)


def _json(text: str) -> dict:
    """The whole output as one JSON document, else its last line (a child that logs first)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lines = [line for line in text.splitlines() if line.strip()]
        return json.loads(lines[-1]) if lines else {}


def run_cli(args: list[str]) -> tuple[dict, float, float]:
    """``botclave <args>`` (give ``--json``) in a fresh interpreter: (its JSON, s, peak MiB)."""
    code = ("import sys\nfrom botclave_cli.cli.app import main\n"
            f"sys.argv = ['botclave', *{args!r}]\nmain()\n")
    return run_child(code)
