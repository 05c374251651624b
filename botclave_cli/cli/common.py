"""What every command shares: option aliases, dates, the output object and the error table.

Commands never print directly: they build a result dict and hand it to ``Output.emit``, which
prints a rich table on a terminal, JSON with ``--json``, one summary line when stdout is not a
terminal (cron), and nothing with ``--quiet``. ``run`` maps library exceptions to a one-line
message on stderr and the exit code of ``botclave_cli.errors``; a traceback goes only to the log.

Light on purpose: every command module imports this when the CLI is built (``--help``), so it
imports nothing of the library that pulls polars, numpy or ccxt (see ``cli/defaults.py``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from botclave_cli.cli.defaults import DATA_DIR_ENV
from botclave_cli.errors import BotclaveError, UsageError
from botclave_cli.progress import NullProgress
from botclave_cli.progress import Progress as ProgressProtocol
from botclave_cli.secrets import mask

log = logging.getLogger("botclave.cli")

# Option aliases, defined once -------------------------------------------------------------------
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print nothing but errors (exit code tells).")
]
DataDirOpt = Annotated[
    Path,
    typer.Option("--data-dir", envvar=DATA_DIR_ENV, help="Dataset store root.", show_default=True),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="YAML config file this command is about.")
]
FromOpt = Annotated[
    str | None,
    typer.Option("--from", "--since", help="Start, inclusive: ISO date or datetime, UTC."),
]
ToOpt = Annotated[
    str | None,
    typer.Option("--to", "--until", help="End, exclusive: ISO date or datetime, UTC."),
]
SymbolOpt = Annotated[
    str, typer.Option("--symbol", "-s", help="ccxt unified symbol, e.g. BTC/USDT.")
]
ExchangeOpt = Annotated[str, typer.Option("--exchange", "-e", help="ccxt exchange id.")]
MarketOpt = Annotated[str, typer.Option("--market", "-m", help="spot | usdm | coinm.")]
SkipBadOpt = Annotated[
    bool, typer.Option("--skip-bad", help="Write good rows, report bad ones beside the dataset.")
]
ExecutorOpt = Annotated[str, typer.Option(
    "--executor", help="Where tasks run: auto (--jobs decides, as before), serial, processes "
    "(--jobs workers) or dask=tcp://HOST:8786 (a Dask cluster; pip install "
    "'botclave[cluster]'). Results are identical on every executor.")]

DEFAULT_DATA_DIR = Path("datasets")
MARKETS = ("spot", "usdm", "coinm")


def parse_when(value: str, option: str) -> dt.datetime:
    """ISO date or datetime -> aware UTC datetime; naive values are UTC."""
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{option} {value!r}: expected an ISO date or datetime such as 2024-08-08 or "
            "2024-08-08T12:00:00"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def parse_range(
    start: str | None, end: str | None, *, required: bool = False
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``--from``/``--to`` pair; the start must be before the end."""
    if required and (start is None or end is None):
        raise UsageError(f"--{'from' if start is None else 'to'} is required")
    lo = parse_when(start, "--from") if start is not None else None
    hi = parse_when(end, "--to") if end is not None else None
    if lo is not None and hi is not None and lo >= hi:
        raise UsageError(f"--from {start} must be before --to {end} (the range is [from, to))")
    return lo, hi


def check_market(market: str) -> str:
    if market not in MARKETS:
        raise UsageError(f"--market {market!r}: expected one of {', '.join(MARKETS)}")
    return market


class RichProgress:
    """``botclave_cli.progress.Progress`` drawn as a rich bar (terminal only)."""

    def __init__(self, console: Console) -> None:
        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
            TimeRemainingColumn(), console=console, transient=True,
        )
        self._task: Any = None

    def start(self, total: float | None, description: str) -> None:
        if self._task is None:
            self._bar.start()
        else:
            self._bar.update(self._task, completed=self._bar.tasks[0].total or 0)
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task(description, total=total)

    def advance(self, amount: float = 1) -> None:
        if self._task is not None:
            self._bar.advance(self._task, amount)

    def stop(self) -> None:
        if self._task is not None:
            self._bar.stop()


class Output:
    """Decides table / JSON / summary line / nothing, once for every command."""

    def __init__(self, json_mode: bool = False, quiet: bool = False) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.stdout = Console(highlight=False, soft_wrap=True)
        self.stderr = Console(stderr=True, highlight=False, soft_wrap=True)
        self.is_tty = sys.stdout.isatty()
        self._progress: RichProgress | None = None

    @property
    def interactive(self) -> bool:
        return self.is_tty and not self.json_mode and not self.quiet

    def progress(self) -> ProgressProtocol:
        if not self.interactive:
            return NullProgress()
        if self._progress is None:
            self._progress = RichProgress(self.stderr)
        return self._progress

    def close_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def emit(
        self,
        data: dict[str, Any],
        summary: str,
        rows: Sequence[dict[str, Any]] | None = None,
        title: str | None = None,
    ) -> None:
        """Print a command's result: JSON, a table plus summary (terminal), or the summary line."""
        self.close_progress()
        if self.quiet:
            return
        if self.json_mode:
            sys.stdout.write(mask(json.dumps(data, default=_json_default, indent=None)) + "\n")
            sys.stdout.flush()
            return
        if self.is_tty and rows:
            self.stdout.print(render_table(rows, title))
        self.stdout.print(mask(summary), markup=False)

    def warn(self, message: str) -> None:
        if not self.quiet:
            self.stderr.print(f"warning: {mask(message)}", markup=False)

    def error(self, message: str) -> None:
        self.close_progress()
        self.stderr.print(f"error: {mask(message)}", markup=False)


def render_table(rows: Sequence[dict[str, Any]], title: str | None = None) -> Table:
    table = Table(title=title, show_lines=False)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    return table


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return mask(str(value))


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "item"):
        return value.item()
    return str(value)


@contextlib.contextmanager
def run(json_mode: bool = False, quiet: bool = False) -> Iterator[Output]:
    """Run a command body: library errors become one line on stderr and their exit code."""
    out = Output(json_mode, quiet)
    try:
        yield out
    except typer.Exit:
        out.close_progress()
        raise
    except BotclaveError as exc:
        log.info("command failed", extra={"error": exc.message, "exit_code": exc.exit_code})
        out.error(exc.message)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        out.error("interrupted")
        raise typer.Exit(130) from None
    except OSError as exc:  # the machine's, not a bug: a full disk, no permission, a lost mount
        log.info("command failed", extra={"error": str(exc), "exit_code": 1})
        where = f"{exc.filename}: " if exc.filename else ""
        out.error(f"{where}{exc.strerror or exc}")
        raise typer.Exit(1) from None
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a clean line
        log.exception("internal error")
        out.error(f"internal error: {type(exc).__name__}: {exc} (details in the log file)")
        raise typer.Exit(1) from None
    finally:
        out.close_progress()
