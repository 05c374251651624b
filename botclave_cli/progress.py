"""Progress reporting from library code, without knowing about terminals.

Long operations accept ``progress: Progress | None``. The library calls ``progress.start(total,
description)`` once per phase, ``progress.advance(n)`` as work is done; the CLI passes an
implementation that draws a rich bar on a terminal, and nothing otherwise.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, total: float | None, description: str) -> None: ...

    def advance(self, amount: float = 1) -> None: ...


class NullProgress:
    """Progress sink that ignores everything (library default, cron, tests)."""

    def start(self, total: float | None, description: str) -> None:
        return None

    def advance(self, amount: float = 1) -> None:
        return None


def or_null(progress: Progress | None) -> Progress:
    return progress if progress is not None else NullProgress()
