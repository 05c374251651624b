"""The channels against local servers: a fake Bot API over HTTPS (self-signed certificate,
trusted through ``ca_file``) and aiosmtpd. What the servers received is checked, and neither
the bot token nor the SMTP password appears in any log record or error text."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from botclave_cli.errors import UsageError
from botclave_cli.live.alerts.channels import EmailChannel, TelegramChannel, parse_smtp_url
from botclave_cli.logs import get_logger, setup_logging
from tests.alerts_fakes import FakeBotApi, SmtpSink, self_signed_cert, server_context

#: the fake SMTP server takes a login without TLS so that plain smtp:// is testable
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

TOKEN = "7123456789:AAF-test_TOKEN_never_in_logs_0123456789"
CHAT = "-1001234567890"


@pytest.fixture()
def cert(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path)


def test_telegram_send_message_over_https(cert):
    with FakeBotApi(*cert, token=TOKEN) as api:
        channel = TelegramChannel(TOKEN, CHAT, api_url=api.url, ca_file=cert[0])
        result = channel.send("FILL BTC/USDT buy 0.001 @ 60000")
        channel.close()
    assert result.ok and result.detail == f"sent to chat {CHAT}"
    [request] = api.requests
    assert request.method == "POST" and request.path == f"/bot{TOKEN}/sendMessage"
    assert request.body["chat_id"] == CHAT
    assert request.body["text"] == "FILL BTC/USDT buy 0.001 @ 60000"


def test_telegram_answers_429_401_and_untrusted_certificates(cert):
    too_many = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry "
                "after 7", "parameters": {"retry_after": 7}}
    with FakeBotApi(*cert, token=TOKEN, script=[(429, too_many)]) as api:
        channel = TelegramChannel(TOKEN, CHAT, api_url=api.url, ca_file=cert[0])
        limited = channel.send("x")
        assert limited.retry_after == 7.0 and not limited.ok and not limited.permanent
        assert limited.detail == "HTTP 429: Too Many Requests: retry after 7"
        wrong = TelegramChannel(TOKEN.replace("AAF", "BBF"), CHAT, api_url=api.url,
                                ca_file=cert[0])
        refused = wrong.send("x")
        assert refused.permanent and refused.detail == "HTTP 401: Unauthorized"
        untrusted = TelegramChannel(TOKEN, CHAT, api_url=api.url)  # the system's CAs only
        failed = untrusted.send("x")
        assert not failed.ok and not failed.permanent and "CERTIFICATE_VERIFY_FAILED" in (
            failed.detail)
        for c in (channel, wrong, untrusted):
            c.close()
    assert len(api.requests) == 2  # the untrusted client never got as far as a request
    for result in (limited, refused, failed):
        assert TOKEN not in result.detail and "AAF-test" not in result.detail


def test_telegram_token_never_reaches_a_log(cert, tmp_path, caplog):
    """httpx logs every request's URL (which holds the token) at INFO; botclave's JSON log
    and every handler see it scrubbed. The token is not in the environment here, so the
    scrubbing does not rest on env-based masking."""
    log_file = tmp_path / "botclave.log"
    setup_logging(log_file, verbosity=2)
    caplog.set_level(logging.DEBUG)
    token = "abcdef-not-a-telegram-looking-token"
    with FakeBotApi(*cert, token=token) as api:
        channel = TelegramChannel(token, CHAT, api_url=api.url, ca_file=cert[0])
        ok = channel.send("hello")
        bad = TelegramChannel(token, CHAT, api_url=api.url.replace(
            str(api.server.server_address[1]), "1"), ca_file=cert[0]).send("x")
        get_logger("botclave_cli.live.alerts").error("alert not sent", extra={
            "error": bad.detail})
        channel.close()
    setup_logging(None)
    assert ok.ok and not bad.ok and "ConnectError" in bad.detail
    assert any("HTTP Request: POST" in r.getMessage() for r in caplog.records)
    logged = caplog.text + log_file.read_text() + bad.detail
    assert token not in logged and "/bot***/sendMessage" in caplog.text
    assert json.loads(log_file.read_text().splitlines()[-1])["msg"] == "alert not sent"


def test_bad_token_is_refused_without_echoing_it():
    with pytest.raises(UsageError) as info:
        TelegramChannel("abc/def ghi", CHAT)
    assert "abc/def" not in info.value.message and "BOTCLAVE_TELEGRAM_TOKEN" in info.value.message


def test_smtp_url_parsing():
    t = parse_smtp_url("smtp://alerts%40example.com:p%40ss@mail.example.com:587")
    assert (t.tls, t.host, t.port, t.user, t.password) == (
        False, "mail.example.com", 587, "alerts@example.com", "p@ss")
    assert parse_smtp_url("smtps://mail.example.com").port == 465
    assert parse_smtp_url("smtp://localhost").port == 25
    for bad in ("http://mail.example.com", "smtp://", "smtp://u:secretpw@h:notaport"):
        with pytest.raises(UsageError) as info:
            parse_smtp_url(bad)
        assert "secretpw" not in info.value.message
        assert info.value.message.startswith("BOTCLAVE_SMTP_URL: expected smtp://")


def test_email_over_smtp_with_login():
    with SmtpSink(user="bot", password="pw-1234") as sink:
        channel = EmailChannel(f"smtp://bot:pw-1234@127.0.0.1:{sink.port}",
                               ["ops@example.com", "me@example.com"], sender="bot@example.com")
        result = channel.send("HALT daily loss: -512.3 <= -500\nsession s1")
    assert result.ok and result.detail == (
        f"mailed ops@example.com, me@example.com via 127.0.0.1:{sink.port}")
    [(mail_from, rcpt, msg)] = sink.messages
    assert mail_from == "bot@example.com" and rcpt == ["ops@example.com", "me@example.com"]
    assert msg["Subject"] == "HALT daily loss: -512.3 <= -500"
    assert msg["To"] == "ops@example.com, me@example.com" and msg["Message-ID"]
    assert msg.get_payload(decode=True).decode().replace("\r\n", "\n") == (
        "HALT daily loss: -512.3 <= -500\nsession s1\n")


def test_email_over_smtps_trusting_a_self_signed_certificate(cert):
    with SmtpSink(tls=server_context(*cert)) as sink:
        trusted = EmailChannel(f"smtps://127.0.0.1:{sink.port}", ["ops@example.com"],
                               ca_file=cert[0])
        assert trusted.send("ERROR x: y").ok
        untrusted = EmailChannel(f"smtps://127.0.0.1:{sink.port}", ["ops@example.com"])
        failed = untrusted.send("ERROR x: y")
    assert len(sink.messages) == 1 and sink.messages[0][2]["Subject"] == "ERROR x: y"
    assert not failed.ok and not failed.permanent and "CERTIFICATE_VERIFY_FAILED" in failed.detail


def test_email_refusals_never_show_the_password(tmp_path):
    with SmtpSink(user="bot", password="right-pass") as sink:
        url = f"smtp://bot:wrong-pass-9876@127.0.0.1:{sink.port}"
        wrong = EmailChannel(url, ["ops@example.com"]).send("x")
        required = EmailChannel(f"smtp://127.0.0.1:{sink.port}", ["ops@example.com"],
                                starttls="require").send("x")
    assert wrong.permanent and wrong.detail == "SMTP login refused (535)"
    assert required.permanent and "does not offer STARTTLS" in required.detail
    assert sink.messages == []
    with SmtpSink() as open_relay:  # offers no AUTH, but the URL names a user
        no_auth = EmailChannel(f"smtp://bot:pw-4321@127.0.0.1:{open_relay.port}",
                               ["ops@example.com"]).send("x")
    assert no_auth.permanent and no_auth.detail == (
        f"127.0.0.1:{open_relay.port} does not offer AUTH (a user is set in BOTCLAVE_SMTP_URL)")
    down = EmailChannel(f"smtp://bot:wrong-pass-9876@127.0.0.1:{sink.port}",
                        ["ops@example.com"], timeout_s=2).send("x")
    assert not down.ok and not down.permanent and "wrong-pass-9876" not in down.detail
    with pytest.raises(UsageError, match="BOTCLAVE_ALERT_EMAIL: expected"):
        EmailChannel("smtp://h", ["not-an-address"])


def test_a_bad_ca_file_is_one_line(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    for path in (junk, tmp_path / "missing.pem"):
        with pytest.raises(UsageError, match=rf"alerts ca_file {path}: expected a readable PEM"):
            TelegramChannel(TOKEN, CHAT, ca_file=path)
        with pytest.raises(UsageError, match="expected a readable PEM"):
            EmailChannel("smtps://h", ["ops@example.com"], ca_file=path)
