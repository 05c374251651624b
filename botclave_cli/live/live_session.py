"""A live session: the paper session's loop (recorder streams -> PaperTrader -> run folder,
status, alerts) with its core's fills mirrored to the exchange (live/mirror.py).

The core is fed one trade at a time (``flush_trades = 1``) so that a fill is mirrored on the
message that made it, not at the next tick; the open orders are polled over REST every
``poll_s`` (fills of the exchange-side protection). On stop (``live stop``, SIGTERM, the
duration): every open order of the session is canceled and, with ``flatten``, the position is
closed by a market order. The status file is the paper session's with ``mode: live``, the real
position (the journal's fills) and the session's open exchange orders. Testnet unless the
configuration says ``testnet: false`` and ``--live`` is given (exchange/orders/session.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from botclave_cli.backtest.backtester import Backtester
from botclave_cli.exchange.orders.manager import OrderManager
from botclave_cli.exchange.orders.model import OrderRequest, client_order_id
from botclave_cli.exchange.orders.reconcile import reconcile
from botclave_cli.exchange.orders.session import client_prefix
from botclave_cli.execution import layout as L
from botclave_cli.live.mirror import OrderMirror
from botclave_cli.live.session import PaperSession, run_paper_session
from botclave_cli.live.status import SessionStatus
from botclave_cli.logs import get_logger

log = get_logger(__name__)
#: the signal number of the flattening order on stop (far above any fill number)
FLATTEN_SIGNAL = 9_999_000_000


class LiveSession(PaperSession):
    """A paper session whose core's fills are real orders (module docstring)."""

    def __init__(self, tester: Backtester, out_dir: Path, session: str, *,
                 mirror: OrderMirror, poll_s: float = 2.0, **kwargs: Any) -> None:
        super().__init__(tester, out_dir, session, **kwargs)
        self.mode = "live"
        self.rid = f"live-{session}"
        self.mirror = mirror
        self.trader.flush_trades = 1
        self.poll_s = poll_s
        self._next_poll = 0.0
        self._restarted = False

    def resume(self, trades: Any) -> int:
        n = super().resume(trades)
        if self.replayed_until_us is not None:  # fills the replay makes are never placed
            self.mirror.live_from_us = self.replayed_until_us + 1
        self.mirror.sync(self.trader.core, self._last_price())  # passes over them
        return n

    def on_message(self, message: dict[str, Any], receive_us: int) -> None:
        super().on_message(message, receive_us)  # the core has the trade (flush_trades 1)
        if not self._restarted and self.trader.received:
            # the first live price: the last process's orders canceled, the real position
            # brought to the core's and protected (mirror.restart)
            self._restarted = True
            self.mirror.restart(self.trader.core, self._last_price())
        self.mirror.sync(self.trader.core, self._last_price())

    def on_tick(self, now_us: int) -> None:
        super().on_tick(now_us)
        self.mirror.sync(self.trader.core, self._last_price())
        if time.monotonic() >= self._next_poll:
            self.mirror.manager.poll()
            self._next_poll = time.monotonic() + self.poll_s

    def _last_price(self) -> float:
        core = self.trader.core
        return float(core.state.iv[L.I_LAST_PX]) * float(core.params[L.P_TICK])

    def status(self) -> SessionStatus:
        status = super().status()
        journal = self.mirror.manager.journal
        status.position_qty = self.mirror.position()
        status.open_orders = [{"client_id": o.client_id, "status": o.status.value,
                               "side": o.request.side if o.request else None,
                               "type": o.request.type if o.request else None,
                               "qty": o.request.qty if o.request else None,
                               "price": o.request.price if o.request else None,
                               "stop_price": o.request.stop_price if o.request else None}
                              for o in journal.orders().values() if o.is_open]
        return status

    def stop_trading(self, flatten: bool) -> None:
        """Cancel the session's open orders; with ``flatten`` close the position."""
        self.mirror.cancel_all()
        held = self.mirror.position()
        if flatten and held:
            qty = self.mirror._qty(abs(held))
            if qty > 0:
                manager = self.mirror.manager
                request = OrderRequest(
                    client_id=client_order_id(self.session, FLATTEN_SIGNAL, "exit"),
                    symbol=self.mirror.symbol, side="sell" if held > 0 else "buy",
                    type="market", qty=qty, reduce_only=manager.futures)
                manager.place(request, last_price=self._last_price(), position_qty=held)


def run_live_session(manager: OrderManager, *, flatten: bool = False, protect: bool = True,
                     **kwargs: Any) -> tuple[LiveSession, Path | None]:
    """``run_paper_session`` with a LiveSession: reconcile on start, mirror while running,
    cancel (and flatten) on stop. ``kwargs``: run_paper_session's."""
    cfg = kwargs.pop("cfg")
    symbol = cfg.symbol
    session = kwargs["session"]
    report = reconcile(manager, [symbol], client_prefix(session))
    for line in report.lines():
        log.info("reconcile", extra={"line": line})
    mirror = OrderMirror(manager, session, symbol, protect=protect)

    def make(*args: Any, **kw: Any) -> LiveSession:
        return LiveSession(*args, mirror=mirror, **kw)

    def stopped(live: PaperSession) -> None:
        assert isinstance(live, LiveSession)
        live.stop_trading(flatten)

    store, tester = kwargs.pop("store"), kwargs.pop("tester")
    paper, folder = run_paper_session(store, cfg, tester, make_session=make, on_stopped=stopped,
                                      **kwargs)
    assert isinstance(paper, LiveSession)
    return paper, folder
