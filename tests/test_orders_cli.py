"""``botclave orders place|list|cancel|reconcile`` against the spot trading emulator."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from botclave_cli.cli.app import app
from tests.test_order_manager import KEY, SECRET, config, emu  # noqa: F401 - the fixture

ENV = {"BOTCLAVE_BINANCE_API_KEY": KEY, "BOTCLAVE_BINANCE_SECRET": SECRET}


def cli(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env=ENV if env is None else env)


def test_place_list_cancel_reconcile(emu, tmp_path: Path) -> None:  # noqa: F811
    cfg = tmp_path / "exchange_config.yaml"
    cfg.write_text(yaml.safe_dump(config(emu).model_dump(mode="json")))
    base = ["--session", "c1", "--config", str(cfg), "--data-dir", str(tmp_path), "--json"]
    r = cli("orders", "place", "--side", "buy", "--type", "limit", "--qty", "0.01",
            "--price", "59000", "--signal", "3", *base)
    assert r.exit_code == 0, r.output
    order = json.loads(r.output)["order"]
    assert order["status"] == "acknowledged" and order["client_id"].endswith("-0000000003-en")
    again = json.loads(cli("orders", "place", "--side", "buy", "--type", "limit", "--qty",
                           "0.01", "--price", "59000", "--signal", "3", *base).output)
    assert again["sent"] is False
    listed = cli("orders", "list", "--session", "c1", "--open", "--data-dir", str(tmp_path),
                 "--json", env={})  # the journal alone: no keys needed
    assert [o["client_id"] for o in json.loads(listed.output)["orders"]] == [order["client_id"]]
    r = cli("orders", "cancel", order["client_id"], *base)
    assert r.exit_code == 0 and json.loads(r.output)["order"]["status"] == "canceled"
    r = cli("orders", "reconcile", "--symbol", "BTC/USDT", *base)
    assert r.exit_code == 0 and json.loads(r.output)["open_orders"] == []
    journal_only = ["--session", "c1", "--data-dir", str(tmp_path), "--json"]
    shown = json.loads(cli("orders", "show", order["client_id"], *journal_only, env={}).output)
    assert shown["status"] == "canceled" and shown["request"]["price"] == 59000.0
    assert [e["kind"] for e in shown["events"]][:3] == ["new", "submitted", "status"]
    assert shown["events"][-1]["status"] == "canceled"
    trail = json.loads(cli("orders", "history", *journal_only, env={}).output)["events"]
    assert [e["seq"] for e in trail] == sorted(e["seq"] for e in trail)
    assert {e["client_id"] for e in trail} >= {order["client_id"], "~account"}
    assert len(json.loads(cli("orders", "history", "--last", "2", *journal_only,
                              env={}).output)["events"]) == 2
    r = cli("orders", "show", "bc-nope", *journal_only[:-1], env={})
    assert r.exit_code == 2 and "not in the journal" in r.output
    # a refusal is one line naming the rule, exit 1, nothing sent
    r = cli("orders", "place", "--side", "buy", "--type", "limit", "--qty", "1",
            "--price", "59000", "--signal", "4", *base[:-1])
    assert r.exit_code == 1 and "max order notional" in r.output and "Traceback" not in r.output
    # no keys: exit 2 naming the variables
    r = cli("orders", "place", "--qty", "0.01", "--price", "59000", *base[:-1], env={})
    assert r.exit_code == 2 and "BOTCLAVE_BINANCE_API_KEY" in r.output
    # a bad request: one line
    r = cli("orders", "place", "--type", "limit", "--qty", "0.01", *base[:-1])
    assert r.exit_code == 2 and "needs a price" in r.output
