"""``botclave alerts test``: send one message to each configured alert channel, say which worked.

Channels are configured by the ``alerts:`` section of exchange_config.yaml (on/off, Bot API URL,
SMTP options) and the environment (BOTCLAVE_TELEGRAM_TOKEN, BOTCLAVE_TELEGRAM_CHAT_ID,
BOTCLAVE_SMTP_URL, BOTCLAVE_ALERT_EMAIL). Exit 0 when every configured channel worked, 1 when one
failed, 2 when none is configured.
"""

from __future__ import annotations

from typing import Annotated

import typer

from botclave_cli.cli.common import ConfigOpt, JsonOpt, QuietOpt, run

alerts_app = typer.Typer(help="Alerts of paper and live sessions (Telegram, e-mail).\n\n"
                         "Example: botclave alerts test --json", no_args_is_help=True)


@alerts_app.command("test")
def test(
    config: ConfigOpt = None,
    text: Annotated[str | None, typer.Option("--text", help="Message to send (default: a "
                                             "line naming this host and the time).")] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Send one test message to each configured channel and say which worked.

    Example: BOTCLAVE_TELEGRAM_TOKEN=... BOTCLAVE_TELEGRAM_CHAT_ID=... botclave alerts test
    --config configs/exchange_config.yaml --json
    """
    code = 0
    with run(json_, quiet) as out:
        from botclave_cli.config import load_exchange_config
        from botclave_cli.live.alerts import check_channels

        results = check_channels(load_exchange_config(config).alerts, text=text)
        rows = [{"channel": r.channel, "configured": r.configured, "ok": r.ok,
                 "detail": r.detail} for r in results]
        configured = [r for r in results if r.configured]
        failed = [r for r in configured if not r.ok]
        if not configured:
            code = 2
            summary = "no alert channel configured: " + "; ".join(
                f"{r.channel} {r.detail}" for r in results)
        elif failed:
            code = 1
            summary = "; ".join(f"{r.channel} {'ok' if r.ok else 'FAILED: ' + r.detail}"
                                for r in configured)
        else:
            summary = "; ".join(f"{r.channel} ok ({r.detail})" for r in configured)
        out.emit({"channels": rows, "ok": code == 0}, summary, rows, title="alert channels")
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
