"""What every tab shares: the error guard (a message, never a traceback), cached loaders and
the sidebar's market selection."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st
from pydantic import ValidationError
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from botclave_cli.dashboard import data as dd
from botclave_cli.errors import BotclaveError
from botclave_cli.logs import get_logger

log = get_logger("botclave.dashboard")


@contextlib.contextmanager
def guard(what: str) -> Iterator[None]:
    """Run a tab's body: library errors become one message in the page (data problems a
    warning), anything else one error line; the traceback goes to the log only."""
    try:
        yield
    except ScriptControlException:
        raise  # Streamlit's own reruns and stops
    except BotclaveError as exc:
        st.warning(exc.message, icon=":material/database:")
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or what
        st.error(f"{where}: {err['msg']}")
    except Exception as exc:  # noqa: BLE001 - the page shows one line, never a traceback
        log.exception("dashboard: %s failed", what)
        st.error(f"{what}: internal error: {type(exc).__name__}: {exc} (details in the log)")


@st.cache_resource(max_entries=8, show_spinner=False)
def cached_view(data_dir: str, exchange: str, market: str, symbol: str, bar: str, row_size: int,
                start: dt.datetime, end: dt.datetime) -> Any:
    from botclave_cli.dashboard import flow

    store = dd.Store(Path(data_dir))
    ref = dd.trades_ref(store, exchange, market, symbol)
    spec = flow.footprint_spec(store, ref, bar, row_size)
    return flow.build_view(store, ref, spec, start, end)


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_markets(data_dir: str, stamp: float) -> list[dd.Market]:
    return dd.markets(dd.Store(Path(data_dir)))


def store_stamp(data_dir: Path) -> float:
    """Changes when a dataset is added (the markets list is cached on it)."""
    try:
        return max((p.stat().st_mtime for p in data_dir.glob("*/*/*/*/manifest.json")),
                   default=0.0)
    except OSError:
        return 0.0


@dataclass(frozen=True)
class Selection:
    """The sidebar's choice: a market, a UTC range [start, end), the bar spec and row size."""

    market: dd.Market
    start: dt.datetime
    end: dt.datetime
    bar: str
    row_size: int


def default_selection(found: list[dd.Market]) -> Selection:
    """What the sidebar shows before any choice: the first market's first day (one UTC day),
    1m bars, rows of one tick (the server warms its cache on it)."""
    market = found[0]
    start, end = dd.day_range(market.first_day, 1)
    return Selection(market, start, end, "1m", 1)


def sidebar(sources: dd.Sources) -> Selection | None:
    """Market, day(s), bar spec and row size; None (and a message) when the store has none."""
    st.sidebar.header("Selection")
    found = cached_markets(str(sources.data_dir), store_stamp(sources.data_dir))
    if not found:
        st.sidebar.warning(dd.no_markets_message(sources.store))
        return None
    labels = [m.label for m in found]
    label = st.sidebar.selectbox("Symbol", labels, key="symbol")
    market = found[labels.index(label)]
    default = default_selection([market])
    day = st.sidebar.date_input("Day (UTC)", value=market.first_day, min_value=market.first_day,
                                max_value=market.last_day, key="day")
    if not isinstance(day, dt.date):
        day = market.first_day
    days = int(st.sidebar.number_input("Days", min_value=1, max_value=7, value=1, key="days"))
    bar = st.sidebar.text_input("Bar spec", value=default.bar, key="bar",
                                help="1m, 5m, 1h, vol:50, trades:500, range:20 (ticks)")
    row_size = int(st.sidebar.number_input("Row size (ticks)", min_value=1,
                                           value=default.row_size, key="row_size"))
    start, end = dd.day_range(day, days)
    return Selection(market, start, end, bar.strip(), row_size)
