"""Alerts of a trading session (issue 17 point 6): fills, halts, disconnects longer than N
seconds and errors, to Telegram (Bot API over HTTPS) and e-mail (SMTP), rate-limited per
channel, sent by background threads so that the trading thread never waits.

    alerter = alerter_from_config(exchange_config.alerts, session="s1")
    alerter.fill("BTC/USDT", "buy", 0.001, 60000.0, fee=0.06, client_id=cid)
    alerter.disconnected(ts=time.time(), reason="ws closed 1006")
    alerter.connected(ts=time.time())
    logging.getLogger("botclave").addHandler(alerter.log_handler())  # error records alert
    alerter.close()  # flushes what is queued and held
"""

from botclave_cli.live.alerts.alerter import Alerter, AlertLogHandler, ChannelStats
from botclave_cli.live.alerts.channels import (
    EmailChannel,
    SendResult,
    TelegramChannel,
    parse_smtp_url,
)
from botclave_cli.live.alerts.configure import (
    CheckResult,
    alerter_from_config,
    check_channels,
    setup_channels,
)
from botclave_cli.live.alerts.events import AlertEvent, DisconnectWatch

__all__ = [
    "AlertEvent", "AlertLogHandler", "Alerter", "ChannelStats", "CheckResult",
    "DisconnectWatch", "EmailChannel", "SendResult", "TelegramChannel", "alerter_from_config",
    "check_channels", "parse_smtp_url", "setup_channels",
]
