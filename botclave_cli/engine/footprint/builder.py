"""Footprint bars from trades: per-level bid/ask volume and counts, POC, value area, imbalances.

Units: prices are converted once to integer ticks (``round(price / tick_size)``) and quantities
to integer quantity steps (``qty_step``: the lot size when known, else 1e-8), so bucketing and
every sum are exact; output prices/volumes are Float64 rounded to the tick's/step's decimals.
A level is labelled by its LOWER price (``floor(ticks / row) * row``); the ``freqtrade`` preset
rounds to the nearest level instead (half to even), as freqtrade does.

Terms: bid volume = aggressor sold (hit the bid), ask volume = aggressor bought; delta = ask - bid.
``delta_max`` / ``delta_min`` are the max / min of the running delta after each trade of the bar.
Bar rules are in ``bars.py``, POC / value area / imbalance rules in ``profile.py``.

Chunked builds (:class:`FootprintBuilder`, one chunk per partition) hold back the last bar's
trades and re-feed them with the next chunk, so they equal a one-pass build for every bar kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from botclave_cli.data.schemas import TS, KindSpec, register_kind
from botclave_cli.engine.book.tick_grid import polars_steps
from botclave_cli.engine.footprint.bars import BarSpec, BarState, assign_bars, parse_bar_spec
from botclave_cli.engine.footprint.kernel import footprint_pass
from botclave_cli.engine.footprint.profile import bar_profiles
from botclave_cli.errors import DataError, UsageError

DEFAULT_QTY_STEP = 1e-8


class FootprintSpec(BaseModel):
    """Parameters of a footprint build (all go into the derived dataset's manifest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bar: str = "1m"
    tick_size: float = Field(gt=0)
    row_size: int = Field(default=1, ge=1, description="level height in ticks")
    value_area: float = Field(default=0.7, gt=0, le=1)
    imbalance_ratio: float = Field(default=3.0, gt=0)
    imbalance_min_volume: float = Field(default=0.0, ge=0, description="base units")
    imbalance_basis: Literal["volume", "count"] = "volume"
    stacked_min_levels: int = Field(default=3, ge=1)
    preset: Literal["freqtrade"] | None = None
    qty_step: float | None = Field(default=None, gt=0, description="lot; default 1e-8")

    @field_validator("bar")
    @classmethod
    def _bar_ok(cls, value: str) -> str:
        parse_bar_spec(value)
        return value

    @property
    def bar_spec(self) -> BarSpec:
        return parse_bar_spec(self.bar)

    @property
    def step(self) -> float:
        return self.qty_step or DEFAULT_QTY_STEP

    def params(self) -> dict:
        return self.model_dump(mode="json")


def _decimals(x: float) -> int:
    exp = Decimal(repr(x)).normalize().as_tuple().exponent
    return max(0, -int(exp))


def prepare_trades(trades: pl.LazyFrame | pl.DataFrame, spec: FootprintSpec) -> pl.DataFrame:
    """Store trades (ts, price, qty, side) -> ts_us, px and level (ticks), lots, buy; sorted
    by time.

    Raises DataError when a column is missing or a trade has no aggressor side.
    """
    lf = trades.lazy() if isinstance(trades, pl.DataFrame) else trades
    names = lf.collect_schema().names()
    for column in ("ts", "price", "qty", "side"):
        if column not in names:
            raise DataError(f"trades: missing column {column!r}")
    px = (pl.col("price") / spec.tick_size).round().cast(pl.Int64)
    row = spec.row_size
    freqtrade = spec.preset == "freqtrade"
    df = lf.select(
        pl.col("ts").cast(TS).dt.epoch("us").alias("ts_us"),
        px.alias("px"),
        (pl.col("price") if freqtrade else (px // row) * row).alias("level"),
        (pl.col("qty") / spec.step).round().cast(pl.Int64).alias("lots"),
        # UInt8, not Boolean: numpy gets it without unpacking a bitmap
        (pl.col("side") == "buy").fill_null(False).cast(pl.UInt8).alias("buy"),
        (pl.col("side") == "sell").fill_null(False).alias("_sell"),
    ).collect()
    if freqtrade:
        # freqtrade's own float rounding, numpy's round(price / scale) (half to even), so that
        # levels match it exactly, also where its division lands beside an exact half. (Polars
        # divides by a scalar through its reciprocal, which rounds differently there.)
        scaled = np.round(df["level"].to_numpy() / (spec.tick_size * row)).astype(np.int64)
        df = df.with_columns(pl.Series("level", scaled * row))
    sided = int(df["buy"].sum()) + int(df["_sell"].sum())
    if sided != df.height:
        bad = df.height - sided
        raise DataError(f"trades: {bad} trade(s) without aggressor side (side must be buy/sell)")
    df = df.drop("_sell")
    if not df["ts_us"].is_sorted():
        df = df.sort("ts_us", maintain_order=True)
    return df


@dataclass
class FootprintResult:
    """``bars``: one row per bar; ``levels``: one row per (bar, traded level). See module doc."""

    bars: pl.DataFrame
    levels: pl.DataFrame
    spec: FootprintSpec

    def stacked_runs(self) -> pl.DataFrame:
        """Every stacked-imbalance run: bar_start, bar_id, side ("buy"/"sell"), price_low,
        price_high (lower prices of the run's first/last level), levels."""
        return stacked_runs(self.levels, self.spec)

    def to_store(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Frames as stored (kinds ``footprint`` / ``footprint_levels``: ``ts`` = bar_start)."""
        return (self.bars.with_columns(pl.col("bar_start").alias("ts")),
                self.levels.with_columns(pl.col("bar_start").alias("ts")))


def _aggregate(df: pl.DataFrame, spec: FootprintSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Bars and levels of a frame that carries ``bar_id`` (all of its bars are emitted)."""
    bspec = spec.bar_spec
    row = spec.row_size
    nearest = spec.preset == "freqtrade"
    raw_bars, raw_levels = footprint_pass(
        df["bar_id"].to_numpy(), df["px"].to_numpy(), df["level"].to_numpy(),
        df["lots"].to_numpy(), df["buy"].to_numpy(), row)
    ts = df["ts_us"].to_numpy()
    bars = pl.DataFrame({
        "bar_id": raw_bars[:, 0], "t0": ts[raw_bars[:, 1]], "t1": ts[raw_bars[:, 2]],
        "o": raw_bars[:, 3], "h": raw_bars[:, 4], "l": raw_bars[:, 5], "c": raw_bars[:, 6],
        "vol": raw_bars[:, 7], "buy": raw_bars[:, 8], "trade_count": raw_bars[:, 9],
        "dmax": raw_bars[:, 10], "dmin": raw_bars[:, 11], "close_level": raw_bars[:, 12]})
    levels = pl.DataFrame({
        "bar_id": raw_bars[raw_levels[:, 0], 0], "level": raw_levels[:, 1],
        "ask": raw_levels[:, 2], "bid": raw_levels[:, 3], "ask_n": raw_levels[:, 4],
        "bid_n": raw_levels[:, 5]})
    offsets = np.flatnonzero(np.diff(raw_levels[:, 0], prepend=-1, append=len(raw_bars)))
    min_vol = spec.imbalance_min_volume / spec.step
    (poc, vah, val, unf_hi, unf_lo, imb_buy, imb_sell, st_buy, st_sell, runs, run_lo,
     run_hi) = bar_profiles(
        offsets, levels["level"].to_numpy(), levels["ask"].to_numpy(), levels["bid"].to_numpy(),
        levels["ask_n"].to_numpy(), levels["bid_n"].to_numpy(),
        bars["close_level"].to_numpy(), row, spec.value_area, nearest,
        spec.imbalance_basis == "count", spec.imbalance_ratio, min_vol, spec.stacked_min_levels)
    px_dec = _decimals(spec.tick_size)
    q_dec = _decimals(spec.step)

    def price(e: pl.Expr) -> pl.Expr:
        return (e.cast(pl.Float64) * spec.tick_size).round(px_dec)

    def qty(e: pl.Expr) -> pl.Expr:
        return (e.cast(pl.Float64) * spec.step).round(q_dec)

    is_time = bspec.kind == "time"
    start = (pl.col("bar_id") * bspec.interval_us) if is_time else pl.col("t0")
    end = (pl.col("bar_id") + 1) * bspec.interval_us if is_time else pl.col("t1")
    bars = bars.with_columns(
        pl.Series("_poc", poc), pl.Series("_vah", vah), pl.Series("_val", val),
        pl.Series("unfinished_high", unf_hi), pl.Series("unfinished_low", unf_lo),
        pl.Series("stacked_buy_count", runs[:, 0]), pl.Series("stacked_sell_count", runs[:, 1]),
        pl.Series("_sbl", run_lo[:, 0]), pl.Series("_sbh", run_hi[:, 0]),
        pl.Series("_ssl", run_lo[:, 1]), pl.Series("_ssh", run_hi[:, 1]),
    )
    delta = pl.col("buy") * 2 - pl.col("vol")
    out_bars = bars.select(
        start.cast(TS).alias("bar_start"),
        end.cast(TS).alias("bar_end"),
        "bar_id",
        price(pl.col("o")).alias("open"), price(pl.col("h")).alias("high"),
        price(pl.col("l")).alias("low"), price(pl.col("c")).alias("close"),
        qty(pl.col("vol")).alias("volume"), qty(pl.col("buy")).alias("buy_volume"),
        qty(pl.col("vol") - pl.col("buy")).alias("sell_volume"),
        qty(delta).alias("delta"),
        pl.when(pl.col("vol") > 0).then(delta / pl.col("vol") * 100.0).otherwise(0.0)
        .alias("delta_pct"),
        qty(pl.col("dmax")).alias("delta_max"), qty(pl.col("dmin")).alias("delta_min"),
        pl.col("trade_count").cast(pl.Int64),
        price(pl.col("_poc")).alias("poc"), price(pl.col("_vah")).alias("vah"),
        price(pl.col("_val")).alias("val"),
        "unfinished_high", "unfinished_low",
        "stacked_buy_count",
        price(pl.when(pl.col("_sbl") >= 0).then(pl.col("_sbl"))).alias("stacked_buy_low"),
        price(pl.when(pl.col("_sbh") >= 0).then(pl.col("_sbh"))).alias("stacked_buy_high"),
        "stacked_sell_count",
        price(pl.when(pl.col("_ssl") >= 0).then(pl.col("_ssl"))).alias("stacked_sell_low"),
        price(pl.when(pl.col("_ssh") >= 0).then(pl.col("_ssh"))).alias("stacked_sell_high"),
    )
    levels = levels.with_columns(
        pl.Series("imbalance_buy", imb_buy), pl.Series("imbalance_sell", imb_sell),
        pl.Series("stacked_buy", st_buy), pl.Series("stacked_sell", st_sell),
    )
    imb_counts = levels.group_by("bar_id", maintain_order=True).agg(
        pl.col("imbalance_buy").sum().cast(pl.Int64).alias("imbalance_buy_count"),
        pl.col("imbalance_sell").sum().cast(pl.Int64).alias("imbalance_sell_count"))
    out_bars = out_bars.with_columns(imb_counts["imbalance_buy_count"],
                                     imb_counts["imbalance_sell_count"])
    starts = out_bars.select("bar_id", "bar_start")
    out_levels = levels.join(starts, on="bar_id", how="left", maintain_order="left").select(
        "bar_start", "bar_id",
        price(pl.col("level")).alias("price"),
        qty(pl.col("bid")).alias("bid_volume"), qty(pl.col("ask")).alias("ask_volume"),
        pl.col("bid_n").alias("bid_count"), pl.col("ask_n").alias("ask_count"),
        qty(pl.col("ask") - pl.col("bid")).alias("delta"),
        "imbalance_buy", "imbalance_sell", "stacked_buy", "stacked_sell",
    )
    return out_bars, out_levels


def bar_poc_and_stacks(price: np.ndarray, qty: np.ndarray, buy: np.ndarray,
                       spec: FootprintSpec) -> tuple[float, int, int]:
    """POC price and stacked buy / sell imbalance counts of ONE time bar's trades (price in
    quote, qty in base, aggressor is buyer; time order): the kernels of ``build_footprint``
    without its frames (a live strategy needs these three per bar, and the frames cost ten
    times the kernels). Equal to that bar's row of ``build_footprint``: ``prepare_trades``'s
    integer columns, computed as Polars computes them."""
    if not len(price):
        raise DataError("footprint bar: no trades")
    row = spec.row_size
    px = polars_steps(price, spec.tick_size)
    if spec.preset == "freqtrade":  # prepare_trades' numpy rounding of the price itself
        level = np.round(np.asarray(price) / (spec.tick_size * row)).astype(np.int64) * row
    else:
        level = px // row * row
    raw_bars, raw_levels = footprint_pass(
        np.zeros(len(px), np.int64), px, level, polars_steps(qty, spec.step),
        np.asarray(buy).astype(np.uint8), row)
    offsets = np.array([0, len(raw_levels)], np.int64)
    poc, *_, runs, _, _ = bar_profiles(
        offsets, raw_levels[:, 1], raw_levels[:, 2], raw_levels[:, 3], raw_levels[:, 4],
        raw_levels[:, 5], raw_bars[:, 12], spec.row_size, spec.value_area,
        spec.preset == "freqtrade", spec.imbalance_basis == "count", spec.imbalance_ratio,
        spec.imbalance_min_volume / spec.step, spec.stacked_min_levels)
    # build_footprint's (ticks * tick).round(decimals): numpy's rounding is Polars' here
    price_of_poc = float(np.round(float(poc[0]) * spec.tick_size, _decimals(spec.tick_size)))
    return price_of_poc, int(runs[0, 0]), int(runs[0, 1])


class FootprintBuilder:
    """Builds footprint bars chunk by chunk (e.g. one store partition at a time).

    ``add`` returns the bars completed so far; the last bar of each chunk is held back (its
    trades are re-fed with the next chunk); ``finish`` emits it.
    """

    def __init__(self, spec: FootprintSpec) -> None:
        self.spec = spec
        self._held: pl.DataFrame | None = None
        self._state = BarState()

    def _run(self, prepared: pl.DataFrame, final: bool) -> FootprintResult:
        if self._held is not None and self._held.height:
            prepared = pl.concat([self._held, prepared], how="vertical")
        if not prepared.height:
            return _empty_result(self.spec)
        with_bars = assign_bars(prepared, self.spec.bar_spec, self.spec.step, self._state)
        if final:
            done, self._held = with_bars, None
        else:
            last = with_bars["bar_id"][-1]
            done = with_bars.filter(pl.col("bar_id") < last)
            self._held = with_bars.filter(pl.col("bar_id") == last).drop("bar_id")
            self._state = BarState(int(last))
        if not done.height:
            return _empty_result(self.spec)
        bars, levels = _aggregate(done, self.spec)
        return FootprintResult(bars, levels, self.spec)

    def add(self, trades: pl.LazyFrame | pl.DataFrame) -> FootprintResult:
        return self._run(prepare_trades(trades, self.spec), final=False)

    def finish(self) -> FootprintResult:
        empty = pl.DataFrame(schema={"ts_us": pl.Int64, "px": pl.Int64, "level": pl.Int64,
                                     "lots": pl.Int64, "buy": pl.UInt8})
        return self._run(empty, final=True)


def _empty_result(spec: FootprintSpec) -> FootprintResult:
    return FootprintResult(pl.DataFrame(schema=BAR_SCHEMA), pl.DataFrame(schema=LEVEL_SCHEMA),
                           spec)


def concat_results(parts: list[FootprintResult], spec: FootprintSpec) -> FootprintResult:
    parts = [p for p in parts if p.bars.height]
    if not parts:
        return _empty_result(spec)
    return FootprintResult(pl.concat([p.bars for p in parts]),
                           pl.concat([p.levels for p in parts]), spec)


def build_footprint(trades: pl.LazyFrame | pl.DataFrame, spec: FootprintSpec) -> FootprintResult:
    """One-pass footprint of ``trades`` (store schema: ts, price, qty, side)."""
    return FootprintBuilder(spec)._run(prepare_trades(trades, spec), final=True)


def build_footprint_chunked(chunks, spec: FootprintSpec, progress=None) -> FootprintResult:
    """Footprint of an iterable of trade frames in time order (e.g. one per partition)."""
    builder = FootprintBuilder(spec)
    parts = []
    for chunk in chunks:
        parts.append(builder.add(chunk))
        if progress is not None:
            progress.advance(1)
    parts.append(builder.finish())
    return concat_results(parts, spec)


def stacked_runs(levels: pl.DataFrame, spec: FootprintSpec) -> pl.DataFrame:
    """Runs of stacked imbalance levels from a levels table (see ``FootprintResult``)."""
    row_price = spec.row_size * spec.tick_size
    out = []
    for side in ("buy", "sell"):
        flag = pl.col(f"stacked_{side}")
        if spec.preset == "freqtrade":
            cont = flag.shift(1).over("bar_id").fill_null(False)
        else:
            gap = (pl.col("price") - pl.col("price").shift(1).over("bar_id")).round(9)
            cont = flag.shift(1).over("bar_id").fill_null(False) & (gap == round(row_price, 9))
        runs = (levels.with_columns((flag & ~cont).cum_sum().alias("_run"))
                .filter(flag)
                .group_by("_run", maintain_order=True)
                .agg(pl.col("bar_start").first(), pl.col("bar_id").first(),
                     pl.col("price").min().alias("price_low"),
                     pl.col("price").max().alias("price_high"),
                     pl.len().cast(pl.Int64).alias("levels"))
                .with_columns(pl.lit(side).alias("side")))
        out.append(runs.select("bar_start", "bar_id", "side", "price_low", "price_high", "levels"))
    return pl.concat(out).sort("bar_start", "side", "price_low")


def freqtrade_columns(result: FootprintResult) -> pl.DataFrame:
    """Per bar, freqtrade's orderflow columns: bid/ask (volumes), delta, min_delta, max_delta,
    total_trades, stacked_imbalances_bid/ask (start price of every qualifying window)."""
    spec = result.spec
    n = spec.stacked_min_levels
    lv = result.levels.with_columns(
        pl.int_range(pl.len()).over("bar_id").alias("_i"))
    windows = []
    for side, col in (("bid", "imbalance_sell"), ("ask", "imbalance_buy")):
        run = (pl.col(col) & pl.col(col).shift(1).over("bar_id").fill_null(False)).not_()
        w = (lv.with_columns((pl.col(col) & run).cast(pl.Int64).cum_sum().alias("_r"))
             .with_columns(pl.when(pl.col(col)).then(
                 pl.int_range(pl.len()).over("_r")).otherwise(None).alias("_k"))
             .with_columns(pl.col("_k").max().over("_r").alias("_kmax"))
             # a window of n starts at run position k when k + n - 1 <= last position
             .filter(pl.col(col) & (pl.col("_k") + n - 1 <= pl.col("_kmax")))
             .group_by("bar_id", maintain_order=True)
             .agg(pl.col("price").alias(f"stacked_imbalances_{side}")))
        windows.append(w)
    out = result.bars.select(
        "bar_start", "bar_id",
        pl.col("sell_volume").alias("bid"), pl.col("buy_volume").alias("ask"), "delta",
        pl.col("delta_min").alias("min_delta"), pl.col("delta_max").alias("max_delta"),
        pl.col("trade_count").alias("total_trades"))
    for w in windows:
        out = out.join(w, on="bar_id", how="left", maintain_order="left")
    return out.with_columns(pl.col("stacked_imbalances_bid").fill_null([]),
                            pl.col("stacked_imbalances_ask").fill_null([]))


class FootprintMetrics(BaseModel):
    """The per-bar numbers of one footprint bar (prices in quote currency, volumes in base)."""

    volume: float
    buy_volume: float
    sell_volume: float
    delta: float
    delta_pct: float
    delta_max: float
    delta_min: float
    trade_count: int
    poc: float
    vah: float
    val: float
    unfinished_high: bool
    unfinished_low: bool
    stacked_buy_count: int
    stacked_sell_count: int


class FootprintBar(BaseModel):
    """One bar: time, OHLC, metrics and its levels (rows of the levels table, low to high)."""

    bar_start: object
    bar_end: object
    open: float
    high: float
    low: float
    close: float
    metrics: FootprintMetrics
    levels: list[dict]


class FootprintChart:
    """The footprint engine: ``FootprintChart(spec).build(trades)`` -> :class:`FootprintResult`;
    ``bar(i)`` gives one bar as a :class:`FootprintBar`."""

    def __init__(self, spec: FootprintSpec) -> None:
        self.spec = spec
        self.result: FootprintResult | None = None

    def build(self, trades: pl.LazyFrame | pl.DataFrame) -> FootprintResult:
        self.result = build_footprint(trades, self.spec)
        return self.result

    def __len__(self) -> int:
        return 0 if self.result is None else self.result.bars.height

    def bar(self, i: int) -> FootprintBar:
        if self.result is None:
            raise UsageError("FootprintChart.bar: call build() first")
        row = self.result.bars.row(i, named=True)
        levels = self.result.levels.filter(pl.col("bar_id") == row["bar_id"]).sort("price")
        metrics = FootprintMetrics(**{k: row[k] for k in FootprintMetrics.model_fields})
        return FootprintBar(bar_start=row["bar_start"], bar_end=row["bar_end"], open=row["open"],
                            high=row["high"], low=row["low"], close=row["close"],
                            metrics=metrics, levels=levels.to_dicts())


BAR_SCHEMA: dict[str, pl.DataType] = {
    "bar_start": TS, "bar_end": TS, "bar_id": pl.Int64(),
    "open": pl.Float64(), "high": pl.Float64(), "low": pl.Float64(), "close": pl.Float64(),
    "volume": pl.Float64(), "buy_volume": pl.Float64(), "sell_volume": pl.Float64(),
    "delta": pl.Float64(), "delta_pct": pl.Float64(), "delta_max": pl.Float64(),
    "delta_min": pl.Float64(), "trade_count": pl.Int64(),
    "poc": pl.Float64(), "vah": pl.Float64(), "val": pl.Float64(),
    "unfinished_high": pl.Boolean(), "unfinished_low": pl.Boolean(),
    "stacked_buy_count": pl.Int64(), "stacked_buy_low": pl.Float64(),
    "stacked_buy_high": pl.Float64(), "stacked_sell_count": pl.Int64(),
    "stacked_sell_low": pl.Float64(), "stacked_sell_high": pl.Float64(),
    "imbalance_buy_count": pl.Int64(), "imbalance_sell_count": pl.Int64(),
}
LEVEL_SCHEMA: dict[str, pl.DataType] = {
    "bar_start": TS, "bar_id": pl.Int64(), "price": pl.Float64(),
    "bid_volume": pl.Float64(), "ask_volume": pl.Float64(),
    "bid_count": pl.Int64(), "ask_count": pl.Int64(), "delta": pl.Float64(),
    "imbalance_buy": pl.Boolean(), "imbalance_sell": pl.Boolean(),
    "stacked_buy": pl.Boolean(), "stacked_sell": pl.Boolean(),
}

FOOTPRINT_KIND = register_kind(KindSpec(
    "footprint", {"ts": TS, **BAR_SCHEMA}, key=("bar_start", "bar_id"),
    sort=("bar_start", "bar_id"),
    nullable=frozenset({"stacked_buy_low", "stacked_buy_high", "stacked_sell_low",
                        "stacked_sell_high"})))
FOOTPRINT_LEVELS_KIND = register_kind(KindSpec(
    "footprint_levels", {"ts": TS, **LEVEL_SCHEMA}, key=("bar_start", "bar_id", "price"),
    sort=("bar_start", "bar_id", "price")))
