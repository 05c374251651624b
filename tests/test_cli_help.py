"""Every command and subcommand has --help with an "Example:" line and is mentioned in README.md.

The command tree is walked from the Typer app itself, so a new command is checked without
editing this file. Failures list every command that is missing something.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from botclave_cli.cli.app import app

README = Path(__file__).resolve().parents[1] / "README.md"


def command_paths() -> list[tuple[str, ...]]:
    """Every command path below the root: groups and their subcommands (hidden ones skipped)."""
    root = typer.main.get_command(app)
    found: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            if getattr(sub, "hidden", False):
                continue
            found.append((*path, name))
            walk(sub, (*path, name))

    walk(root, ())
    return found


def help_text(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, f"botclave {' '.join(path)} --help: {result.output}"
    return result.output


def test_the_tree_is_walked():
    paths = command_paths()
    assert ("report",) in paths and ("datasets", "ls") in paths and ("config", "check") in paths


def test_every_command_has_help_with_an_example():
    missing = [" ".join(p) for p in command_paths() if "Example:" not in help_text(p)]
    assert not missing, f"--help without an 'Example:' line: botclave {', botclave '.join(missing)}"


def readme_missing() -> list[str]:
    text = " ".join(README.read_text(encoding="utf-8").split()) if README.exists() else ""
    return [" ".join(p) for p in command_paths() if f"botclave {' '.join(p)}" not in text]


def test_every_command_is_mentioned_in_the_readme():
    missing = readme_missing()
    if missing and not README.exists():
        pytest.fail("README.md is missing")
    assert not missing, f"not mentioned in README.md: botclave {', botclave '.join(missing)}"
