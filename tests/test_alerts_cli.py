"""``botclave alerts test`` against the local fake Bot API and SMTP server: which channel worked,
exit 0 / 1 / 2, and no secret in its output or log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from botclave_cli.cli.app import app
from tests.alerts_fakes import FakeBotApi, SmtpSink, self_signed_cert

#: the fake SMTP server takes a login without TLS so that plain smtp:// is testable
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

TOKEN = "7123456789:AAF-test_TOKEN_never_in_logs_0123456789"


def cli(*args: str, env: dict[str, str]):
    return CliRunner().invoke(app, ["-vv", *args], env=env)


@pytest.fixture()
def cert(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path)


def _config(tmp_path: Path, api: FakeBotApi, cert_file: Path) -> Path:
    path = tmp_path / "exchange_config.yaml"
    path.write_text(yaml.safe_dump({"alerts": {
        "telegram": {"api_url": api.url, "ca_file": str(cert_file)},
        "email": {"sender": "bot@example.com", "timeout_s": 2}}}))
    return path


def test_both_channels_work(cert, tmp_path):
    with FakeBotApi(*cert, token=TOKEN) as api, SmtpSink(user="bot", password="pw-5678") as sink:
        env = {"BOTCLAVE_TELEGRAM_TOKEN": TOKEN, "BOTCLAVE_TELEGRAM_CHAT_ID": "42",
               "BOTCLAVE_SMTP_URL": f"smtp://bot:pw-5678@127.0.0.1:{sink.port}",
               "BOTCLAVE_ALERT_EMAIL": "ops@example.com"}
        config = _config(tmp_path, api, cert[0])
        r = cli("alerts", "test", "--config", str(config), "--json", env=env)
        plain = cli("alerts", "test", "--config", str(config), "--text", "hello ops", env=env)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["ok"] is True
    assert [(c["channel"], c["configured"], c["ok"]) for c in out["channels"]] == [
        ("telegram", True, True), ("email", True, True)]
    assert out["channels"][0]["detail"] == "sent to chat 42"
    assert plain.exit_code == 0 and plain.stdout == (
        f"telegram ok (sent to chat 42); email ok (mailed ops@example.com via "
        f"127.0.0.1:{sink.port})\n")
    first, second = api.requests
    assert first.path == f"/bot{TOKEN}/sendMessage" and first.body["chat_id"] == "42"
    assert first.body["text"].startswith("[botclave] alert test from ")
    assert second.body["text"] == "hello ops"
    assert [m[2]["Subject"] for m in sink.messages] == [first.body["text"], "hello ops"]


def test_a_failing_channel_exits_1_and_shows_no_secret(cert, tmp_path):
    with FakeBotApi(*cert, token="1111111:other_token_the_server_knows_abcdefgh") as api:
        env = {"BOTCLAVE_TELEGRAM_TOKEN": TOKEN, "BOTCLAVE_TELEGRAM_CHAT_ID": "42",
               "BOTCLAVE_SMTP_URL": "smtp://bot:pw-secret-5678@127.0.0.1:9",  # nothing there
               "BOTCLAVE_ALERT_EMAIL": "ops@example.com"}
        config = _config(tmp_path, api, cert[0])
        r = cli("alerts", "test", "--config", str(config), "--json", env=env)
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    tg, em = out["channels"]
    assert (tg["ok"], tg["detail"]) == (False, "HTTP 401: Unauthorized")
    assert em["configured"] and not em["ok"] and "Connection refused" in em["detail"]
    log = (tmp_path / "datasets" / "botclave.log")
    seen = r.output + (log.read_text() if log.exists() else "")
    assert TOKEN not in seen and "pw-secret-5678" not in seen


def test_nothing_configured_exits_2_naming_the_variables(tmp_path):
    r = cli("alerts", "test", env={})
    assert r.exit_code == 2
    assert r.stdout == ("no alert channel configured: telegram not configured: set "
                        "BOTCLAVE_TELEGRAM_TOKEN and BOTCLAVE_TELEGRAM_CHAT_ID; email not "
                        "configured: set BOTCLAVE_SMTP_URL and BOTCLAVE_ALERT_EMAIL\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("alerts:\n  window_s: -1\n")
    r = cli("alerts", "test", "--config", str(bad), env={})
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.stderr.strip() == (f"error: {bad}: alerts.window_s: Input should be greater than 0 "
                                "(got -1)")
