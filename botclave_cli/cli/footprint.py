"""``botclave footprint``: footprint bars (and order-flow indicators) from stored trades."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    ToOpt,
    check_market,
    parse_range,
    run,
)
from botclave_cli.errors import UsageError

if TYPE_CHECKING:  # the library is imported in the command (cli/defaults.py says why)
    import polars as pl

    from botclave_cli.data.store import Store
    from botclave_cli.engine.footprint.builder import FootprintSpec
    from botclave_cli.engine.signals.indicators import Reset

INDICATORS = ("cvd", "profile", "divergence", "absorption", "voids")


def _indicator_list(text: str | None) -> list[str]:
    if not text:
        return []
    names = [x.strip() for x in text.split(",") if x.strip()]
    bad = [n for n in names if n not in INDICATORS]
    if bad:
        raise UsageError(
            f"--indicators {bad[0]!r}: expected a comma list of {', '.join(INDICATORS)}")
    return names


def footprint_spec(**fields: Any) -> FootprintSpec:
    """FootprintSpec from options; a rejected value becomes one usage line (exit 2)."""
    from pydantic import ValidationError

    from botclave_cli.engine.footprint.builder import FootprintSpec

    try:
        return FootprintSpec(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "--" + "-".join(str(p) for p in err["loc"]).replace("_", "-")
        raise UsageError(f"{name}: {err['msg']}") from None


def _session(text: str) -> Reset:
    if text == "none":
        return "none"
    if text == "daily":
        return "daily"
    return [x for x in text.split(",") if x]


def _indicators(names: list[str], run_, store: Store, start, end, session: str,
                swing_bars: int) -> tuple[dict, pl.DataFrame]:
    """Indicator summaries and the signals they emit (over the whole range, in memory)."""
    import polars as pl

    from botclave_cli.data.scalars import as_float
    from botclave_cli.engine.signals.flow_events import absorption, liquidity_voids, track_revisits
    from botclave_cli.engine.signals.indicators import cvd_bars, delta_divergence, volume_profile
    from botclave_cli.engine.signals.order_flow_signal import signals_frame

    result = run_.result
    spec = result.spec
    row_price = spec.row_size * spec.tick_size
    out: dict[str, Any] = {}
    signals = [signals_frame([])]
    if "cvd" in names:
        cvd = cvd_bars(result.bars, _session(session))
        out["cvd"] = {"reset": session, "last": float(cvd["cvd"][-1]),
                      "min": as_float(cvd["cvd"].min(), "cvd: min"),
                      "max": as_float(cvd["cvd"].max(), "cvd: max")}
    if "profile" in names:
        vp = volume_profile(result.levels, row_price, value_area_share=spec.value_area,
                            close=float(result.bars["close"][-1]), lot=spec.step)
        out["profile"] = {"poc": vp.poc, "vah": vp.vah, "val": vp.val,
                          "hvn": vp.hvn["price"].to_list(), "lvn": vp.lvn["price"].to_list()}
    if "divergence" in names:
        signals.append(delta_divergence(result.bars, k=swing_bars, reset=_session(session)))
    if "absorption" in names:
        from botclave_cli.engine.footprint.store import partition_chunks

        trades = pl.concat([c.collect() for c in partition_chunks(store, run_.source, start, end)])
        signals.append(absorption(trades, spec.tick_size))
    if "voids" in names:
        voids = track_revisits(liquidity_voids(result), result.bars)
        out["voids_untouched"] = int(voids["revisited_at"].null_count())
        signals.append(voids.drop("revisited_at", "filled_at"))
    sig = signals_frame(pl.concat(signals))
    for kind in ("divergence", "absorption", "voids"):
        if kind in names:
            match = {"divergence": "_divergence", "absorption": "absorption",
                     "voids": "liquidity_void"}[kind]
            out[kind] = int(sig.filter(pl.col("kind").str.contains(match)).height)
    return out, sig


def _build_many(out: Any, store: Store, refs: list, fields: dict, tick_size: float | None,
                row_size: int | None, row_price: float | None, lo: Any, hi: Any,
                executor: str) -> None:
    """Several symbols (or one, on an explicit ``--executor``): a task per symbol and day."""
    from botclave_cli.engine.footprint.many import build_many, footprint_jobs
    from botclave_cli.engine.footprint.store import resolve_tick, row_size_ticks
    from botclave_cli.validate.cluster import open_executor

    builds = []
    for ref in refs:
        manifest = store.manifest(ref)
        tick = resolve_tick(manifest, tick_size)
        builds.append((ref, footprint_spec(
            **fields, tick_size=tick, row_size=row_size_ticks(tick, row_size, row_price),
            qty_step=(manifest.lot_size if manifest and manifest.lot_size else None))))
    jobs = footprint_jobs(store, builds, lo, hi)
    with open_executor(executor) as ex:
        summary = build_many(store, jobs, ex, out.progress())
        used = ex.report()
    data = {"builds": summary, "tasks": len(jobs), "jobs": used}
    rows = [{k: s[k] for k in ("symbol", "tasks", "trades", "bars", "levels", "params_hash")}
            for s in summary]
    out.emit(data, f"footprint {fields['bar']}: {len(summary)} symbol(s), {len(jobs)} task(s), "
             f"{sum(s['bars'] for s in summary)} bars", rows=rows, title="footprint builds")


def footprint(
    symbols: Annotated[list[str] | None, typer.Option(
        "--symbol", "-s", help="ccxt unified symbol, e.g. BTC/USDT (default); repeat it to "
        "build several, as tasks on --executor.")] = None,
    exchange: ExchangeOpt = "binance",
    market: MarketOpt = "spot",
    bar: Annotated[str, typer.Option("--bar", help="1m, 5s, 1h, 1d, vol:50, trades:500, "
                                     "range:20 (ticks).")] = "1m",
    row_size: Annotated[int | None, typer.Option("--row-size",
                                                 help="Row height in ticks (default 1).")] = None,
    row_price: Annotated[float | None, typer.Option(
        "--row-price", help="Row height as a price step (a multiple of the tick).")] = None,
    tick_size: Annotated[float | None, typer.Option(
        "--tick-size", help="Tick size when the manifest has none (or to override it).")] = None,
    start: FromOpt = None,
    end: ToOpt = None,
    kind: Annotated[str | None, typer.Option(
        "--kind", help="trades or agg_trades (default: trades where present).")] = None,
    png: Annotated[Path | None, typer.Option("--png", help="Write a footprint PNG.")] = None,
    png_bars: Annotated[int, typer.Option("--png-bars", help="Bars in the PNG.")] = 30,
    indicators: Annotated[str | None, typer.Option(
        "--indicators", help="Comma list: cvd,profile,divergence,absorption,voids.")] = None,
    preset: Annotated[str | None, typer.Option(
        "--preset", help="freqtrade: its level rounding, count-based imbalances.")] = None,
    value_area: Annotated[float, typer.Option("--value-area", help="Value area share.")] = 0.7,
    imbalance_ratio: Annotated[float, typer.Option("--imbalance-ratio")] = 3.0,
    imbalance_min_volume: Annotated[float, typer.Option("--imbalance-min-volume")] = 0.0,
    imbalance_basis: Annotated[str, typer.Option(
        "--imbalance-basis", help="volume or count (trades).")] = "volume",
    stacked: Annotated[int, typer.Option("--stacked",
                                         help="Levels in a stacked imbalance.")] = 3,
    session: Annotated[str, typer.Option(
        "--session", help="CVD reset: none, daily, or UTC start times like 00:00,08:00,16:00."
    )] = "daily",
    swing_bars: Annotated[int, typer.Option(
        "--swing-bars", help="Swing confirmation bars for divergences.")] = 3,
    executor: ExecutorOpt = "auto",
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Build footprint bars from stored trades and write them to the store.

    Writes the kinds footprint and footprint_levels under params=<hash>/ (parameters in the
    manifest). Bad bar spec, row price off the tick grid or an empty range exit 2; no trades in
    the range or trades without aggressor side exit 3.

    Several symbols, or an explicit --executor, build one task per symbol and day (time
    bars; one per symbol for volume, trade and range bars) on that executor, a Dask cluster
    included; the store ends up the same as with one serial build.

    Example: botclave footprint --exchange synth --bar 1m --row-size 10 --png fp.png

    Example: botclave footprint -s BTC/USDT -s ETH/USDT --from 2024-01-01 --to 2024-02-01
    --executor dask=tcp://head:8786
    """
    with run(json_, quiet) as out:
        from botclave_cli.data.store import Store, find_trades
        from botclave_cli.engine.footprint.bars import parse_bar_spec
        from botclave_cli.engine.footprint.store import (
            build_from_store,
            resolve_tick,
            row_size_ticks,
        )
        from botclave_cli.engine.signals.indicators import session_key

        check_market(market)
        parse_bar_spec(bar)
        if preset not in (None, "freqtrade"):
            raise UsageError(f"--preset {preset!r}: expected freqtrade")
        if imbalance_basis not in ("volume", "count"):
            raise UsageError(f"--imbalance-basis {imbalance_basis!r}: expected volume or count")
        names = _indicator_list(indicators)
        session_key("ts", _session(session))  # a bad --session fails before any work
        lo, hi = parse_range(start, end)
        for option, value in (("--row-size", row_size), ("--png-bars", png_bars),
                              ("--stacked", stacked), ("--swing-bars", swing_bars)):
            if value is not None and value < 1:
                raise UsageError(f"{option} {value}: must be an integer >= 1")
        fields = {"bar": bar, "value_area": value_area, "imbalance_ratio": imbalance_ratio,
                  "imbalance_min_volume": imbalance_min_volume, "stacked_min_levels": stacked,
                  "imbalance_basis": imbalance_basis, "preset": preset}
        footprint_spec(**fields, tick_size=1.0)  # option errors before looking at the data
        from botclave_cli.validate.cluster import parse_executor

        spec_ex = parse_executor(executor)
        symbols = symbols or ["BTC/USDT"]
        store = Store(data_dir)
        if len(symbols) > 1 or spec_ex.kind != "auto":
            if png or names:
                raise UsageError("--png and --indicators take one symbol, without --executor")
            refs = [find_trades(store, exchange, market, s, kind) for s in symbols]
            _build_many(out, store, refs, fields, tick_size, row_size, row_price, lo, hi,
                        executor)
            return
        symbol = symbols[0]
        ref = find_trades(store, exchange, market, symbol, kind)
        manifest = store.manifest(ref)
        tick = resolve_tick(manifest, tick_size)
        spec = footprint_spec(
            **fields, tick_size=tick, row_size=row_size_ticks(tick, row_size, row_price),
            qty_step=(manifest.lot_size if manifest and manifest.lot_size else None))
        keep = bool(png or names)
        result = build_from_store(store, ref, spec, lo, hi, keep=keep, progress=out.progress())
        # write=True (the default) always names both refs written
        assert result.bars_ref is not None and result.levels_ref is not None
        data: dict[str, Any] = {
            "source": str(ref.relpath()), "params": spec.params(),
            "params_hash": result.params_hash,
            "trades": result.trades, "bars": result.bars, "levels": result.levels,
            "footprint": str(store.path(result.bars_ref)),
            "footprint_levels": str(store.path(result.levels_ref)),
        }
        if names:
            summary, signals = _indicators(names, result, store, lo, hi, session, swing_bars)
            data["indicators"] = summary
            data["signals"] = signals.to_dicts()
        if png:
            from botclave_cli.report.footprint_chart import write_footprint_png

            assert result.result is not None  # keep is true whenever --png is given
            data["png"] = str(write_footprint_png(result.result, png, png_bars))
        counts = {k: v for k, v in data.get("indicators", {}).items() if not isinstance(v, dict)}
        rows = [{"trades": result.trades, "bars": result.bars, "levels": result.levels,
                 "params": result.params_hash, **counts}]
        out.emit(data, f"footprint {symbol} {bar}: {result.bars} bars, {result.levels} levels "
                 f"from {result.trades} trades -> {data['footprint']}", rows=rows,
                 title="footprint")


def register(app: typer.Typer) -> None:
    app.command("footprint")(footprint)
