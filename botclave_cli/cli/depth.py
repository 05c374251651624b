"""``botclave depth``: depth series from the stored book, and ``depth replay`` of captures."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from botclave_cli.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOpt,
    ExchangeOpt,
    ExecutorOpt,
    FromOpt,
    JsonOpt,
    MarketOpt,
    QuietOpt,
    SkipBadOpt,
    ToOpt,
    check_market,
    parse_range,
    run,
)
from botclave_cli.errors import DataError, UsageError

depth_app = typer.Typer(
    help="Order-book depth: series, walls, absorption, heatmap; replay captures.\n\n"
    "Example: botclave depth --symbol BTC/USDT --from 2024-08-08 --to 2024-08-09 --png heat.png",
    invoke_without_command=True,
)

_UNITS_US = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}


def parse_duration_us(text: str, option: str) -> int:
    """``500ms``, ``1s``, ``2m``, ``1h`` -> microseconds (> 0)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"{option} {text!r}: expected a duration such as 500ms, 1s, 5m or 1h")
    return int(round(float(match.group(1)) * _UNITS_US[match.group(2)]))


SymbolArg = Annotated[list[str] | None, typer.Option(
    "--symbol", "-s", help="ccxt symbol: BTC/USDT; repeat it for several (a task per symbol on "
    "--executor).")]
IntervalOpt = Annotated[str, typer.Option("--interval", help="Sampling interval: 500ms, 1s, 1m.")]
DepthOpt = Annotated[int, typer.Option("--depth", min=1, help="Levels per side sampled.")]
LevelsOpt = Annotated[int, typer.Option("--levels", min=1, help="Levels for the imbalance.")]
BandOpt = Annotated[float, typer.Option("--band-bps", help="Band for imbalance_band (bps).")]
WallKOpt = Annotated[float, typer.Option("--wall-k", help="Wall: size >= k x typical.")]
WallMinOpt = Annotated[str, typer.Option("--wall-min", help="Wall: persists at least this long.")]
KindOpt = Annotated[str | None, typer.Option(
    "--kind", help="Trades to use: trades or agg_trades (default: trades if stored, else agg).")]
PngOpt = Annotated[Path | None, typer.Option("--png", help="Write the depth heatmap PNG here.")]
SourcesArg = Annotated[list[str], typer.Argument(
    help="Capture files (one stream, in order) or a stored symbol path (binance/spot/BTC-USDT).")]
ReplayMarketOpt = Annotated[str | None, typer.Option("--market", "-m", help="Override detection.")]


def _depth_many(out, store, exchange: str, market: str, symbols: list[str],
                start_us: int | None, end_us: int | None, kind: str | None, params,
                executor: str) -> None:
    from botclave_cli.engine.depth.many import build_many, depth_jobs
    from botclave_cli.validate.cluster import open_executor

    jobs = depth_jobs(store, exchange, market, symbols, start_us, end_us, kind, params)
    with open_executor(executor) as ex:
        summary = build_many(jobs, ex, out.progress())
        used = ex.report()
    rows = [{k: s[k] for k in ("symbol", "rows", "walls", "absorption")} for s in summary]
    out.emit({"builds": summary, "jobs": used}, f"depth: {len(summary)} symbol(s), "
             f"{sum(s['rows'] for s in summary)} depth rows", rows=rows, title="depth builds")


