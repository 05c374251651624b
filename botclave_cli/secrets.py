"""Credentials come from the environment only, and never leave the process in clear.

``mask`` is applied to every log record, error message and report string that could carry a
secret: it removes the values of credential environment variables and anything that looks like a
key, secret or signature in a query string, header or mapping.
"""

from __future__ import annotations

import os
import re

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


def credential_env_vars(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables whose names mark them as credentials (name -> value)."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if CREDENTIAL_NAME.search(k) and v}


def mask(text: str, environ: dict[str, str] | None = None) -> str:
    """Return ``text`` with every credential value and inline secret replaced by ``***``."""
    for value in sorted(credential_env_vars(environ).values(), key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, MASK)
    return _INLINE_SECRET.sub(lambda m: m.group("name") + MASK, text)


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
