"""Library exceptions and the exit code each one maps to (one table, see DECISIONS.md).

Library code raises these with a one-line message that names the file, field or option and what
was expected; the CLI prints the message and exits with ``exit_code``. Nothing else in the
library decides exit codes.
"""

from __future__ import annotations


class BotclaveError(Exception):
    """An operation failed (exit code 1)."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))  # always one line

    @property
    def message(self) -> str:
        return str(self)


class UsageError(BotclaveError):
    """Bad option, bad bar spec, bad config value or missing credential (exit code 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration file is missing, unreadable or invalid (exit code 2)."""


class DataError(BotclaveError):
    """Gap, stale or missing data, no aggressor side, or bad rows (exit code 3)."""

    exit_code = 3


class ExchangeUnreachable(BotclaveError):
    """The exchange could not be reached after retries (exit code 4)."""

    exit_code = 4


class ValidationFailed(BotclaveError):
    """A validation verdict of ``fail`` (exit code 1)."""

    exit_code = 1


class ClusterUnreachable(BotclaveError):
    """The cluster's scheduler (``--executor dask=ADDRESS``) could not be reached (exit code 4,
    the code of an unreachable remote end)."""

    exit_code = 4
