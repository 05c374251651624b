"""Channels from the ``alerts:`` config and the environment, and a by-hand check of them.

A channel is configured when it is enabled in the config and its environment variables are all
set: Telegram needs BOTCLAVE_TELEGRAM_TOKEN and BOTCLAVE_TELEGRAM_CHAT_ID; e-mail needs
BOTCLAVE_SMTP_URL and BOTCLAVE_ALERT_EMAIL. Secrets are never read from files.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

from botclave_cli.config import AlertsConfig
from botclave_cli.errors import UsageError
from botclave_cli.live.alerts.alerter import Alerter
from botclave_cli.live.alerts.channels import Channel, EmailChannel, TelegramChannel
from botclave_cli.live.alerts.events import utc
from botclave_cli.logs import get_logger

log = get_logger(__name__)

ENV_VARS = {
    "telegram": ("BOTCLAVE_TELEGRAM_TOKEN", "BOTCLAVE_TELEGRAM_CHAT_ID"),
    "email": ("BOTCLAVE_SMTP_URL", "BOTCLAVE_ALERT_EMAIL"),
}


@dataclass(frozen=True)
class ChannelSetup:
    """One channel's state: ``channel`` when configured, else why not (``problem``)."""

    name: str
    channel: Channel | None
    problem: str | None = None
    enabled: bool = True


def setup_channels(config: AlertsConfig,
                   environ: Mapping[str, str] | None = None) -> list[ChannelSetup]:
    """Both channels, built where the config enables them and the environment is complete."""
    env = os.environ if environ is None else environ
    out = []
    for name in ("telegram", "email"):
        if not config.enabled or not getattr(config, name).enabled:
            out.append(ChannelSetup(name, None, "disabled in the config", enabled=False))
            continue
        missing = [v for v in ENV_VARS[name] if not env.get(v, "").strip()]
        if missing:
            out.append(ChannelSetup(name, None, f"not configured: set {' and '.join(missing)}"))
            continue
        try:
            out.append(ChannelSetup(name, _build(name, config, env)))
        except UsageError as exc:
            out.append(ChannelSetup(name, None, exc.message))
    return out


def _build(name: str, config: AlertsConfig, env: Mapping[str, str]) -> Channel:
    if name == "telegram":
        tg = config.telegram
        return TelegramChannel(env["BOTCLAVE_TELEGRAM_TOKEN"].strip(),
                               env["BOTCLAVE_TELEGRAM_CHAT_ID"].strip(), api_url=tg.api_url,
                               ca_file=tg.ca_file, timeout_s=tg.timeout_s)
    em = config.email
    recipients = [r.strip() for r in env["BOTCLAVE_ALERT_EMAIL"].split(",") if r.strip()]
    return EmailChannel(env["BOTCLAVE_SMTP_URL"], recipients, sender=em.sender,
                        starttls=em.starttls, ca_file=em.ca_file, timeout_s=em.timeout_s)


def alerter_from_config(config: AlertsConfig, *, session: str | None = None,
                        environ: Mapping[str, str] | None = None) -> Alerter:
    """The session's alerter over every configured channel (none configured: it does
    nothing). Half-configured channels are left out; ``setup_channels`` says why."""
    env = os.environ if environ is None else environ
    setups = setup_channels(config, env)
    for s in setups:
        half = any(env.get(v, "").strip() for v in ENV_VARS[s.name])
        if s.channel is None and s.enabled and half:
            log.warning("alert channel left out", extra={"channel": s.name,
                                                        "problem": s.problem})
    channels = [s.channel for s in setups if s.channel is not None]
    return Alerter(channels, config, session=session)


@dataclass(frozen=True)
class CheckResult:
    channel: str
    configured: bool
    ok: bool
    detail: str


def check_channels(config: AlertsConfig, environ: Mapping[str, str] | None = None,
                   text: str | None = None) -> list[CheckResult]:
    """Send one test message to each configured channel, once, synchronously (no retry: the
    answer is what a person setting it up needs to see)."""
    body = text or (f"[botclave] alert test from {socket.gethostname()} at "
                    f"{utc(time.time())}: this channel works")
    results = []
    for setup in setup_channels(config, environ):
        if setup.channel is None:
            results.append(CheckResult(setup.name, False, False, setup.problem or ""))
            continue
        try:
            sent = setup.channel.send(body)
        finally:
            setup.channel.close()
        detail = sent.detail
        if sent.retry_after is not None:
            detail += f" (retry after {sent.retry_after:g} s)"
        results.append(CheckResult(setup.name, True, sent.ok, detail))
    return results
