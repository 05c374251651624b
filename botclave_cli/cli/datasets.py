"""``botclave datasets ls|info|verify|compact``: what the store holds, whether it is whole, and
folding a recorded day's part files into one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from botclave_cli.cli.common import DEFAULT_DATA_DIR, DataDirOpt, JsonOpt, QuietOpt, run
from botclave_cli.errors import DataError, UsageError

if TYPE_CHECKING:  # the library is imported in the command (cli/defaults.py says why)
    from botclave_cli.data.store import DatasetRef, Store

datasets_app = typer.Typer(
    help=(
        "List, describe, verify and compact datasets.\n\n"
        "Example: botclave datasets ls binance/spot"
    ),
    no_args_is_help=True,
)
DatasetArg = Annotated[
    str | None,
    typer.Argument(help="Dataset path below the data dir (e.g. binance/spot/BTC-USDT/trades), "
                   "or a prefix of it; all datasets when omitted."),
]


def _select(store: Store, prefix: str | None) -> list[DatasetRef]:
    refs = list(store.datasets())
    if prefix:
        wanted = prefix.strip("/")
        refs = [r for r in refs if str(r.relpath()).startswith(wanted)]
        if not refs:
            raise UsageError(f"no dataset under {store.root / wanted}")
    return refs


def _coverage_text(intervals: list) -> str:
    from botclave_cli.data.store import from_us

    return ", ".join(
        f"{from_us(i.start_us):%Y-%m-%d %H:%M:%S} .. {from_us(i.end_us):%Y-%m-%d %H:%M:%S}"
        for i in intervals
    )


@datasets_app.command("ls")
def ls(
    dataset: DatasetArg = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """List datasets with their rows, partitions and coverage.

    Example: botclave datasets ls binance/spot
    """
    with run(json_, quiet) as out:
        from botclave_cli.data.store import Store

        store = Store(data_dir)
        rows = []
        for ref in _select(store, dataset):
            m = store.manifest(ref)
            rows.append({
                "dataset": str(ref.relpath()),
                "kind": ref.kind,
                "rows": m.row_count if m else None,
                "partitions": len(m.partitions) if m else None,
                "coverage": _coverage_text(m.coverage) if m else "",
                "gaps": len(m.gaps) if m else None,
            })
        out.emit({"datasets": rows}, f"{len(rows)} dataset(s) in {store.root}", rows=rows)


@datasets_app.command("info")
def info(
    dataset: Annotated[str, typer.Argument(help="Dataset path below the data dir.")],
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Show a dataset's manifest: source, tick/lot, coverage, partitions, gaps.

    Example: botclave datasets info binance/spot/BTC-USDT/agg_trades --json
    """
    with run(json_, quiet) as out:
        from botclave_cli.data.store import Store

        store = Store(data_dir)
        refs = [r for r in _select(store, dataset) if str(r.relpath()) == dataset.strip("/")]
        if not refs:
            raise UsageError(f"{store.root / dataset}: not a dataset (see botclave datasets ls)")
        manifest = store.manifest(refs[0])
        assert manifest is not None  # _select found it by its manifest
        data = manifest.model_dump(mode="json")
        rows = [{"field": k, "value": v} for k, v in data.items()
                if k not in ("partitions", "coverage", "gaps", "cursor")]
        rows.append({"field": "coverage", "value": _coverage_text(manifest.coverage)})
        rows.append({"field": "partitions", "value": len(manifest.partitions)})
        rows.append({"field": "gaps", "value": len(manifest.gaps)})
        out.emit(data, f"{dataset}: {manifest.row_count} rows, {len(manifest.gaps)} gap(s)",
                 rows=rows)


@datasets_app.command("verify")
def verify(
    dataset: DatasetArg = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Re-read every partition: corrupt files, manifest mismatches, id/candle/book gaps.

    Exit code 3 when anything is found. Example: botclave datasets verify binance/spot/BTC-USDT
    """
    with run(json_, quiet) as out:
        from botclave_cli.data.store import Store
        from botclave_cli.data.verify import verify_dataset

        store = Store(data_dir)
        reports = [verify_dataset(store, ref) for ref in _select(store, dataset)]
        rows = [{"dataset": str(r.ref.relpath()), "rows": r.rows, "gaps": len(r.gaps),
                 "corrupt": len(r.corrupt), "problems": len(r.problems),
                 "status": "ok" if r.ok else "FOUND PROBLEMS"} for r in reports]
        bad = [r for r in reports if not r.ok]
        out.emit({"datasets": [r.as_dict() for r in reports], "ok": not bad},
                 f"{len(reports)} dataset(s) verified, {len(bad)} with problems", rows=rows)
        if bad:
            first = bad[0]
            what = (first.corrupt or first.problems or
                    [f"{len(first.gaps)} gap(s), first: {first.gaps[0].detail}"])[0]
            raise DataError(f"{first.ref.relpath()}: {what}")


@datasets_app.command("compact")
def compact(
    dataset: DatasetArg = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fold each day's appended part files (a live recording's) into its data.parquet, and
    remove temporary files that interrupted writes left behind.

    The recorder compacts by itself when a day ends and when it stops; this is for a recorder
    that was killed. Safe while a recorder writes: parts it adds later stay as they are.
    Example: botclave datasets compact binance/usdm
    """
    with run(json_, quiet) as out:
        from botclave_cli.data.atomic import clean_stale_temp
        from botclave_cli.data.store import Store

        store = Store(data_dir)
        refs = _select(store, dataset)
        removed = sum(clean_stale_temp(store.path(ref)) for ref in refs)
        rows = [{"dataset": str(ref.relpath()), "days_compacted": store.compact(ref)}
                for ref in refs]
        days = sum(len(r["days_compacted"]) for r in rows)
        out.emit({"datasets": rows, "temp_files_removed": removed},
                 f"{days} day(s) compacted in {len(rows)} dataset(s); {removed} leftover "
                 "temporary file(s) removed", rows=[r for r in rows if r["days_compacted"]])


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets")
