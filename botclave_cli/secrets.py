"""Credentials come from the environment only, and never leave the process in clear.

``mask`` is applied to every log record, error message and report string that could carry a
secret: it removes the values of credential environment variables and anything that looks like a
key, secret or signature in a query string, header or mapping, the password of a URL
(``smtp://user:***@host``) and a Telegram bot token (also inside a Bot API URL).
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote

CREDENTIAL_NAME = re.compile(r"(API_?KEY|SECRET|PASSWORD|PASSPHRASE|TOKEN|PRIVATE_?KEY)$", re.I)
MASK = "***"

# key=value / "key": "value" / key: value, for names that carry secrets
_INLINE_SECRET = re.compile(
    r"""(?ix)
    (?P<name>["']?(?:api[_-]?key|apikey|secret|password|passphrase|signature|token|
                     x-mbx-apikey|private[_-]?key)["']?\s*[:=]\s*["']?)
    (?P<value>[^"'&\s,}]+)
    """
)


# a password in a URL's user part: smtp://user:pass@host -> smtp://user:***@host
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<value>[^@/\s]+)@", re.I
)
# a Telegram bot token (<bot id>:<35 characters>), wherever it appears (e.g. a Bot API URL)
_BOT_TOKEN = re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}")


def credential_env_vars(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables whose names mark them as credentials (name -> value)."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if CREDENTIAL_NAME.search(k) and v}


def mask(text: str, environ: dict[str, str] | None = None) -> str:
    """Return ``text`` with every credential value and inline secret replaced by ``***``."""
    values = list(credential_env_vars(environ).values()) + _url_passwords(environ)
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, MASK)
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", text)
    text = _BOT_TOKEN.sub(MASK, text)
    return _INLINE_SECRET.sub(lambda m: m.group("name") + MASK, text)


def _url_passwords(environ: dict[str, str] | None = None) -> list[str]:
    """Passwords inside URL-valued environment variables (BOTCLAVE_SMTP_URL), as written and
    percent-decoded, so that they are masked wherever they appear alone."""
    env = os.environ if environ is None else environ
    found: list[str] = []
    for value in env.values():
        if "://" not in value or "@" not in value:
            continue
        match = _URL_PASSWORD.search(value)
        if match:
            found.extend({match.group("value"), unquote(match.group("value"))})
    return found


def env_credentials(exchange: str, environ: dict[str, str] | None = None) -> tuple[str, str] | None:
    """API key and secret for ``exchange`` from ``BOTCLAVE_<EXCHANGE>_API_KEY`` / ``..._SECRET``.

    Returns None when either is missing; callers that need them raise a UsageError (exit 2).
    """
    env = os.environ if environ is None else environ
    prefix = f"BOTCLAVE_{exchange.upper()}_"
    key, secret = env.get(prefix + "API_KEY"), env.get(prefix + "SECRET")
    if key and secret:
        return key, secret
    return None
