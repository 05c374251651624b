"""``kill -9`` at any point of placing orders, then a restart: the journal ends equal to the
exchange and no order is ever placed twice. A subprocess places 30 orders through the real
ccxt class against the spot trading emulator (every answer delayed, so kills land between the
exchange's acceptance and the journal's write as well as everywhere else); it is killed at a
random moment, the restarted process reconciles and goes on."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from botclave_cli.exchange.orders.reconcile import reconcile
from botclave_cli.exchange.orders.session import client_prefix, open_manager
from tests.conftest import PROJECT_ROOT
from tests.test_order_manager import KEY, SECRET, config, emu  # noqa: F401 - the fixture

SESSION = "kill01"
N = 30
PLACER = f"""
import sys
from pathlib import Path
from botclave_cli.config import ExchangeConfig
from botclave_cli.exchange.orders.model import OrderRequest, client_order_id
from botclave_cli.exchange.orders.reconcile import reconcile
from botclave_cli.exchange.orders.session import client_prefix, open_manager
cfg = ExchangeConfig.model_validate_json(sys.argv[1])
m = open_manager(cfg, Path(sys.argv[2]), "{SESSION}")
reconcile(m, ["BTC/USDT"], client_prefix("{SESSION}"))  # on start, as a session does
for i in range({N}):
    cid = client_order_id("{SESSION}", i, "entry")
    o = m.journal.order(cid)
    if o is not None and o.status == "rejected":
        continue  # lost before the exchange on an earlier run: the strategy decides anew
    m.place(OrderRequest(client_id=cid, symbol="BTC/USDT", side="buy", type="limit",
                         qty=0.01, price=59000.0 - i), last_price=60000.0)
    print(i, flush=True)
print("done", flush=True)
"""


def start(cfg_json: str, data: Path) -> subprocess.Popen:
    env = {**os.environ, "BOTCLAVE_BINANCE_API_KEY": KEY, "BOTCLAVE_BINANCE_SECRET": SECRET}
    return subprocess.Popen([sys.executable, "-c", PLACER, cfg_json, str(data)],
                            cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True)


def test_kill_9_anywhere_then_restart(emu, tmp_path: Path) -> None:  # noqa: F811
    emu.delay_s = 0.02
    cfg_json = config(emu).model_dump_json()
    rng = random.Random(4)
    env = {"BOTCLAVE_BINANCE_API_KEY": KEY, "BOTCLAVE_BINANCE_SECRET": SECRET}
    for _ in range(4):
        proc = start(cfg_json, tmp_path)
        assert proc.stdout is not None
        for _ in range(rng.randint(1, 5)):  # a few orders in ...
            if proc.stdout.readline().strip() == "done":
                break
        time.sleep(rng.uniform(0.0, 0.05))  # ... then anywhere inside the next ones
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        m = open_manager(config(emu), tmp_path, SESSION, environ=env)
        reconcile(m, ["BTC/USDT"], client_prefix(SESSION))
        journal_open = sorted(c for c, o in m.journal.orders().items() if o.is_open)
        assert journal_open == emu.open_client_ids()
        placed = Counter(o.client_id for o in emu.orders.values())
        assert max(placed.values(), default=1) == 1  # never twice
        m.journal.close()
    proc = start(cfg_json, tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert out.strip().endswith("done")
    placed = Counter(o.client_id for o in emu.orders.values())
    assert max(placed.values()) == 1
    m = open_manager(config(emu), tmp_path, SESSION, environ=env)
    orders = m.journal.orders()
    lost = sorted(c for c, o in orders.items() if o.status == "rejected")
    # every order is on the exchange exactly once, except those a kill lost before sending
    assert len(placed) + len(lost) == N and not set(lost) & set(placed)
    assert len(lost) <= 4  # at most the one order each kill caught before it was sent
    assert sorted(c for c, o in orders.items() if o.is_open) == emu.open_client_ids()
