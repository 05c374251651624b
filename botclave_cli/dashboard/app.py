"""The Streamlit script of ``botclave dashboard`` (``streamlit run`` runs this file).

Reads ``$BOTCLAVE_DATA_DIR`` (the store) and ``$BOTCLAVE_DASHBOARD_RUNS_DIR`` (the run folders),
which the command sets from ``--data-dir`` / ``--runs-dir``. Tabs run lazily: only the open
tab's body executes (``on_change="rerun"``), and the open tab is in the URL (``?tab=Depth``).
"""

from __future__ import annotations

import streamlit as st

from botclave_cli.dashboard import tab_config, tab_depth, tab_flow, tab_live, tab_strategy
from botclave_cli.dashboard.data import Sources
from botclave_cli.dashboard.ui import guard, sidebar

TABS = ("Order Flow", "Strategy", "Depth", "Live", "Configuration")


def main() -> None:
    st.set_page_config(page_title="botclave dashboard", layout="wide")
    sources = Sources.from_env()
    sel = None
    with guard("sidebar"):
        sel = sidebar(sources)
    st.sidebar.caption(f"store {sources.data_dir} | runs {sources.runs_dir}")
    tabs = st.tabs(list(TABS), key="tab", on_change="rerun", bind="query-params")
    renderers = {
        "Order Flow": lambda: tab_flow.render(sources, sel),
        "Strategy": lambda: tab_strategy.render(sources),
        "Depth": lambda: tab_depth.render(sources, sel),
        "Live": lambda: tab_live.render(sources),
        "Configuration": lambda: tab_config.render(sources, sel),
    }
    for name, tab in zip(TABS, tabs, strict=True):
        if tab.open is False:
            continue
        with tab, guard(name):
            renderers[name]()


main()
