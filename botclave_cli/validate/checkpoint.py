"""Resumable validation: every evaluation's outcome is saved the moment it completes, so a
validation killed after hours (SIGKILL, SIGTERM, Ctrl-C, a full disk) restarts where it stopped.

One file per evaluation, ``<directory>/<key>.json``, written by whichever process ran it (the
validator's or a pool worker) with ``data.atomic.write_text`` (temporary file, fsync, rename):
a file is complete or absent, whatever kills the run, and parallel workers never share a file.
The KEY is the sha256 of everything that decides the outcome: the run key (the evaluator's
fingerprint - strategy and exchange config, symbol, tick/lot, bar, the content of the data it
reads - and the code version) plus the task (parameter set, window ``[start_us, end_us)``,
whether the series are kept). A changed config, data set or commit gives other keys, so a stale
outcome is never reused; an unchanged evaluation is reused even by another ``which`` (``oos``
after ``all``) of the same run.

An outcome comes back exactly as it was computed (floats through ``repr``, NaN and infinities
kept, the series as float64 bytes), so a resumed run writes the same files byte for byte. A file
that cannot be read (truncated, corrupt, another format) is skipped with a warning and the
evaluation runs again. The validator's caller removes the folder once the results are written.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from botclave_cli.data.atomic import write_text
from botclave_cli.validate.evaluation import Outcome, Task, run_task

FORMAT = 2  # 2: series zlib-compressed


def _default(obj: Any) -> Any:
    """JSON for what an evaluator holds: arrays by content hash, dataclasses by their fields."""
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        return {"ndarray": hashlib.sha256(arr.tobytes()).hexdigest(), "dtype": arr.dtype.str,
                "shape": list(arr.shape)}
    if isinstance(obj, np.generic):
        return obj.item()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"class": f"{type(obj).__module__}.{type(obj).__qualname__}",
                **{f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}}
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot fingerprint a {type(obj).__name__}")


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_default).encode()


def sha256(obj: Any) -> str:
    return hashlib.sha256(canonical(obj)).hexdigest()


def evaluator_fingerprint(evaluator: Any) -> Any:
    """What identifies an evaluator's outcomes: its ``fingerprint()`` when it has one (the
    backtest evaluator adds the content of its data), else its fields (a dataclass)."""
    method = getattr(evaluator, "fingerprint", None)
    return method() if callable(method) else json.loads(canonical(evaluator))


def run_key(evaluator: Any, code: str) -> str:
    """The part of every evaluation key that the run shares: evaluator and code version."""
    return sha256({"format": FORMAT, "evaluator": evaluator_fingerprint(evaluator),
                   "code": code})


def _array(a: np.ndarray) -> str:
    """float64 bytes, zlib-compressed (bar returns are mostly 0.0 where the strategy is flat:
    a year of 1m bars is 4.2 MB raw), base64."""
    raw = np.asarray(a, dtype="<f8").tobytes()
    return base64.b64encode(zlib.compress(raw, 1)).decode("ascii")


def _unarray(text: str) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(text, validate=True))
    return np.frombuffer(raw, dtype="<f8").astype(np.float64)


def encode(key: str, outcome: Outcome) -> str:
    """One outcome as JSON text (NaN and infinities as JSON's common extensions)."""
    return json.dumps({
        "format": FORMAT, "key": key, "metrics": outcome.metrics, "n_bars": outcome.n_bars,
        "sr_per_bar": outcome.sr_per_bar, "skew": outcome.skew, "kurtosis": outcome.kurtosis,
        "returns": _array(outcome.returns), "trade_returns": _array(outcome.trade_returns),
    }, sort_keys=True)


def _number(x: Any) -> float:
    if not isinstance(x, float | int) or isinstance(x, bool):
        raise ValueError(f"expected a number, got {x!r}")
    return x


def decode(text: str, key: str) -> Outcome:
    """The outcome saved under ``key``; ValueError when the text is not one."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
        raise ValueError("not an evaluation of this key and format")
    metrics = data["metrics"]
    if not isinstance(metrics, dict) or not all(
            v is None or (isinstance(v, float | int) and not isinstance(v, bool))
            for v in metrics.values()):
        raise ValueError("bad metrics")
    n_bars = data["n_bars"]
    if not isinstance(n_bars, int) or isinstance(n_bars, bool):
        raise ValueError("bad n_bars")
    return Outcome(metrics, n_bars, _number(data["sr_per_bar"]), _number(data["skew"]),
                   _number(data["kurtosis"]), _unarray(data["returns"]),
                   _unarray(data["trade_returns"]))


def _plain(outcome: Outcome) -> bool:
    """Only outcomes of plain Python numbers are saved: a numpy integer would come back as an
    int and could then be reported differently, so such an outcome is simply recomputed."""
    values = [*outcome.metrics.values(), outcome.sr_per_bar, outcome.skew, outcome.kurtosis]
    return all(v is None or type(v) in (float, int, np.float64) for v in values) \
        and type(outcome.n_bars) is int


@dataclass(frozen=True)
class SavedTask:
    """A task whose outcome is written to ``path`` as soon as it is computed (in the process
    that computes it). ``weight`` is the task's, for ``--jobs auto``."""

    task: Task
    key: str
    path: str

    @property
    def weight(self) -> int:
        return self.task.weight


def run_saved(item: SavedTask) -> Outcome:
    """``run_task``, then the outcome saved; a failed save (a full disk) only costs the resume:
    the outcome is returned all the same."""
    outcome = run_task(item.task)
    save(item, outcome)
    return outcome


def save(item: SavedTask, outcome: Outcome) -> None:
    """Write ``outcome`` to ``item.path`` (atomically); a failed save (a full disk) only costs
    the resume. Called by the process that computed the outcome, or by the client of a remote
    executor as the outcome arrives."""
    if _plain(outcome):
        with contextlib.suppress(OSError, ValueError, TypeError):
            write_text(Path(item.path), encode(item.key, outcome) + "\n")


@dataclass
class Checkpoint:
    """The saved evaluations of one run in ``directory``; ``resume=False`` discards them first
    (the new ones are saved all the same). Counts what was reused and evaluated; ``warnings``
    names the files that could not be read."""

    directory: Path
    run_key: str
    resume: bool = True
    reused: int = 0
    evaluated: int = 0
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        if not self.resume:
            self.remove()

    def key(self, task: Task) -> str:
        return sha256({"run": self.run_key, "params": task.params, "start_us": task.start_us,
                       "end_us": task.end_us, "keep_series": task.keep_series})

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def lookup(self, task: Task) -> Outcome | None:
        """The saved outcome of ``task``, or None (not saved, or unreadable: warned)."""
        key = self.key(task)
        path = self.path(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.warnings.append(f"checkpoint {path}: unreadable ({exc}); evaluated again")
            return None
        try:
            outcome = decode(text, key)
        except (ValueError, KeyError, TypeError, zlib.error) as exc:
            self.warnings.append(f"checkpoint {path}: corrupt or truncated ({exc}); "
                                 "evaluated again")
            return None
        return outcome

    def pending(self, task: Task) -> SavedTask:
        key = self.key(task)
        return SavedTask(task, key, str(self.path(key)))

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def report(self) -> dict[str, Any]:
        return {"reused": self.reused, "evaluated": self.evaluated,
                "checkpoint": str(self.directory), "unreadable": len(self.warnings),
                "resume": self.resume}
