"""``botclave config check|show``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from botclave_cli.cli.common import JsonOpt, QuietOpt, run
from botclave_cli.cli.defaults import CONFIG_DIR
from botclave_cli.errors import ConfigError
from botclave_cli.secrets import credential_env_vars, env_credentials

if TYPE_CHECKING:
    from pydantic import BaseModel

config_app = typer.Typer(
    help=(
        "Validate and show configuration files.\n\n"
        "Example: botclave config check --dir configs"
    ),
    no_args_is_help=True,
)
DirOpt = Annotated[Path, typer.Option("--dir", help="Folder of config files.")]


def config_models() -> dict[str, type[BaseModel]]:
    """Every file ``config check`` knows, in this order: the exchange config
    (``config.CONFIG_MODELS``), then the strategy, validation and pipeline configs, each from its
    own layer (imported here, not when the CLI is built)."""
    from botclave_cli.config import CONFIG_MODELS, STRATEGY_PARAMS
    from botclave_cli.pipeline import PIPELINE_CONFIG, PipelineConfig
    from botclave_cli.strategy.params import StrategyParams
    from botclave_cli.validate.config import VALIDATION_CONFIG, ValidationConfig

    models = dict(CONFIG_MODELS)
    models.setdefault(STRATEGY_PARAMS, StrategyParams)
    models.setdefault(VALIDATION_CONFIG, ValidationConfig)
    models.setdefault(PIPELINE_CONFIG, PipelineConfig)
    return models


@config_app.command("check")
def check(directory: DirOpt = CONFIG_DIR, json_: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Validate every known file in configs/ (one line per problem, exit 2 on any).

    Example: botclave config check --dir configs
    """
    with run(json_, quiet) as out:
        from botclave_cli.config import load_model

        results, problems = [], []
        for name, model in config_models().items():
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
        import yaml

        from botclave_cli.config import load_exchange_config

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
