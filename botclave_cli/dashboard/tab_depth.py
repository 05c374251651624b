"""The Depth tab: the stored book replayed over a window of the selection (engine.depth, as
``botclave depth`` and the report do), drawn as a heatmap with trades, walls and absorption
zones, and the imbalance / OFI / microprice series. The replay runs on the server for the
window chosen here (default 15 minutes: a replay costs seconds per ten minutes of diffs)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

from botclave_cli.dashboard import data as dd
from botclave_cli.dashboard import fig_depth
from botclave_cli.dashboard.ui import Selection
from botclave_cli.data.store import DatasetRef, to_us
from botclave_cli.errors import DataError


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_depth(data_dir: str, exchange: str, market: str, symbol: str, start: dt.datetime,
                 end: dt.datetime, interval_ms: int) -> Any:
    return load_depth(dd.Store(Path(data_dir)), exchange, market, symbol, start, end,
                      interval_ms)


def load_depth(store: dd.Store, exchange: str, market: str, symbol: str, start: dt.datetime,
               end: dt.datetime, interval_ms: int) -> Any:
    """The depth run of [start, end) sampled every ``interval_ms``; DataError naming the
    missing book dataset and the command that records it."""
    from botclave_cli.engine.depth.analyzer import DepthParams
    from botclave_cli.report.sources import book_depth

    for kind in ("book_snapshot", "book_diff"):
        ref = DatasetRef(exchange, market, symbol, kind)
        if not store.exists(ref):
            raise DataError(f"no {kind} dataset at {store.path(ref)}: run "
                            f"{dd.fetch_hint(exchange, market, symbol, kind)}")
    params = DepthParams(interval_us=interval_ms * 1000)
    return book_depth(store, exchange, market, symbol, to_us(start), to_us(end), params)


def render(sources: dd.Sources, sel: Selection | None) -> None:
    if sel is None:
        st.info(dd.no_markets_message(sources.store))
        return
    from botclave_cli.report.sources import thin_for_heatmap

    m = sel.market
    hours = int((sel.end - sel.start).total_seconds() // 3600)
    c1, c2, c3 = st.columns(3)
    first = int(c1.number_input("From hour (UTC)", min_value=0, max_value=max(hours - 1, 0),
                                value=0, key="depth_hour"))
    span = int(c2.number_input("Minutes", min_value=1, max_value=24 * 60, value=15,
                               key="depth_minutes"))
    interval_ms = int(c3.selectbox("Sample every (ms)", [250, 500, 1000, 5000], index=2,
                                   key="depth_interval"))
    start = sel.start + dt.timedelta(hours=first)
    end = min(start + dt.timedelta(minutes=span), sel.end)
    with st.spinner("replaying the book"):
        result = cached_depth(str(sources.data_dir), m.exchange, m.market, m.symbol, start,
                              end, interval_ms)
    samples, trades, note = thin_for_heatmap(result.samples, result.trades,
                                             interval_ms * 1000, columns=300, bubbles=2000)
    title = f"{m.symbol} depth {start:%Y-%m-%d %H:%M} .. {end:%H:%M} ({note})"
    st.plotly_chart(fig_depth.depth_figure(result, samples, trades, title), key="depth",
                    config={"scrollZoom": True, "displaylogo": False})
    c = result.counts
    st.caption(f"{result.series.height:,} depth rows, {c['samples_valid']} valid samples of "
               f"{c['samples_taken']}, {c.get('gaps', 0)} gap(s); {len(result.walls)} wall(s), "
               f"{len(result.zones)} absorption zone(s)")
    left, right = st.columns(2)
    left.markdown("Walls")
    left.dataframe(pl.DataFrame([vars(w) for w in result.walls]) if result.walls else
                   pl.DataFrame(), hide_index=True, key="walls")
    right.markdown("Absorption zones")
    right.dataframe(pl.DataFrame([vars(z) for z in result.zones]) if result.zones else
                    pl.DataFrame(), hide_index=True, key="zones")
