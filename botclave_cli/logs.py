"""Structured logging: JSON lines to a log file, secrets masked in every record.

The log file defaults to ``<data dir>/botclave.log``; ``-v`` logs INFO, ``-vv`` DEBUG (WARNING
otherwise). Nothing is logged to the terminal: the CLI's output object owns stdout/stderr.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from botclave_cli.secrets import mask

LOGGER_NAME = "botclave"


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC ISO), level, logger, msg, and any ``extra`` fields."""

    _STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD:
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return mask(json.dumps(payload, default=str))


def setup_logging(log_file: Path | None, verbosity: int = 0) -> logging.Logger:
    """Configure the ``botclave`` logger to append JSON lines to ``log_file`` (None: no file)."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel({0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG))
    logger.propagate = False
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(JsonLinesFormatter())
        logger.addHandler(handler)
    else:
        logger.addHandler(logging.NullHandler())
    return logger


def get_logger(name: str) -> logging.Logger:
    """Child logger of ``botclave`` for a module (``get_logger(__name__)``)."""
    short = name.removeprefix("botclave_cli.")
    return logging.getLogger(f"{LOGGER_NAME}.{short}")
