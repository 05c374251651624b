import json
import logging

import pytest

from botclave_cli.config import ExchangeConfig, load_model
from botclave_cli.errors import ConfigError
from botclave_cli.logs import setup_logging
from botclave_cli.secrets import env_credentials, mask


def test_shipped_configs_validate():
    from tests.conftest import PROJECT_ROOT

    cfg = load_model(PROJECT_ROOT / "configs" / "exchange_config.yaml", ExchangeConfig)
    assert cfg.testnet is True and cfg.symbol_config("BTC/USDT").tick_size == 0.01


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("exchange: binance\nmarkt: spot\n", "x.yaml: markt: unknown key"),
        ("market: margin\n", "x.yaml: market: Input should be 'spot', 'usdm' or 'coinm'"),
        ("rate_limit: {max_retries: -1}\n", "x.yaml: rate_limit.max_retries: Input should be"),
        ("fees: {taker: lots}\n", "x.yaml: fees.taker: Input should be a valid number"),
        ("api_key: abcd1234\n", "x.yaml: api_key: credentials are not read from files"),
        ("symbols: [{symbol: BTC/USDT, secret: s3cr3t}]\n", "symbols[0].secret: credentials"),
        ("exchange: [\n", "x.yaml: line"),
    ],
)
def test_config_errors_are_one_line_naming_key(tmp_path, text, expected):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_model(path, ExchangeConfig)
    message = str(err.value)
    assert "\n" not in message
    assert expected.replace("x.yaml", str(path)) in message or expected in message


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_model(tmp_path / "nope.yaml", ExchangeConfig)


def test_mask_removes_env_values_and_inline_secrets():
    env = {"BOTCLAVE_BINANCE_API_KEY": "AKIAKEY123456", "BOTCLAVE_BINANCE_SECRET": "sup3rs3cret"}
    text = "GET /api?apiKey=foo&signature=abcdef sent AKIAKEY123456 and sup3rs3cret; x=1"
    masked = mask(text, env)
    for leaked in ("AKIAKEY123456", "sup3rs3cret", "abcdef", "foo"):
        assert leaked not in masked
    assert "x=1" in masked
    assert mask('{"secret": "zzz"}', {}) == '{"secret": "***"}'


def test_env_credentials(monkeypatch):
    assert env_credentials("binance", {}) is None
    env = {"BOTCLAVE_BINANCE_API_KEY": "k", "BOTCLAVE_BINANCE_SECRET": "s"}
    assert env_credentials("binance", env) == ("k", "s")


def test_log_file_is_json_lines_and_masks_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("BOTCLAVE_BINANCE_SECRET", "verysecretvalue")
    log_file = tmp_path / "log.jsonl"
    logger = setup_logging(log_file, verbosity=1)
    logger.getChild("t").info("signing with verysecretvalue", extra={"url": "x?apiKey=abc123"})
    for handler in logger.handlers:
        handler.flush()
    record = json.loads(log_file.read_text().splitlines()[-1])
    assert record["level"] == "info" and record["logger"] == "botclave.t"
    assert "verysecretvalue" not in log_file.read_text() and "abc123" not in log_file.read_text()
    setup_logging(None)
    assert logging.getLogger("botclave").level == logging.WARNING
