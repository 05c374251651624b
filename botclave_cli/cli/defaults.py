"""Library defaults that ``--help`` shows, copied here so building the CLI stays light.

Typer needs every option's default when the command tree is built, i.e. for ``botclave --help``
and for the error on a bad option. Importing them from the library modules that own them would
import polars, ccxt, numba... (about two seconds) before the first line of help. So the command
modules read them from here, import nothing else from the library at module level, and import
the library inside the command functions. ``tests/test_cli_startup.py`` checks that every value
below equals the one in the module named beside it, and that building the app imports none of
the heavy packages.
"""

from __future__ import annotations

import os
from pathlib import Path

#: environment variable naming the store root (``botclave_cli.data.store.DATA_DIR_ENV``)
DATA_DIR_ENV = "BOTCLAVE_DATA_DIR"
#: folder of the YAML config files (``botclave_cli.config.CONFIG_DIR``)
CONFIG_DIR = Path("configs")
#: validation config file name (``botclave_cli.validate.config.VALIDATION_CONFIG``)
VALIDATION_CONFIG = "validation.yaml"
#: rows per store write of ``fetch`` (``botclave_cli.exchange.writer.DEFAULT_CHUNK_ROWS``)
DEFAULT_CHUNK_ROWS = 50_000
#: ms a trade may lie behind an earlier one on import
#: (``botclave_cli.data.importers.badrows.DEFAULT_MAX_DISORDER_MS``)
DEFAULT_MAX_DISORDER_MS = 1000
#: synthetic market price tick (``SynthConfig.model_fields["tick_size"].default``)
SYNTH_TICK_SIZE = 1.0


def default_data_dir() -> Path:
    """The store root when no --data-dir is given (``botclave_cli.data.store.default_data_dir``);
    the root callback needs it for the log file before any command runs."""
    return Path(os.environ.get(DATA_DIR_ENV, "datasets"))
