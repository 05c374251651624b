"""Where alerts go: Telegram (Bot API ``sendMessage`` over HTTPS, httpx) and e-mail (SMTP,
smtplib). Each channel sends one text synchronously and says how it went (``SendResult``);
retrying, pacing and threads are the alerter's.

Secrets: the bot token sits in the Bot API URL path and the SMTP password in its URL, so every
detail a channel returns is scrubbed of both (and of everything ``secrets.mask`` knows), and
httpx's own request log line (which prints the URL) is scrubbed by a filter on its logger.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, unquote, urlsplit

import httpx

from botclave_cli.errors import UsageError
from botclave_cli.secrets import mask

TELEGRAM_MAX_TEXT = 4096
SUBJECT_MAX = 120
#: subjects stay on one line (RFC 5322 allows 998 characters; 78 is a SHOULD)
_MAIL_POLICY = policy.default.clone(max_line_length=998)


@dataclass(frozen=True)
class SendResult:
    """How one send went. ``retry_after``: seconds the server asked us to wait (Telegram 429);
    ``permanent``: retrying the same message cannot help (bad token, unknown chat, refused
    recipient)."""

    ok: bool
    detail: str = ""
    retry_after: float | None = None
    permanent: bool = False


class Channel(Protocol):
    name: str

    def send(self, text: str) -> SendResult: ...

    def close(self) -> None: ...


class _Scrub(logging.Filter):
    """Removes secrets from records of a third-party logger (httpx logs each request's URL)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = scrub(text, self.secrets)
        if clean != text:
            record.msg, record.args = clean, ()
        return True


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` without any of ``secrets`` (as written and URL-quoted) and masked."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, "***")
    return mask(text)


def _ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError):
        raise UsageError(f"alerts ca_file {ca_file}: expected a readable PEM certificate "
                         "bundle") from None


class TelegramChannel:
    """``POST <api_url>/bot<token>/sendMessage`` with ``{"chat_id", "text"}`` (plain text)."""

    name = "telegram"

    def __init__(self, token: str, chat_id: str, *, api_url: str = "https://api.telegram.org",
                 ca_file: Path | None = None, timeout_s: float = 10.0) -> None:
        if not token or any(c.isspace() or c in "/?#" for c in token):
            raise UsageError("BOTCLAVE_TELEGRAM_TOKEN: expected a bot token such as "
                             "123456:ABC-DEF... (from @BotFather)")
        self.chat_id = chat_id
        self._secrets = [token]
        self._url = f"{api_url.rstrip('/')}/bot{token}/sendMessage"
        context = _ssl_context(ca_file)
        self._filter = _Scrub(self._secrets)
        logging.getLogger("httpx").addFilter(self._filter)
        self._client = httpx.Client(timeout=timeout_s, verify=context)

    def send(self, text: str) -> SendResult:
        body = {"chat_id": self.chat_id, "text": text[:TELEGRAM_MAX_TEXT],
                "disable_web_page_preview": True}
        try:
            response = self._client.post(self._url, json=body)
        except httpx.HTTPError as exc:
            return SendResult(False, self._clean(f"{type(exc).__name__}: {exc}"))
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        description = self._clean(str(answer.get("description") or response.reason_phrase))
        if response.status_code == 200 and answer.get("ok"):
            return SendResult(True, f"sent to chat {self.chat_id}")
        if response.status_code == 429:
            return SendResult(False, f"HTTP 429: {description}",
                              retry_after=_retry_after(answer, response))
        return SendResult(False, f"HTTP {response.status_code}: {description}",
                          permanent=400 <= response.status_code < 500)

    def _clean(self, text: str) -> str:
        return scrub(text, self._secrets)

    def close(self) -> None:
        self._client.close()
        logging.getLogger("httpx").removeFilter(self._filter)


def _retry_after(answer: dict, response: httpx.Response) -> float:
    """Telegram puts it in ``parameters.retry_after`` (seconds); the header is the fallback."""
    params = answer.get("parameters")
    for value in ((params or {}).get("retry_after") if isinstance(params, dict) else None,
                  response.headers.get("Retry-After")):
        try:
            if value is not None:
                return max(0.0, float(value))
        except (TypeError, ValueError):
            continue
    return 1.0


@dataclass(frozen=True)
class SmtpTarget:
    """A parsed ``BOTCLAVE_SMTP_URL``: ``smtp://[user[:pass]@]host[:port]`` (port 25 by default,
    STARTTLS as configured) or ``smtps://...`` (TLS from the first byte, port 465)."""

    tls: bool
    host: str
    port: int
    user: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse the SMTP URL; the error names the variable, never its value (it holds a password)."""
    problem = UsageError("BOTCLAVE_SMTP_URL: expected smtp://[user:password@]host[:port] or "
                         "smtps://[user:password@]host[:port]")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise problem from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise problem
    tls = parts.scheme == "smtps"
    return SmtpTarget(tls, parts.hostname, port or (465 if tls else 25),
                      unquote(parts.username) if parts.username else None,
                      unquote(parts.password) if parts.password is not None else None)


class EmailChannel:
    """One plain-text mail per alert; the subject is the text's first line."""

    name = "email"

    def __init__(self, url: str, recipients: list[str], *, sender: str | None = None,
                 starttls: str = "auto", ca_file: Path | None = None,
                 timeout_s: float = 10.0) -> None:
        self.target = parse_smtp_url(url)
        if not recipients or any("@" not in r for r in recipients):
            raise UsageError("BOTCLAVE_ALERT_EMAIL: expected one or more addresses "
                             "separated by commas, e.g. ops@example.com")
        self.recipients = recipients
        user = self.target.user
        self.sender = sender or (user if user and "@" in user else
                                 f"botclave@{socket.gethostname()}")
        self.starttls = starttls
        self.timeout_s = timeout_s
        self._context = _ssl_context(ca_file)
        self._secrets = [s for s in (self.target.password, url) if s]

    def message(self, text: str) -> EmailMessage:
        msg = EmailMessage(policy=_MAIL_POLICY)
        first = text.splitlines()[0] if text else "botclave alert"
        msg["Subject"] = first if len(first) <= SUBJECT_MAX else first[: SUBJECT_MAX - 3] + "..."
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(domain=self.sender.rsplit("@", 1)[-1])
        msg.set_content(text + "\n")
        return msg

    def send(self, text: str) -> SendResult:
        t = self.target
        try:
            smtp: smtplib.SMTP
            if t.tls:
                smtp = smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout_s,
                                        context=self._context)
            else:
                smtp = smtplib.SMTP(t.host, t.port, timeout=self.timeout_s)
            with smtp:
                smtp.ehlo()
                if not t.tls and self.starttls != "never":
                    if smtp.has_extn("starttls"):
                        smtp.starttls(context=self._context)
                        smtp.ehlo()
                    elif self.starttls == "require":
                        return SendResult(False, f"{t.host}:{t.port} does not offer STARTTLS "
                                          "(alerts.email.starttls: require)", permanent=True)
                if t.user:
                    smtp.login(t.user, t.password or "")
                smtp.send_message(self.message(text))
        except smtplib.SMTPAuthenticationError as exc:
            return SendResult(False, f"SMTP login refused ({exc.smtp_code})", permanent=True)
        except smtplib.SMTPNotSupportedError:
            return SendResult(False, f"{t.host}:{t.port} does not offer AUTH (a user is set "
                              "in BOTCLAVE_SMTP_URL)", permanent=True)
        except smtplib.SMTPRecipientsRefused as exc:
            refused = ", ".join(sorted(exc.recipients))
            return SendResult(False, self._clean(f"recipient refused: {refused}"),
                              permanent=True)
        except smtplib.SMTPResponseException as exc:
            reply = exc.smtp_error.decode("utf-8", "replace") if isinstance(
                exc.smtp_error, bytes) else str(exc.smtp_error)
            return SendResult(False, self._clean(f"SMTP {exc.smtp_code}: {reply}"),
                              permanent=exc.smtp_code >= 500)
        except (OSError, smtplib.SMTPException) as exc:
            return SendResult(False, self._clean(f"{type(exc).__name__}: {exc}"))
        return SendResult(True, f"mailed {', '.join(self.recipients)} via {t.host}:{t.port}")

    def _clean(self, text: str) -> str:
        return scrub(text, self._secrets)

    def close(self) -> None:
        """Nothing held open: each alert is one SMTP connection."""
