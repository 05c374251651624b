"""``OrderFlowSignal``: the row every order-flow detector emits, and its frame schema.

``time`` is when the pattern is KNOWN (signals never look ahead), ``start`` when it began; prices
in quote currency. Indicators (``indicators.py``) and flow events (``flow_events.py``) both
return frames in ``SIGNAL_SCHEMA``.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from pydantic import BaseModel, ConfigDict

from botclave_cli.data.schemas import TS

SIGNAL_SCHEMA: dict[str, pl.DataType] = {
    "time": TS, "start": TS, "kind": pl.String(), "side": pl.String(),
    "price_low": pl.Float64(), "price_high": pl.Float64(), "strength": pl.Float64(),
}


class OrderFlowSignal(BaseModel):
    """One detected pattern. ``side``: absorption the passive side ("bid"/"ask"); divergences
    "bearish"/"bullish"; voids the direction price crossed ("up"/"down"/"gap")."""

    model_config = ConfigDict(frozen=True)

    time: dt.datetime
    start: dt.datetime
    kind: str
    side: str
    price_low: float
    price_high: float
    strength: float


def signals_frame(rows: list[dict] | pl.DataFrame) -> pl.DataFrame:
    """Signals as a frame in ``SIGNAL_SCHEMA`` order, sorted by time."""
    df = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows, schema=SIGNAL_SCHEMA)
    return df.select([pl.col(c).cast(t) for c, t in SIGNAL_SCHEMA.items()]).sort("time", "kind")


def to_signals(df: pl.DataFrame) -> list[OrderFlowSignal]:
    return [OrderFlowSignal(**row) for row in df.iter_rows(named=True)]
