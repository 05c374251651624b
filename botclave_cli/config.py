"""pydantic models of the YAML configuration files and their loader.

Every problem in a config file becomes one ``ConfigError`` line naming the file, the key path and
what was expected. Credentials are never read from YAML: a key that looks like one is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from botclave_cli.errors import ConfigError

CONFIG_DIR = Path("configs")
EXCHANGE_CONFIG = "exchange_config.yaml"
STRATEGY_PARAMS = "strategy_params.yaml"

MarketType = Literal["spot", "usdm", "coinm"]
CREDENTIAL_KEYS = {"api_key", "apikey", "secret", "api_secret", "password", "passphrase",
                   "private_key", "token"}


class StrictModel(BaseModel):
    """Base for config models: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RateLimit(StrictModel):
    """Client-side pacing on top of ccxt's own rate limiter."""

    enabled: bool = True
    max_retries: int = Field(5, ge=0, le=20, description="retries on network errors, 429, 418, 5xx")
    backoff_seconds: float = Field(
        1.0, gt=0, le=60, description="first backoff, doubled each retry"
    )
    max_backoff_seconds: float = Field(60.0, gt=0, le=3600)
    timeout_ms: int = Field(10_000, ge=100, le=120_000, description="HTTP timeout per request")


class Fee(StrictModel):
    """Fees as fractions of notional (0.001 = 10 bps); negative maker fees are rebates."""

    maker: float = Field(0.001, ge=-0.01, le=0.01)
    taker: float = Field(0.001, ge=0, le=0.01)


class FeeSchedule(Fee):
    overrides: dict[str, Fee] = Field(default_factory=dict, description="per unified symbol")

    def for_symbol(self, symbol: str) -> Fee:
        return self.overrides.get(symbol, Fee(maker=self.maker, taker=self.taker))


class SymbolConfig(StrictModel):
    """A symbol's grid. Tick/lot are filled from the exchange's markets when fetched."""

    symbol: str = Field(..., min_length=3, description="ccxt unified symbol, e.g. BTC/USDT")
    tick_size: float | None = Field(None, gt=0)
    lot_size: float | None = Field(None, gt=0)
    contract_size: float | None = Field(None, gt=0)

    @field_validator("symbol")
    @classmethod
    def _unified(cls, value: str) -> str:
        if "/" not in value:
            raise ValueError("a ccxt unified symbol such as BTC/USDT or BTC/USDT:USDT")
        return value


class OrderLimits(StrictModel):
    """What the order manager refuses before anything is sent (exchange/orders/checks.py)."""

    max_order_notional: float | None = Field(None, gt=0, description="largest order, quote "
                                             "currency (qty x price)")
    max_position_notional: float | None = Field(None, gt=0, description="largest position "
                                                "after the order, quote currency")
    price_band_pct: float = Field(5.0, gt=0, le=100, description="a priced order further "
                                  "than this from the last price is refused (percent)")
    kill_switch_file: Path | None = Field(None, description="while this file exists only "
                                          "orders that reduce a position are sent")
    leverage: int | None = Field(None, ge=1, le=125, description="futures: set before the "
                                 "first order of a symbol")
    margin_type: Literal["isolated", "cross"] | None = Field(None, description="futures: set "
                                                             "before the first order")
    journal_sync: Literal["full", "normal"] = Field(
        "full", description="SQLite synchronous setting of the order journal: full survives a "
        "power loss (an fsync per transaction), normal survives a killed process only")


AlertKind = Literal["fill", "halt", "disconnect", "error"]
ALERT_KINDS: tuple[AlertKind, ...] = ("fill", "halt", "disconnect", "error")


class TelegramAlerts(StrictModel):
    """Telegram Bot API ``sendMessage``; token and chat id come from the environment only
    (BOTCLAVE_TELEGRAM_TOKEN, BOTCLAVE_TELEGRAM_CHAT_ID)."""

    enabled: bool = True
    api_url: str = Field("https://api.telegram.org", pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
                         description="Bot API base URL (a local fake in tests)")
    ca_file: Path | None = Field(None, description="PEM bundle to trust instead of the "
                                 "system's (a self-signed test server, a TLS proxy)")
    timeout_s: float = Field(10.0, gt=0, le=120, description="HTTP timeout per request")