@depth_app.callback()
def depth(
    ctx: typer.Context,
    symbol: SymbolArg = None,
    exchange: ExchangeOpt = "binance",
    market: MarketOpt = "spot",
    start: FromOpt = None,
    end: ToOpt = None,
    interval: IntervalOpt = "1s",
    depth_levels: DepthOpt = 20,
    levels: LevelsOpt = 10,
    band_bps: BandOpt = 10.0,
    wall_k: WallKOpt = 10.0,
    wall_min: WallMinOpt = "60s",
    png: PngOpt = None,
    kind: KindOpt = None,
    executor: ExecutorOpt = "auto",
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Replay the stored book, sample it, and store the depth series (spread, mid, microprice,
    imbalance, OFI, depth by band); print walls, absorption zones, support and resistance.

    Several symbols, or an explicit --executor, run one task per symbol (a Dask cluster
    included); each writes that symbol's datasets as the single-symbol command does.

    Example: botclave depth --symbol BTC/USDT --from 2024-08-08 --to 2024-08-09 --png heat.png

    Example: botclave depth -s BTC/USDT -s ETH/USDT --executor dask=tcp://head:8786
    """
    if ctx.invoked_subcommand is not None:
        return
    with run(json_, quiet) as out:
        from botclave_cli.data.store import Store, to_us
        from botclave_cli.engine.depth.analyzer import DepthParams, analyze_book
        from botclave_cli.engine.depth.store import load_book, write_depth

        if symbol is None:
            raise UsageError("--symbol is required (or use: botclave depth replay FILE...)")
        check_market(market)
        if kind not in (None, "trades", "agg_trades"):
            raise UsageError(f"--kind {kind!r}: expected trades or agg_trades")
        lo, hi = parse_range(start, end)
        interval_us = parse_duration_us(interval, "--interval")
        wall_min_us = parse_duration_us(wall_min, "--wall-min")
        try:
            params = DepthParams(interval_us=interval_us, sample_depth=depth_levels,
                                 levels=levels, band_bps=band_bps, wall_k=wall_k,
                                 wall_min_us=wall_min_us)
        except ValueError as exc:
            raise UsageError(f"bad depth parameter: {exc}") from None
        from botclave_cli.validate.cluster import parse_executor

        spec_ex = parse_executor(executor)
        store = Store(data_dir)
        start_us, end_us = (to_us(lo) if lo else None), (to_us(hi) if hi else None)
        if len(symbol) > 1 or spec_ex.kind != "auto":
            if png is not None:
                raise UsageError("--png takes one symbol, without --executor")
            _depth_many(out, store, exchange, market, symbol, start_us, end_us, kind, params,
                        executor)
            return
        sym = symbol[0]
        book = load_book(store, exchange, market, sym, start_us, end_us, kind)
        result = analyze_book(book["book_snapshot"], book["book_diff"], book["trades"], market,
                              params, book["tick_size"], start_us=start_us, end_us=end_us)
        if result.series.is_empty():
            raise DataError(f"{sym}: no valid book in the range (counts: {result.counts})")
        written = write_depth(store, exchange, market, sym, result, params, exchange)
        if png is not None:
            from botclave_cli.report.heatmap import write_heatmap

            write_heatmap(png, result.samples, result.trades, title=f"{sym} depth")
            written["png"] = str(png)
        walls = [vars(w) for w in result.walls]
        zones = [vars(z) for z in result.zones]
        data = {"counts": result.counts, "written": written, "walls": walls, "absorption": zones,
                "levels": result.levels.to_dicts(), "rows": result.series.height}
        rows = [{"what": f"wall {w['side']}", "price": w["price"], "peak": w["peak_qty"],
                 "seconds": (w["last_seen_us"] - w["first_seen_us"]) / 1e6, "end": w["ended"]}
                for w in walls]
        rows += [{"what": f"absorption {z['side']}", "price": z["price"], "peak": z["absorbed_qty"],
                  "seconds": (z["end_us"] - z["start_us"]) / 1e6, "end": ""} for z in zones]
        c = result.counts
        out.emit(data, f"{sym}: {result.series.height} depth rows ({c['samples_valid']} valid "
                 f"samples of {c['samples_taken']}), {c['gaps']} gap(s), {len(walls)} wall(s), "
                 f"{len(zones)} absorption zone(s) -> {written['depth_series']}",
                 rows=rows, title="walls and absorption")


@depth_app.command("replay")
def replay(
    sources: SourcesArg,
    market: ReplayMarketOpt = None,
    skip_bad: SkipBadOpt = False,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Rebuild the book from a capture or a stored dataset and check it against the bookTickers.

    Reports level updates applied, gaps, resyncs and the checkable bookTickers matched. Exit 3
    when a gap or a mismatch is found. Example: botclave depth replay usdm_btcusdt_20240808.gz
    """
    with run(json_, quiet) as out:
        from botclave_cli.data.store import Store, symbol_from_folder
        from botclave_cli.engine.book.replay_report import replay_capture, replay_dataset

        if market is not None:
            check_market(market)
        paths = [Path(s) for s in sources]
        if all(p.is_file() for p in paths):
            report = replay_capture(paths, skip_bad=skip_bad, market=market,
                                    progress=out.progress())
        elif len(sources) == 1 and (Path(data_dir) / sources[0]).is_dir():
            parts = Path(sources[0].strip("/")).parts
            if len(parts) != 3:
                raise UsageError(f"{sources[0]}: expected <exchange>/<market>/<symbol folder>")
            report = replay_dataset(Store(data_dir), parts[0], parts[1],
                                    symbol_from_folder(parts[2]))
        else:
            missing = next((s for s in sources if not Path(s).is_file()), sources[0])
            raise UsageError(f"{missing}: no such capture file or dataset under {data_dir}")
        d = report.as_dict()
        share = f"{d['tickers_match_share']:.1%}" if d["tickers_match_share"] is not None else "n/a"
        summary = (f"{report.symbol} ({report.market}): {d['level_updates_applied']} level updates "
                   f"in {d['diffs_applied']}/{d['diffs']} diffs, {d['gaps']} gap(s), "
                   f"{d['resyncs_requested']} resync(s), bookTickers matched "
                   f"{d['tickers_matched']}/{d['tickers_checkable']} checkable ({share})")
        if d["bad_lines"]:
            out.warn(f"{d['bad_lines']} bad line(s) skipped")
        rows = [{k: v for k, v in d.items() if not isinstance(v, list | dict)}]
        out.emit(d, summary, rows=rows, title="replay")
        if d["gaps"] or d["tickers_matched"] != d["tickers_checkable"]:
            first = d["invalidations"][0] if d["invalidations"] else None
            where = f" (first: {first['reason']} at line seq {first['seq']})" if first else ""
            raise DataError(f"{report.source}: {d['gaps']} gap(s), "
                            f"{d['tickers_checkable'] - d['tickers_matched']} bookTicker "
                            f"mismatch(es){where}")


def register(app: typer.Typer) -> None:
    app.add_typer(depth_app, name="depth")
