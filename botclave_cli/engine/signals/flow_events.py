"""Trade-flow events: absorption (from trades) and liquidity voids (from a footprint).

Both return signal frames in ``order_flow_signal.SIGNAL_SCHEMA``; ``time`` is when the event is
known (the close of the window/bar that completes it), ``start`` when it began.
"""

from __future__ import annotations

import polars as pl

from botclave_cli.data.scalars import as_float
from botclave_cli.data.schemas import TS
from botclave_cli.engine.signals.order_flow_signal import SIGNAL_SCHEMA, signals_frame
from botclave_cli.errors import UsageError


def absorption(trades: pl.LazyFrame | pl.DataFrame, tick_size: float, window: str = "1m",
               level_ticks: int = 1, volume_mult: float = 1.0, max_through_ticks: int = 2,
               ) -> pl.DataFrame:
    """Heavy aggressive volume into one level while price fails to move beyond it.

    Per ``window`` (UTC-aligned, e.g. ``"1m"``) and level (``level_ticks`` ticks high):
    aggressive sells into the level are absorbed by the BID when they reach ``volume_mult`` x
    the median window's TOTAL volume (over the input: one level takes a whole typical window's
    volume, where noise spreads it over many levels) and the window's low stays within
    ``max_through_ticks`` below the level; aggressive buys mirror it on the ASK (window high).
    Consecutive windows at the same level and side merge into one signal.
    strength = the level's aggressive volume / (median window volume x windows).
    """
    if level_ticks < 1 or volume_mult <= 0 or max_through_ticks < 0:
        raise UsageError("absorption: level_ticks >= 1, volume_mult > 0, max_through_ticks >= 0")
    lf = trades.lazy() if isinstance(trades, pl.DataFrame) else trades
    px = (pl.col("price") / tick_size).round().cast(pl.Int64)
    t = (lf.select(pl.col("ts").cast(TS).dt.truncate(window).alias("win"), px.alias("px"),
                   "qty", (pl.col("side") == "buy").alias("buy"))
         .with_columns((pl.col("px") // level_ticks * level_ticks).alias("lvl"))
         .collect())
    if not t.height:
        return signals_frame([])
    wins = t.group_by("win").agg(pl.col("qty").sum().alias("total"),
                                 pl.col("px").min().alias("low"), pl.col("px").max().alias("high"))
    baseline = as_float(wins["total"].median(), "absorption: median window volume")
    cells = (t.group_by("win", "lvl", "buy").agg(pl.col("qty").sum().alias("vol"))
             .join(wins, on="win")
             .filter(pl.col("vol") >= volume_mult * baseline))
    through = max_through_ticks
    held = pl.when(pl.col("buy")).then(
        pl.col("high") <= pl.col("lvl") + level_ticks - 1 + through
    ).otherwise(pl.col("low") >= pl.col("lvl") - through)
    hits = cells.filter(held).sort("buy", "lvl", "win")
    if not hits.height:
        return signals_frame([])
    step = pl.col("win").diff().over("buy", "lvl")
    width = pl.col("win").dt.offset_by(window) - pl.col("win")
    merged = (hits.with_columns(((step != width).fill_null(True)).cum_sum().alias("_g"))
              .group_by("_g").agg(
                  pl.col("win").first().alias("start"),
                  pl.col("win").last().dt.offset_by(window).alias("time"),
                  pl.col("buy").first(), pl.col("lvl").first(),
                  pl.col("vol").sum(), pl.len().alias("n")))
    out = merged.select(
        "time", "start", pl.lit("absorption").alias("kind"),
        pl.when(pl.col("buy")).then(pl.lit("ask")).otherwise(pl.lit("bid")).alias("side"),
        (pl.col("lvl") * tick_size).alias("price_low"),
        ((pl.col("lvl") + level_ticks - 1) * tick_size).alias("price_high"),
        (pl.col("vol") / (baseline * pl.col("n"))).alias("strength"))
    return signals_frame(out)


def liquidity_voids(result, min_levels: int = 5, max_trades: int = 0) -> pl.DataFrame:
    """Price ranges crossed with (almost) no trading, from a footprint ``result``.

    Inside a bar: a run of at least ``min_levels`` rows with at most ``max_trades`` trades each
    (0: no print at all) between traded rows; between bars: a gap of at least ``min_levels``
    rows between one bar's range and the next. Bounds: price_low = top of the last traded row
    below, price_high = bottom of the next traded row above (the untraded range). Voids of
    consecutive bars that touch or overlap merge. side = "up"/"down" (bar close vs open, or the
    gap's direction); strength = the void's height in rows.
    """
    if min_levels < 1 or max_trades < 0:
        raise UsageError("liquidity voids: min_levels >= 1 and max_trades >= 0")
    row = result.spec.row_size * result.spec.tick_size
    bars = result.bars
    if not bars.height:
        return signals_frame([])
    lv = result.levels.filter(pl.col("bid_count") + pl.col("ask_count") > max_trades)
    nxt = pl.col("price").shift(-1).over("bar_id")
    inner = (lv.sort("bar_id", "price")
             .with_columns(nxt.alias("_next"))
             .filter(((pl.col("_next") - pl.col("price")) / row).round() - 1 >= min_levels)
             .join(bars.select("bar_id", "bar_end", "open", "close"), on="bar_id")
             .select(pl.col("bar_end").alias("time"), pl.col("bar_start").alias("start"),
                     pl.when(pl.col("close") >= pl.col("open")).then(pl.lit("up"))
                     .otherwise(pl.lit("down")).alias("side"),
                     (pl.col("price") + row).alias("price_low"),
                     pl.col("_next").alias("price_high")))
    b = bars.sort("bar_start").with_columns(pl.col("high").shift(1).alias("_ph"),
                                            pl.col("low").shift(1).alias("_pl"),
                                            pl.col("bar_start").shift(1).alias("_ps"))
    up = (b.filter((pl.col("low") - pl.col("_ph")) / row >= min_levels + 1)
          .select(pl.col("bar_end").alias("time"), pl.col("_ps").alias("start"),
                  pl.lit("up").alias("side"), pl.col("_ph").alias("price_low"),
                  pl.col("low").alias("price_high")))
    down = (b.filter((pl.col("_pl") - pl.col("high")) / row >= min_levels + 1)
            .select(pl.col("bar_end").alias("time"), pl.col("_ps").alias("start"),
                    pl.lit("down").alias("side"), pl.col("high").alias("price_low"),
                    pl.col("_pl").alias("price_high")))
    voids = pl.concat([inner, up, down]).sort("start", "price_low")
    return signals_frame(_merge_voids(voids.rows(named=True), row))


def _merge_voids(rows: list[dict], row: float) -> pl.DataFrame:
    """Merge voids (sorted by start) whose price ranges touch/overlap and whose times chain."""
    out: list[dict] = []
    for r in rows:
        prev = out[-1] if out else None
        if (prev is not None and r["start"] <= prev["time"]
                and r["price_low"] <= prev["price_high"] + row / 2
                and r["price_high"] >= prev["price_low"] - row / 2):
            prev["price_low"] = min(prev["price_low"], r["price_low"])
            prev["price_high"] = max(prev["price_high"], r["price_high"])
            prev["time"] = max(prev["time"], r["time"])
            continue
        out.append(dict(r))
    for r in out:
        r["kind"] = "liquidity_void"
        r["strength"] = round((r["price_high"] - r["price_low"]) / row, 6)
    return pl.DataFrame(out, schema=SIGNAL_SCHEMA) if out else pl.DataFrame(schema=SIGNAL_SCHEMA)


def track_revisits(voids: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame:
    """Voids plus ``revisited_at``: the start of the first bar after the void became known
    (``bar_start >= time``) whose range enters the void (null while untouched), and
    ``filled_at``: the first such bar whose range spans the whole void."""
    if not voids.height:
        return voids.with_columns(pl.lit(None, TS).alias("revisited_at"),
                                  pl.lit(None, TS).alias("filled_at"))
    b = bars.select("bar_start", "low", "high").sort("bar_start")
    touched, filled = [], []
    for v in voids.iter_rows(named=True):
        later = b.filter(pl.col("bar_start") >= v["time"])
        enter = later.filter((pl.col("low") < v["price_high"]) & (pl.col("high") > v["price_low"]))
        full = enter.filter((pl.col("low") <= v["price_low"]) & (pl.col("high") >= v["price_high"]))
        touched.append(enter["bar_start"][0] if enter.height else None)
        filled.append(full["bar_start"][0] if full.height else None)
    return voids.with_columns(pl.Series("revisited_at", touched, dtype=TS),
                              pl.Series("filled_at", filled, dtype=TS))
