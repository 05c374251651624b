"""Depth analysis over the rebuilt book: parameters, the analyzer, one run from frames.

``analyze_book`` replays snapshots + diffs (``DOMBuilder``), samples the book every
``interval_us``, and runs the analyses of ``series`` (spread .. OFI), ``walls``,
``support_resistance`` and ``absorption`` on the valid samples only, so nothing is computed
from a stretch where the book was invalid. ``store`` reads its inputs from the store and
writes its outputs there.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from botclave_cli.data.schemas import TS
from botclave_cli.engine.book.dom_builder import DOMBuilder
from botclave_cli.engine.book.stream import BookStream
from botclave_cli.engine.depth.absorption import AbsorptionZone, find_absorption
from botclave_cli.engine.depth.series import depth_series
from botclave_cli.engine.depth.support_resistance import support_resistance
from botclave_cli.engine.depth.walls import LiquidityLevel, find_walls


class DepthParams(BaseModel):
    """Parameters of the depth analytics (hashed into the ``params=`` level of the dataset)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_us: int = Field(1_000_000, gt=0, description="sampling interval")
    sample_depth: int = Field(20, ge=1, description="levels per side kept in samples")
    levels: int = Field(10, ge=1, description="levels per side for the imbalance")
    band_bps: float = Field(10.0, gt=0, description="band around the mid for imbalance_band")
    wall_k: float = Field(10.0, gt=1, description="wall: size >= k x typical level size")
    wall_min_us: int = Field(60_000_000, ge=0, description="wall: persists at least this long")
    cluster_ticks: int = Field(10, ge=1, description="support/resistance price bucket, ticks")
    absorption_window_us: int = Field(60_000_000, gt=0, description="absorption: window")
    absorption_volume_k: float = Field(
        20.0, gt=0, description="absorption: traded qty >= k x median traded qty per level-window")
    absorption_refill: float = Field(
        2.0, gt=0, description="absorption: traded qty >= refill x mean resting qty shown")
    absorption_break_ticks: int = Field(2, ge=0, description="absorption: max trade-through")


class DepthAnalyzer:
    """Depth series, walls, support/resistance and absorption from sampled books and trades,
    with one set of ``DepthParams`` (see each analysis module for the definitions)."""

    def __init__(self, params: DepthParams | None = None) -> None:
        self.params = params or DepthParams()

    def series(self, samples: pl.DataFrame, events: pl.DataFrame | None = None) -> pl.DataFrame:
        """One row per valid sample: the ``depth_series`` kind."""
        p = self.params
        return depth_series(samples, events, levels=p.levels, band_bps=p.band_bps,
                            interval_us=p.interval_us)

    def walls(self, samples: pl.DataFrame, trades: pl.DataFrame | None = None
              ) -> list[LiquidityLevel]:
        p = self.params
        return find_walls(samples, trades, interval_us=p.interval_us, wall_k=p.wall_k,
                          wall_min_us=p.wall_min_us)

    def support_resistance(self, samples: pl.DataFrame, tick_size: float, top: int = 5
                           ) -> pl.DataFrame:
        return support_resistance(samples, tick_size, cluster_ticks=self.params.cluster_ticks,
                                  top=top)

    def absorption(self, samples: pl.DataFrame, trades: pl.DataFrame, tick_size: float
                   ) -> list[AbsorptionZone]:
        p = self.params
        return find_absorption(samples, trades, tick_size, window_us=p.absorption_window_us,
                               volume_k=p.absorption_volume_k, refill=p.absorption_refill,
                               break_ticks=p.absorption_break_ticks)


@dataclass
class DepthResult:
    """Everything one depth run produced (frames in store schemas, objects for the report)."""

    counts: dict
    samples: pl.DataFrame
    series: pl.DataFrame
    walls: list[LiquidityLevel]
    zones: list[AbsorptionZone]
    levels: pl.DataFrame
    trades: pl.DataFrame
    tick_size: float


def analyze_book(
    book_snapshot: pl.DataFrame, book_diff: pl.DataFrame, trades: pl.DataFrame | None,
    market: str, params: DepthParams | None = None, tick_size: float | None = None,
    start_us: int | None = None, end_us: int | None = None,
) -> DepthResult:
    """Replay the book, sample it, and run every analysis on the valid samples in the range.

    ``tick_size`` (quote units) is for the analytics (price buckets, absorption break); the
    replay itself runs on the data's own decimal grid. Times in us, [start_us, end_us).
    """
    p = params or DepthParams()
    # the kernel works on the data's own decimal grid (exact); the tick is for the analytics
    stream = BookStream.from_frames(book_snapshot, book_diff)
    replay = DOMBuilder(market).replay(stream, sample_interval_us=p.interval_us,
                                       sample_depth=p.sample_depth)
    samples = replay.samples_frame()
    events = replay.events()
    trades = trades if trades is not None else pl.DataFrame(
        schema={"ts": TS, "price": pl.Float64, "qty": pl.Float64, "side": pl.String})
    us = pl.col("ts").dt.epoch("us")
    if start_us is not None:
        samples, events, trades = (f.filter(us >= start_us) for f in (samples, events, trades))
    if end_us is not None:
        samples, events, trades = (f.filter(us < end_us) for f in (samples, events, trades))
    analyzer = DepthAnalyzer(p)
    tick = tick_size or stream.tick_size
    counts = replay.counts
    counts["samples_valid"] = samples["ts"].n_unique()
    counts["samples_taken"] = int(len(replay.samples.get("ts", [])))
    return DepthResult(
        counts=counts, samples=samples, series=analyzer.series(samples, events),
        walls=analyzer.walls(samples, trades), zones=analyzer.absorption(samples, trades, tick),
        levels=analyzer.support_resistance(samples, tick), trades=trades, tick_size=tick,
    )
