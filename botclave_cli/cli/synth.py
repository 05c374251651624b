"""``botclave synth``: write the embedded synthetic market (seeded, offline) into the store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from botclave_cli.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOpt,
    FromOpt,
    JsonOpt,
    QuietOpt,
    SymbolOpt,
    parse_when,
    run,
)
from botclave_cli.cli.defaults import SYNTH_TICK_SIZE
from botclave_cli.errors import UsageError

if TYPE_CHECKING:  # the library is imported in the command (cli/defaults.py says why)
    from botclave_cli.data.synth import SynthConfig

_OPTION_OF = {"start": "--from", "days": "--days", "seed": "--seed",
              "trades_per_day": "--trades-per-day", "symbol": "--symbol",
              "book_interval_ms": "--book-interval-ms", "tick_size": "--tick-size",
              "start_price": "--start-price"}


def synth(
    symbol: SymbolOpt = "BTC/USDT",
    start: FromOpt = None,
    days: Annotated[int, typer.Option("--days", help="Days to generate (UTC).")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same bytes.")] = 7,
    trades_per_day: Annotated[
        int, typer.Option("--trades-per-day", help="Background aggressive orders per day.")
    ] = 400_000,
    book_interval_ms: Annotated[
        int, typer.Option("--book-interval-ms", help="Depth diff cadence (100..1000 ms).")
    ] = 250,
    tick_size: Annotated[
        float, typer.Option("--tick-size", help="Price tick; moves are planned in ticks.")
    ] = SYNTH_TICK_SIZE,
    start_price: Annotated[float, typer.Option("--start-price", help="First price.")] = 42_000.0,
    no_edge: Annotated[bool, typer.Option(
        "--no-edge", help="Control market: the same events and draws, but no follow-through "
        "after the absorptions (background only), so there is no edge to find.")] = False,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Generate the deterministic synthetic market: trades, L2 book (snapshot + diffs), quotes,
    1m OHLCV and truth.json (the planted events and quiet stretches), as exchange "synth".

    Regenerating replaces the whole synth/spot/<symbol> folder (derived datasets included).

    A day spans about 1000 ticks: about 1000 USD (BTC-like) at the default 1.0 tick.

    Every absorption has a planted follow-through (a 450-tick reversal within 8 minutes with
    probability 0.7, else a 160-tick break); truth.json's "edge" prices a trade of it after
    fees. --no-edge writes the control: the same market and seed without the follow-through.

    Example: botclave synth --symbol BTC/USDT --from 2024-01-01 --days 5 --seed 7 --no-edge
    """
    with run(json_, quiet) as out:
        from botclave_cli.data.store import Store
        from botclave_cli.data.synth import write_synth

        cfg = _config(symbol, start, days, seed, trades_per_day, book_interval_ms, tick_size,
                      start_price, not no_edge)
        written = write_synth(Store(data_dir), cfg, progress=out.progress())
        rows = [{"kind": kind, "rows": n, "path": str(written.datasets[kind])}
                for kind, n in written.rows.items()]
        data = {
            "symbol": cfg.symbol, "seed": cfg.seed, "from": cfg.start.isoformat(),
            "days": cfg.days, "rows": written.rows,
            "datasets": {k: str(v) for k, v in written.datasets.items()},
            "truth": str(written.truth_path), "events": written.events,
            "quiet": written.quiet, "seconds": round(written.seconds, 3),
            "edge": cfg.edge, "expected_edge_bps": written.expected_edge_bps,
        }
        edge = (f"edge {written.expected_edge_bps:+.1f} bps per trade after fees" if cfg.edge
                else f"control, no edge ({written.expected_edge_bps:+.1f} bps per trade)")
        summary = (
            f"synth {cfg.symbol} {cfg.start} +{cfg.days}d seed {cfg.seed}: "
            f"{written.rows['trades']:,} trades, {written.rows['book_diff']:,} book diff rows, "
            f"{written.rows['quotes']:,} quotes, {written.rows['ohlcv']:,} candles; "
            f"{written.events} planted events, {written.quiet} quiet stretches; {edge}; "
            f"truth {written.truth_path} ({written.seconds:.1f} s)"
        )
        out.emit(data, summary, rows=rows, title="synthetic market")


def _config(symbol: str, start: str | None, days: int, seed: int, trades_per_day: int,
            book_interval_ms: int, tick_size: float, start_price: float,
            edge: bool = True) -> SynthConfig:
    from pydantic import ValidationError

    from botclave_cli.data.synth import SynthConfig

    values: dict = {"symbol": symbol, "days": days, "seed": seed,
                    "trades_per_day": trades_per_day, "book_interval_ms": book_interval_ms,
                    "tick_size": tick_size, "start_price": start_price, "edge": edge}
    if start is not None:
        when = parse_when(start, "--from")
        if (when.hour, when.minute, when.second, when.microsecond) != (0, 0, 0, 0):
            raise UsageError(f"--from {start!r}: the synthetic market starts at a UTC midnight; "
                             "give a date such as 2024-01-01")
        values["start"] = when.date()
    try:
        return SynthConfig(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        option = _OPTION_OF.get(field, field or "synth")
        raise UsageError(f"{option}: {err['msg'].removeprefix('Value error, ')}") from None


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
