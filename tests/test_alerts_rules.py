"""The alerts' pure rules, with hand-worked values: texts, the sliding-window limit, the summary
of coalesced events, the disconnect threshold, masking and the ``alerts:`` config."""

from __future__ import annotations

import pytest

from botclave_cli.config import AlertsConfig, ExchangeConfig, validate_data
from botclave_cli.errors import ConfigError
from botclave_cli.live.alerts.events import (
    AlertEvent,
    DisconnectWatch,
    error_text,
    fill_text,
    halt_text,
    num,
    seconds,
)
from botclave_cli.live.alerts.limiter import SUMMARY_LINES, Coalescer, RateLimiter
from botclave_cli.secrets import mask

T0 = 1_723_161_600.0  # 2024-08-09 00:00:00 UTC


def test_texts_are_short_plain_lines():
    assert num(0.1 + 0.2) == "0.3" and num(60000.0) == "60000" and num(0.00012) == "0.00012"
    assert fill_text("BTC/USDT", "buy", 0.001, 60000.0, fee=0.06,
                     client_id="bc-3f2a1c-0000000007-en") == (
        "FILL BTC/USDT buy 0.001 @ 60000 fee 0.06 (bc-3f2a1c-0000000007-en)")
    assert fill_text("ETH/USDT", "sell", 0.5, 2500.25, pnl=-1.5) == (
        "FILL ETH/USDT sell 0.5 @ 2500.25 pnl -1.5")
    assert halt_text("daily loss", "-512.3 <= -500") == "HALT daily loss: -512.3 <= -500"
    assert halt_text("kill switch") == "HALT kill switch"
    assert error_text("order manager", "binance 503\n  Service Unavailable") == (
        "ERROR order manager: binance 503 Service Unavailable")
    assert [seconds(s) for s in (42.4, 185, 7265)] == ["42 s", "3 min 5 s", "2 h 1 min"]


def test_sliding_window_allows_k_per_window():
    limiter = RateLimiter(3, 60.0)
    for t in (0.0, 10.0, 20.0):
        assert limiter.allow(t)
        limiter.record(t)
    assert not limiter.allow(30.0)
    assert limiter.next_free(30.0) == 60.0  # the send at 0 leaves the window at 60
    assert not limiter.allow(59.999) and limiter.allow(60.0)
    limiter.record(60.0)
    assert limiter.next_free(61.0) == 70.0 and limiter.next_free(75.0) == 75.0
    with pytest.raises(ValueError):
        RateLimiter(0, 60.0)


def test_summary_lists_halts_and_errors_first():
    c = Coalescer()
    assert not c
    c.hold(AlertEvent("fill", "FILL a", T0 + 1))
    c.hold(AlertEvent("error", "ERROR b", T0 + 2))
    c.hold(AlertEvent("fill", "FILL c", T0 + 3))
    c.hold(AlertEvent("halt", "HALT d", T0 + 4))
    assert c
    assert c.take("at most 3 per 60 s") == (
        "4 more events (at most 3 per 60 s): 1 halt, 1 error, 2 fill\n"
        "HALT d\nERROR b\nFILL a\nFILL c")
    assert not c
    c.hold(AlertEvent("fill", "FILL alone", T0))
    assert c.take("x") == "FILL alone"  # one held event goes out as itself
    c.hold(AlertEvent("fill", "FILL e", T0))
    c.dropped = 5
    assert c.take() == "6 more events: 1 fill; 5 dropped (queue full)\nFILL e"
    c.dropped = 2
    assert c.take() == "2 more events: 2 dropped (queue full)"


def test_summary_is_capped():
    c = Coalescer()
    for i in range(SUMMARY_LINES + 7):
        c.hold(AlertEvent("fill", f"FILL {i}", T0 + i))
    lines = c.take().splitlines()
    assert lines[0] == f"{SUMMARY_LINES + 7} more events: {SUMMARY_LINES + 7} fill"
    assert lines[1] == "FILL 0" and lines[SUMMARY_LINES] == f"FILL {SUMMARY_LINES - 1}"
    assert lines[-1] == "... and 7 more" and len(lines) == SUMMARY_LINES + 2


