"""The Order Flow tab: footprint, CVD, volume profile and signals of the sidebar's selection.

Far out the chart shows candles and delta; the "Window" slider narrows it on the server, and
once the window holds at most ``flow.DETAIL_MAX_BARS`` bars each bar is drawn level by level
(bid x ask, POC, value area, imbalances and stacks). Plotly zooms and pans inside what is sent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from botclave_cli.dashboard import data as dd
from botclave_cli.dashboard import fig_flow, flow
from botclave_cli.dashboard.ui import Selection, cached_view


@st.cache_resource(max_entries=32, show_spinner=False)
def cached_figures(data_dir: str, exchange: str, market: str, symbol: str, bar: str,
                   row_size: int, start: dt.datetime, end: dt.datetime, lo: dt.datetime,
                   hi: dt.datetime) -> tuple[Any, Any]:
    """The footprint and profile figures of a window (built once: a tab switch or a second
    visitor only serialises them)."""
    view = cached_view(data_dir, exchange, market, symbol, bar, row_size, start, end)
    shown = flow.window_bars(view.result.bars, lo, hi)
    return (fig_flow.footprint_figure(view, shown, f"{symbol} {bar} footprint"),
            fig_flow.profile_figure(view))


def warm(data_dir: str, sel: Selection) -> None:
    """Build what the tab first shows for ``sel`` (its whole window) into the caches."""
    m = sel.market
    view = cached_view(data_dir, m.exchange, m.market, m.symbol, sel.bar, sel.row_size,
                       sel.start, sel.end)
    starts = view.result.bars["bar_start"]
    cached_figures(data_dir, m.exchange, m.market, m.symbol, sel.bar, sel.row_size, sel.start,
                   sel.end, starts[0], starts[-1])


def render(sources: dd.Sources, sel: Selection | None) -> None:
    if sel is None:
        st.info(dd.no_markets_message(sources.store))
        return
    m = sel.market
    with st.spinner("building the footprint"):
        view = cached_view(str(sources.data_dir), m.exchange, m.market, m.symbol, sel.bar,
                           sel.row_size, sel.start, sel.end)
    bars = view.result.bars
    starts = bars["bar_start"].to_list()
    first, last = 0, len(starts) - 1
    if last > 0:
        # bar numbers, not a list of times: a day of 1m bars would send 1,440 option labels
        first, last = st.slider(
            f"Window, bar numbers (drawn level by level at most {flow.DETAIL_MAX_BARS} bars)",
            min_value=0, max_value=last, value=(0, last), key="flow_window")
    lo, hi = starts[first], starts[last]
    st.caption(f"bars {first}..{last}: {lo:%Y-%m-%d %H:%M:%S} .. {hi:%Y-%m-%d %H:%M:%S} UTC")
    footprint, profile = cached_figures(str(sources.data_dir), m.exchange, m.market, m.symbol,
                                        sel.bar, sel.row_size, sel.start, sel.end, lo, hi)
    left, right = st.columns([4, 1])
    # theme=None: the figures carry their own colours (Streamlit's theme costs the browser time)
    left.plotly_chart(footprint, key="footprint", theme=None,
                      config={"scrollZoom": True, "displaylogo": False})
    right.plotly_chart(profile, key="profile", theme=None, config={"displaylogo": False})
    p = view.profile
    st.caption(f"{view.trades:,} trades -> {bars.height:,} bars, {view.result.levels.height:,} "
               f"levels from {view.ref}; profile POC {p.poc:g}, value area {p.val:g} .. "
               f"{p.vah:g}, {p.hvn.height} HVN, {p.lvn.height} LVN; "
               f"{view.signals.height} signal(s)")
    # the table on request: a table would make the first paint load the data grid's code too
    if view.signals.height and st.toggle(f"Signals table ({view.signals.height})",
                                         key="flow_signals"):
        st.dataframe(view.signals, hide_index=True)
