"""``botclave config check|show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from botclave_cli.cli.common import JsonOpt, QuietOpt, run
from botclave_cli.config import CONFIG_DIR, CONFIG_MODELS, load_exchange_config, load_model
from botclave_cli.errors import ConfigError
from botclave_cli.secrets import credential_env_vars, env_credentials

config_app = typer.Typer(
    help=(
        "Validate and show configuration files.\n\n"
        "Example: botclave config check --dir configs"
    ),
    no_args_is_help=True,
)
DirOpt = Annotated[Path, typer.Option("--dir", help="Folder of config files.")]


@config_app.command("check")
def check(directory: DirOpt = CONFIG_DIR, json_: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Validate every known file in configs/ (one line per problem, exit 2 on any).

    Example: botclave config check --dir configs
    """
    with run(json_, quiet) as out:
        results, problems = [], []
        for name, model in CONFIG_MODELS.items():
            path = directory / name
            if not path.exists():
                results.append({"file": str(path), "status": "absent (defaults apply)"})
                continue
            try:
                load_model(path, model)
                results.append({"file": str(path), "status": "ok"})
            except ConfigError as exc:
                results.append({"file": str(path), "status": "invalid", "error": exc.message})
                problems.append(exc.message)
        if problems:
            if not json_:
                for message in problems[:-1]:
                    out.error(message)
            raise ConfigError(problems[-1])
        out.emit({"files": results}, f"{len(results)} config file(s) checked: ok", rows=results)


@config_app.command("show")
def show(
    config: Annotated[Path | None, typer.Option("--config", help="exchange_config.yaml")] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Print the effective exchange config (defaults filled in, secrets masked).

    Example: botclave config show --config configs/exchange_config.yaml --json
    """
    with run(json_, quiet) as out:
        cfg = load_exchange_config(config)
        data = cfg.model_dump(mode="json")
        creds = env_credentials(cfg.exchange)
        data["credentials"] = "set in environment (masked)" if creds else "not set"
        data["credential_env_vars"] = {k: "***" for k in credential_env_vars()}
        if out.json_mode or not out.is_tty:
            out.emit(data, yaml.safe_dump(data, sort_keys=False).rstrip())
        else:
            out.stdout.print(yaml.safe_dump(data, sort_keys=False).rstrip(), markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
