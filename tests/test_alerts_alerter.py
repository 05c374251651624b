"""The ``Alerter``: rate limit with one coalesced summary, Telegram's 429 retry_after, retries,
the bounded queue that never blocks the caller, the disconnect threshold, flush on close, and
channels built from the config and the environment."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from botclave_cli.config import AlertsConfig, EmailAlerts, TelegramAlerts
from botclave_cli.live.alerts import Alerter, SendResult, alerter_from_config, setup_channels
from botclave_cli.live.alerts.channels import TelegramChannel
from botclave_cli.logs import setup_logging
from tests.alerts_fakes import FakeBotApi, SmtpSink, self_signed_cert

TOKEN = "7123456789:AAF-test_TOKEN_never_in_logs_0123456789"
CHAT = "42"
T0 = 1_723_161_600.0  # 2024-08-09 00:00:00 UTC


class Recording:
    """A channel that keeps what it is given; ``gate`` (when set) holds each send until
    released, and ``entered`` says a send has started."""

    name = "recording"

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.texts: list[str] = []
        self.gate = gate
        self.entered = threading.Event()

    def send(self, text: str) -> SendResult:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        self.texts.append(text)
        return SendResult(True, "kept")

    def close(self) -> None:
        pass


@pytest.fixture()
def cert(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path)


def _telegram(api: FakeBotApi, cert) -> TelegramChannel:
    return TelegramChannel(TOKEN, CHAT, api_url=api.url, ca_file=cert[0])


def test_k_per_window_then_one_summary(cert):
    cfg = AlertsConfig(max_per_window=3, window_s=3.0)  # 3 sends fit in 3 s even on a busy box
    with FakeBotApi(*cert, token=TOKEN) as api:
        alerter = Alerter([_telegram(api, cert)], cfg, session="s1")
        for i in range(10):
            alerter.fill("BTC/USDT", "buy", 0.001, 60000.0 + i)
        got = api.wait_for(4)
        stats = alerter.close()["telegram"]
    fills = [f"FILL BTC/USDT buy 0.001 @ {60000 + i}" for i in range(10)]
    assert api.texts() == [f"[botclave s1] {f}" for f in fills[:3]] + [
        "[botclave s1] 7 more events (at most 3 per 3 s): 7 fill\n" + "\n".join(fills[3:])]
    assert got[3].at - got[0].at >= 3.0 - 0.05  # the summary waited for a free slot
    assert (stats.sent, stats.summaries, stats.failed, stats.dropped) == (4, 1, 0, 0)


def test_close_flushes_what_is_held_at_once():
    channel = Recording()
    alerter = Alerter([channel], AlertsConfig(max_per_window=2, window_s=3600))
    for reason in ("a", "b", "c", "d", "e"):
        alerter.halt(reason)
    alerter.close(timeout_s=5)
    assert channel.texts == ["[botclave] HALT a", "[botclave] HALT b",
                             "[botclave] 3 more events (at most 2 per 3600 s): 3 halt\n"
                             "HALT c\nHALT d\nHALT e"]
    alerter.halt("after close")  # ignored, never raises
    assert len(channel.texts) == 3


def test_telegram_429_retry_after_is_honoured(cert):
    too_many = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry "
                "after 1", "parameters": {"retry_after": 1}}
    with FakeBotApi(*cert, token=TOKEN, script=[(429, too_many)]) as api:
        alerter = Alerter([_telegram(api, cert)], session="s1")
        alerter.error("order manager", "binance 503")
        got = api.wait_for(2)
        stats = alerter.close()["telegram"]
    assert [r.body["text"] for r in got] == ["[botclave s1] ERROR order manager: binance 503"] * 2
    assert got[1].at - got[0].at >= 1.0 - 0.05
    assert (stats.sent, stats.rate_limited, stats.failed) == (1, 1, 0)


def test_server_errors_are_retried_then_dropped(cert, tmp_path):
    log_file = tmp_path / "botclave.log"
    setup_logging(log_file)
    bad = {"ok": False, "error_code": 502, "description": "Bad Gateway"}
    cfg = AlertsConfig(max_attempts=3)
    with FakeBotApi(*cert, token=TOKEN, script=[(502, bad)] * 2) as api:
        alerter = Alerter([_telegram(api, cert)], cfg, backoff_s=0.05)
        alerter.halt("drawdown", "-20.5% <= -20%")
        alerter.close()
        assert len(api.requests) == 3 and alerter.stats()["telegram"].sent == 1
    with FakeBotApi(*cert, token=TOKEN, script=[(502, bad)] * 3) as api:
        alerter = Alerter([_telegram(api, cert)], cfg, backoff_s=0.05)
        alerter.halt("drawdown")
        stats = alerter.close()["telegram"]
        assert len(api.requests) == 3 and (stats.sent, stats.failed) == (0, 1)
    with FakeBotApi(*cert, token=TOKEN, script=[(400, {"ok": False, "description":
                                                       "Bad Request: chat not found"})]) as api:
        alerter = Alerter([_telegram(api, cert)], cfg, backoff_s=0.05)
        alerter.halt("drawdown")
        stats = alerter.close()["telegram"]
        assert len(api.requests) == 1 and stats.failed == 1  # permanent: not retried
        assert stats.last_error == "HTTP 400: Bad Request: chat not found"
    setup_logging(None)
    logged = log_file.read_text()
    assert '"error": "HTTP 502: Bad Gateway"' in logged and TOKEN not in logged


def test_a_blocked_channel_never_blocks_the_caller():
    gate = threading.Event()
    channel = Recording(gate)
    alerter = Alerter([channel], AlertsConfig(queue_size=5))
    alerter.fill("BTC/USDT", "buy", 1.0, 1.0)
    assert channel.entered.wait(5)  # the sender thread is stuck in send()

    def trade() -> None:
        for i in range(2, 22):
            alerter.fill("BTC/USDT", "buy", 1.0, float(i))

    caller = threading.Thread(target=trade)
    caller.start()
    caller.join(5)
    assert not caller.is_alive(), "notify blocked on a stuck channel"
    assert alerter.stats()["recording"].dropped == 15  # 5 queued, the rest counted
    gate.set()
    alerter.close(timeout_s=5)
    fill = "FILL BTC/USDT buy 1 @ {}".format
    assert channel.texts == (
        [f"[botclave] {fill(1)}",
         f"[botclave] 16 more events (at most 10 per 60 s): 1 fill; 15 dropped (queue full)\n"
         f"{fill(2)}"] + [f"[botclave] {fill(i)}" for i in range(3, 7)])


def test_a_channel_that_raises_is_counted_and_masked():
    class Broken(Recording):
        name = "broken"

        def send(self, text: str) -> SendResult:
            raise RuntimeError(f"boom at https://api.telegram.org/bot{TOKEN}/sendMessage")

    alerter = Alerter([Broken()], AlertsConfig(max_attempts=2), backoff_s=0.01)
    alerter.error("x", "y")
    stats = alerter.close()["broken"]
    assert stats.failed == 1 and TOKEN not in (stats.last_error or "")
    assert stats.last_error == "RuntimeError: boom at https://api.telegram.org/bot***/sendMessage"


def test_disconnects_longer_than_n_seconds_only():
    now = [T0]
    channel = Recording()
    cfg = AlertsConfig(disconnect_after_s=30, events=["disconnect", "fill"])
    alerter = Alerter([channel], cfg, session="s1", clock=lambda: now[0], tick_s=0.02)
    alerter.disconnected(reason="ws closed 1006")
    now[0] = T0 + 25
    alerter.tick()
    alerter.connected()  # 25 s <= 30 s: nothing
    alerter.disconnected(ts=T0 + 100, reason="ping timeout")
    now[0] = T0 + 131
    alerter.tick()  # the ticker thread may have been first: either way one message
    alerter.tick()
    alerter.connected(ts=T0 + 190)
    alerter.halt("not in events")  # filtered by the config
    alerter.close()
    assert channel.texts == [
        "[botclave s1] DISCONNECTED market data for 31 s since 2024-08-09 00:01:40 UTC: "
        "ping timeout",
        "[botclave s1] RECONNECTED market data after 1 min 30 s down"]


def test_channels_from_config_and_environment(cert, tmp_path):
    with FakeBotApi(*cert, token=TOKEN) as api, SmtpSink() as sink:
        cfg = AlertsConfig(telegram=TelegramAlerts(api_url=api.url, ca_file=cert[0]),
                           email=EmailAlerts(sender="bot@example.com"))
        env = {"BOTCLAVE_TELEGRAM_TOKEN": TOKEN, "BOTCLAVE_TELEGRAM_CHAT_ID": CHAT,
               "BOTCLAVE_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
               "BOTCLAVE_ALERT_EMAIL": "ops@example.com, me@example.com"}
        alerter = alerter_from_config(cfg, session="s1", environ=env)
        assert alerter.channels == ["telegram", "email"]
        alerter.fill("BTC/USDT", "sell", 0.002, 61000.5, client_id="bc-3f2a1c-0000000001-ex")
        alerter.close()
        half = {k: v for k, v in env.items() if k != "BOTCLAVE_ALERT_EMAIL"}
        log_file = tmp_path / "botclave.log"
        setup_logging(log_file)
        alerter_from_config(cfg, environ=half).close()  # a half-set channel is named in the log
        setup_logging(None)
        [line] = log_file.read_text().splitlines()
        assert '"channel": "email", "problem": "not configured: set BOTCLAVE_ALERT_EMAIL"' in line
        setups = {s.name: s for s in setup_channels(cfg, half)}
        assert setups["email"].channel is None
        assert setups["email"].problem == "not configured: set BOTCLAVE_ALERT_EMAIL"
        setups["telegram"].channel.close()
        off = setup_channels(cfg.model_copy(update={"enabled": False}), env)
        assert [s.problem for s in off] == ["disabled in the config"] * 2
    text = "[botclave s1] FILL BTC/USDT sell 0.002 @ 61000.5 (bc-3f2a1c-0000000001-ex)"
    assert api.texts() == [text]
    [(_, rcpt, msg)] = sink.messages
    assert rcpt == ["ops@example.com", "me@example.com"] and msg["Subject"] == text


def test_error_log_records_become_alerts():
    channel = Recording()
    alerter = Alerter([channel], session="s1")
    logger = logging.getLogger("botclave")
    handler = alerter.log_handler()
    logger.addHandler(handler)
    try:
        logging.getLogger("botclave.exchange.orders").error(
            "order rejected", extra={"error": f"binance -2010 with token {TOKEN}"})
        logging.getLogger("botclave.exchange.orders").warning("a warning is not an alert")
        logging.getLogger("botclave.live.alerts.alerter").error("alert not sent")  # no loop
    finally:
        logger.removeHandler(handler)
    alerter.close()
    assert channel.texts == [
        "[botclave s1] ERROR exchange.orders: order rejected: binance -2010 with token ***"]
