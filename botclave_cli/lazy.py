"""Package faces that import on first use (PEP 562: a module-level ``__getattr__``).

``from botclave_cli.validate import StrategyValidator`` should work, but importing a light module
of the same package (``validate.executor`` when the CLI parses ``--jobs``) must not load the
validator's numpy and scipy, nor ``engine.book.kernel`` load the footprint and depth rooms. So a
package's ``__init__`` names its public classes here and each is imported when first asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_names(package: str, names: dict[str, str]) -> tuple[Callable[[str], object],
                                                            Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``names`` maps a name to its module."""

    def getattr_(name: str) -> object:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def dir_() -> list[str]:
        return sorted(names)

    return getattr_, dir_
