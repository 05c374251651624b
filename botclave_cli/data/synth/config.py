"""``SynthConfig``: everything that determines a synthetic market (same config -> same bytes)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class SynthConfig(BaseModel):
    """Parameters of the synthetic market.

    Units: prices in quote currency, quantities in base units, ``trades_per_day`` is the rate of
    background aggressive orders (the total is a little higher: sweeps and planted flow add
    prints). ``book_levels`` is the depth kept on each side, one level per tick next to the
    touch; ``book_interval_ms`` is the cadence of the depth diffs (Binance spot: 100 ms).
    ``edge`` switches the absorptions' follow-through (events.py) on or off; everything else,
    random draws included, is the same either way.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = "BTC/USDT"
    start: dt.date = dt.date(2024, 1, 1)
    days: int = Field(1, ge=1, le=366)
    seed: int = Field(7, ge=0, le=2**63 - 1)
    trades_per_day: int = Field(400_000, ge=5_000, le=100_000_000)
    # Moves are planned in ticks (a day spans about 1000): a 1.0 tick gives BTC-like daily
    # ranges of about 2%, where fees do not swamp every strategy; 0.01 would span 0.02%.
    tick_size: float = Field(1.0, gt=0)
    lot_size: float = Field(0.00001, gt=0)
    start_price: float = Field(42_000.0, gt=0)
    book_levels: int = Field(50, ge=40, le=1_000)
    book_interval_ms: int = Field(250, ge=100, le=1_000)
    trade_qty_median: float = Field(0.01, gt=0, description="background trade size, base units")
    level_qty_median: float = Field(0.4, gt=0, description="resting size per level, base units")
    edge: bool = Field(True, description="absorptions have their planted follow-through "
                       "(events.FOLLOW_THROUGH); False (botclave synth --no-edge) is the control: "
                       "the same events, flow and draws, with only background after each one")

    @field_validator("book_interval_ms")
    @classmethod
    def _whole_minute(cls, value: int) -> int:
        if 60_000 % value:
            raise ValueError(f"{value} must divide 60000 (one minute)")
        return value

    @field_validator("tick_size", "lot_size")
    @classmethod
    def _few_decimals(cls, value: float) -> float:
        if decimals(value) > 8:
            raise ValueError(f"{value} has more than 8 decimals")
        return value

    @model_validator(mode="after")
    def _check(self) -> SynthConfig:
        if self.start_price / self.tick_size < 10_000:
            raise ValueError("start_price must be >= 10000 ticks (room for the planted moves)")
        lots = self.trade_qty_median / self.lot_size, self.level_qty_median / self.lot_size
        if lots[0] < 10 or lots[1] < 100:
            raise ValueError("trade_qty_median >= 10 lots and level_qty_median >= 100 lots")
        return self

    @property
    def start_us(self) -> int:
        return (self.start - dt.date(1970, 1, 1)).days * 86_400_000_000

    @property
    def end_us(self) -> int:
        return self.start_us + self.days * 86_400_000_000

    @property
    def interval_us(self) -> int:
        return self.book_interval_ms * 1_000

    @property
    def intervals_per_day(self) -> int:
        return 86_400_000 // self.book_interval_ms

    def per_second(self, seconds: float) -> int:
        """Whole intervals in ``seconds`` (at least one)."""
        return max(1, round(seconds * 1_000 / self.book_interval_ms))


def decimals(value: float) -> int:
    """Decimals of a tick or lot as written (0.01 -> 2, 0.00001 -> 5)."""
    exponent = Decimal(repr(value)).normalize().as_tuple().exponent
    return max(0, -int(exponent))
