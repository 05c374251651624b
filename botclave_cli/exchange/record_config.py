"""What a recording session is asked to do (``RecordConfig``) and what it did (``RecordResult``).

Shared by the WebSocket loop (``recorder.py``) and the store side (``record_sink.py``). Times in
seconds; ``tick_size``/``lot_size`` in quote/base units (None: inferred by the store writer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from botclave_cli.errors import UsageError

STREAMS = {"trades": "trade", "depth": "depth@{speed}", "quotes": "bookTicker"}
DEFAULT_WS = {"spot": "wss://stream.binance.com:9443/stream",
              "usdm": "wss://fstream.binance.com/stream",
              "coinm": "wss://dstream.binance.com/stream"}


def market_id(symbol: str, market: str) -> str:
    """Unified symbol -> Binance id: BTC/USDT -> BTCUSDT, BTC/USD:BTC (coinm) -> BTCUSD_PERP."""
    if "/" not in symbol:
        raise UsageError(f"--symbol {symbol!r}: expected a ccxt unified symbol such as BTC/USDT")
    base, rest = symbol.split("/", 1)
    quote = rest.split(":", 1)[0]
    return f"{base}{quote}_PERP" if market == "coinm" else f"{base}{quote}"


@dataclass
class RecordConfig:
    symbol: str
    market: str = "spot"
    streams: tuple[str, ...] = ("trades", "depth", "quotes")
    duration_s: float | None = None
    ws_url: str | None = None
    depth_speed: str = "100ms"
    snapshot_limit: int = 1000
    flush_every_s: float = 5.0
    #: a store write rewrites the day's partition file: less often than the capture append
    store_every_s: float = 60.0
    max_backoff_s: float = 30.0
    tick_size: float | None = None
    lot_size: float | None = None

    def __post_init__(self) -> None:
        unknown = [s for s in self.streams if s not in STREAMS]
        if unknown or not self.streams:
            raise UsageError(f"--streams {','.join(self.streams)}: expected some of "
                             f"{', '.join(STREAMS)}")
        if self.market not in DEFAULT_WS:
            raise UsageError(f"--market {self.market!r}: expected spot, usdm or coinm")

    def url(self) -> str:
        sid = market_id(self.symbol, self.market).lower()
        names = [f"{sid}@{STREAMS[s].format(speed=self.depth_speed)}" for s in self.streams]
        return f"{self.ws_url or DEFAULT_WS[self.market]}?streams={'/'.join(names)}"


@dataclass
class RecordResult:
    messages: int = 0
    lines_written: int = 0
    snapshots: int = 0
    gaps: int = 0
    resyncs: int = 0
    reconnects: int = 0
    rows_written: int = 0
    first_seq: int = 0
    next_seq: int = 0
    stopped_by: str = ""
    capture_files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: the store writer's warnings (an inferred tick or lot), each once
    warnings: list[str] = field(default_factory=list)
