"""Building the CLI (``botclave --help``, a bad option) must not import the heavy library.

Command modules import polars, numba, ccxt... inside their command functions; the defaults
``--help`` shows come from ``botclave_cli.cli.defaults``. A fresh interpreter builds the whole
command tree, renders help and rejects a bad option, then reports which packages it imported.
No timing is asserted here (speed belongs to benchmarks): only what gets imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from botclave_cli.cli import defaults
from botclave_cli.cli.app import app

PROJECT_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("ccxt", "numba", "polars", "matplotlib", "scipy", "numpy", "pyarrow")

PROBE = """
import json, sys
import typer
from typer.testing import CliRunner
import botclave_cli.cli.app as cli

root = typer.main.get_command(cli.app)
seen = []
def walk(command, path):
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        seen.append(" ".join((*path, name)))
        walk(sub, (*path, name))
walk(root, ())
runner = CliRunner()
codes = {" ".join(args): runner.invoke(cli.app, args).exit_code for args in (
    ["--help"], ["fetch", "trades", "--help"], ["footprint", "--help"], ["depth", "--help"],
    ["footprint", "--no-such-option"], ["validate", "all", "--jobs", "many"])}
print(json.dumps({"commands": seen, "codes": codes,
                  "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def probe() -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_building_the_app_and_its_help_imports_no_heavy_package():
    found = probe()
    # the probe really built the tree and ran the commands it claims to have run
    assert {"synth", "fetch trades", "footprint", "depth replay", "validate",
            "config check"} <= set(found["commands"])
    assert found["codes"] == {"--help": 0, "fetch trades --help": 0, "footprint --help": 0,
                              "depth --help": 0, "footprint --no-such-option": 2,
                              "validate all --jobs many": 2}
    imported = [name for name in HEAVY if name in found["modules"]]
    assert imported == [], f"building the CLI imported {', '.join(imported)}"


def test_cli_defaults_equal_the_library_values():
    from botclave_cli.config import CONFIG_DIR
    from botclave_cli.data.importers.badrows import DEFAULT_MAX_DISORDER_MS
    from botclave_cli.data.store import DATA_DIR_ENV
    from botclave_cli.data.synth import SynthConfig
    from botclave_cli.exchange.writer import DEFAULT_CHUNK_ROWS
    from botclave_cli.validate.config import VALIDATION_CONFIG

    assert defaults.DATA_DIR_ENV == DATA_DIR_ENV
    assert defaults.CONFIG_DIR == CONFIG_DIR
    assert defaults.VALIDATION_CONFIG == VALIDATION_CONFIG
    assert defaults.DEFAULT_CHUNK_ROWS == DEFAULT_CHUNK_ROWS
    assert defaults.DEFAULT_MAX_DISORDER_MS == DEFAULT_MAX_DISORDER_MS
    assert defaults.SYNTH_TICK_SIZE == SynthConfig.model_fields["tick_size"].default


def test_default_data_dir_equals_the_store_one(monkeypatch, tmp_path: Path):
    from botclave_cli.data.store import default_data_dir

    assert defaults.default_data_dir() == default_data_dir()  # the conftest's tmp dir
    monkeypatch.delenv(defaults.DATA_DIR_ENV)
    assert defaults.default_data_dir() == default_data_dir() == Path("datasets")
    monkeypatch.setenv(defaults.DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    assert defaults.default_data_dir() == default_data_dir() == tmp_path / "elsewhere"


def test_config_check_still_knows_the_validation_and_pipeline_files(tmp_path: Path):
    """These two used to be registered when the CLI was built; now config check imports them."""
    res = CliRunner().invoke(app, ["config", "check", "--dir", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    files = [(Path(f["file"]).name, f["status"]) for f in json.loads(res.stdout)["files"]]
    absent = "absent (defaults apply)"
    assert files == [("exchange_config.yaml", absent), ("strategy_params.yaml", absent),
                     ("validation.yaml", absent), ("pipeline.yaml", absent)]