def test_disconnect_is_alerted_only_past_the_threshold():
    w = DisconnectWatch(30.0)
    w.disconnected(T0, "ws closed 1006")
    assert w.check(T0 + 30.0) == []  # exactly N is not longer than N
    assert w.connected(T0 + 29.0) is None  # a short outage says nothing, ever
    assert w.check(T0 + 100.0) == [] and w.down_streams() == []

    w.disconnected(T0 + 200.0, "ws closed 1006")
    w.disconnected(T0 + 210.0, "again")  # still down: the first time stands
    assert w.check(T0 + 229.0) == []
    [event] = w.check(T0 + 231.0)
    assert event == AlertEvent("disconnect", "DISCONNECTED market data for 31 s since "
                               "2024-08-09 00:03:20 UTC: ws closed 1006", T0 + 231.0)
    assert w.check(T0 + 260.0) == []  # once per outage
    back = w.connected(T0 + 295.0)
    assert back == AlertEvent("disconnect", "RECONNECTED market data after 1 min 35 s down",
                              T0 + 295.0)

    # nobody checked while it was down: the reconnect alone says it, with the reason
    w.disconnected(T0 + 400.0, "timeout", stream="user data")
    assert w.connected(T0 + 445.0, stream="user data").text == (
        "RECONNECTED user data after 45 s down (timeout)")
    assert w.connected(T0 + 500.0) is None  # not down: nothing


def test_zero_threshold_alerts_every_disconnect():
    w = DisconnectWatch(0.0)
    w.disconnected(T0)
    assert w.check(T0) == []
    assert w.connected(T0 + 0.4).text == "RECONNECTED market data after 0 s down"


def test_mask_hides_url_passwords_and_bot_tokens():
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    text = (f"POST https://api.telegram.org/bot{token}/sendMessage failed; "
            "smtp://alerts%40example.com:p%40ss-w0rd@mail.example.com:587 refused")
    masked = mask(text, {})
    assert token not in masked and "AAHdqTcvCH1" not in masked and "p%40ss-w0rd" not in masked
    assert "smtp://alerts%40example.com:***@mail.example.com:587" in masked
    assert "https://api.telegram.org/bot***/sendMessage" in masked
    # a password from a URL in the environment is masked where it appears alone, decoded too
    env = {"BOTCLAVE_SMTP_URL": "smtps://bot:p%40ss-w0rd@mail.example.com"}
    assert mask("login p@ss-w0rd refused; p%40ss-w0rd", env) == "login *** refused; ***"
    assert mask("ts 12:00:01 price 60000.5 bc-3f2a1c-0000000007-en", {}) == (
        "ts 12:00:01 price 60000.5 bc-3f2a1c-0000000007-en")


def test_alerts_config_section():
    cfg = validate_data({"alerts": {"disconnect_after_s": 10, "max_per_window": 5,
                                    "events": ["fill", "halt"],
                                    "telegram": {"enabled": False}}},
                        ExchangeConfig, "exchange_config.yaml")
    assert cfg.alerts.disconnect_after_s == 10 and cfg.alerts.max_per_window == 5
    assert cfg.alerts.events == ["fill", "halt"] and not cfg.alerts.telegram.enabled
    assert AlertsConfig().telegram.api_url == "https://api.telegram.org"
    with pytest.raises(ConfigError, match=r"exchange_config.yaml: alerts.max_per_window: .*"
                                          r"greater than or equal to 1 \(got 0\)"):
        validate_data({"alerts": {"max_per_window": 0}}, ExchangeConfig, "exchange_config.yaml")
    with pytest.raises(ConfigError, match=r"alerts.events.0: .*'fill'"):
        validate_data({"alerts": {"events": ["fills"]}}, ExchangeConfig, "x.yaml")
    with pytest.raises(ConfigError, match=r"alerts.telegram.token: credentials are not read "
                                          "from files"):
        validate_data({"alerts": {"telegram": {"token": "123:abc"}}}, ExchangeConfig, "x.yaml")