class EmailAlerts(StrictModel):
    """E-mail over SMTP; server and recipient come from the environment only (BOTCLAVE_SMTP_URL
    ``smtp://user:pass@host:port`` or ``smtps://...``, BOTCLAVE_ALERT_EMAIL)."""

    enabled: bool = True
    sender: str | None = Field(None, description="From address (default: the SMTP user, "
                               "else botclave@<host name>)")
    starttls: Literal["auto", "require", "never"] = Field(
        "auto", description="smtp://: upgrade when the server offers STARTTLS (auto), always "
        "(require) or never; smtps:// is TLS from the first byte")
    ca_file: Path | None = Field(None, description="PEM bundle to trust for TLS")
    timeout_s: float = Field(10.0, gt=0, le=120, description="SMTP timeout per operation")


class AlertsConfig(StrictModel):
    """``alerts:``: messages on fills, halts, long disconnects and errors, rate-limited per
    channel (botclave_cli/live/alerts/)."""

    enabled: bool = True
    events: list[AlertKind] = Field(default_factory=lambda: list(ALERT_KINDS),
                                    description="event kinds that are sent")
    disconnect_after_s: float = Field(30.0, ge=0, le=86_400, description="a disconnect is "
                                      "alerted only once it lasts longer than this (seconds)")
    max_per_window: int = Field(10, ge=1, le=1000, description="at most this many messages "
                                "per channel and window; the rest go out as one summary")
    window_s: float = Field(60.0, gt=0, le=86_400, description="rate-limit window (seconds)")
    queue_size: int = Field(1000, ge=1, le=1_000_000, description="events waiting per "
                            "channel; beyond it new events are counted and dropped")
    max_attempts: int = Field(3, ge=1, le=20, description="tries per message on network "
                              "errors and 5xx (a 429 waits its retry_after and does not count)")
    telegram: TelegramAlerts = Field(default_factory=TelegramAlerts)
    email: EmailAlerts = Field(default_factory=EmailAlerts)


class ExchangeConfig(StrictModel):
    """``configs/exchange_config.yaml``."""

    exchange: str = Field("binance", pattern=r"^[a-z0-9]+$", description="ccxt exchange id")
    market: MarketType = "spot"
    testnet: bool = Field(True, description="private calls go to the testnet unless false")
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    fees: FeeSchedule = Field(default_factory=FeeSchedule)
    symbols: list[SymbolConfig] = Field(default_factory=list)
    api_urls: dict[str, str] | None = Field(
        None, description="override ccxt's API base URLs (local emulator, proxy)"
    )
    testnet_api_urls: dict[str, str] | None = Field(
        None, description="the same for the testnet (used in sandbox mode; default api_urls)"
    )
    orders: OrderLimits = Field(default_factory=OrderLimits)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)

    def symbol_config(self, symbol: str) -> SymbolConfig | None:
        return next((s for s in self.symbols if s.symbol == symbol), None)


M = TypeVar("M", bound=BaseModel)


def _credential_keys(node: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if str(key).lower().replace("-", "_") in CREDENTIAL_KEYS and value not in (None, ""):
                found.append(here)
            found.extend(_credential_keys(value, here))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_credential_keys(value, f"{path}[{i}]"))
    return found


def format_validation_error(source: str, error: ValidationError) -> str:
    """First pydantic error as ``file: key.path: message (got value)``."""
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "<top level>"
    got = first.get("input")
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "required key is missing"
    shown = "" if first["type"] in ("missing",) or isinstance(got, dict) else f" (got {got!r})"
    more = len(error.errors()) - 1
    tail = f"; {more} more problem(s)" if more > 0 else ""
    return f"{source}: {where}: {message}{shown}{tail}"


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where}: {problem}") from None


def validate_data(data: Any, model: type[M], source: str) -> M:
    """Validate an already-parsed mapping against ``model``; errors name ``source``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level")
    secrets = _credential_keys(data)
    if secrets:
        raise ConfigError(
            f"{source}: {secrets[0]}: credentials are not read from files; set them in the "
            "environment (BOTCLAVE_<EXCHANGE>_API_KEY and BOTCLAVE_<EXCHANGE>_SECRET)"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def load_model(path: Path, model: type[M]) -> M:
    """Read ``path`` as YAML and validate it against ``model``."""
    return validate_data(read_yaml(path), model, str(path))


def load_exchange_config(path: Path | None = None) -> ExchangeConfig:
    """The exchange config; defaults when ``path`` is None and no file is in ``configs/``."""
    if path is None:
        default = CONFIG_DIR / EXCHANGE_CONFIG
        return load_model(default, ExchangeConfig) if default.exists() else ExchangeConfig()
    return load_model(path, ExchangeConfig)


#: file name in configs/ -> model of this module, for ``botclave config check`` (the strategy,
#: validation and pipeline models live in their own layers and are added by the CLI)
CONFIG_MODELS: dict[str, type[BaseModel]] = {EXCHANGE_CONFIG: ExchangeConfig}
