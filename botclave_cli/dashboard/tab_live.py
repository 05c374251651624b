"""The Live tab: a running paper session (its run folder) or a live session's order journal,
re-read every second: connection state, positions, open orders, fills and P&L."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from botclave_cli.dashboard import data as dd
from botclave_cli.dashboard import live, tab_strategy
from botclave_cli.dashboard.fig_strategy import equity_figure
from botclave_cli.dashboard.ui import guard

CONNECTION_ICON = {"live": ":green[live]", "stale": ":orange[stale]", "stopped": ":grey[stopped]"}


def render(sources: dd.Sources) -> None:
    runs = live.paper_runs(sources.runs_dir)
    journals = live.journals(sources.data_dir)
    options = [f"paper: {r}" for r in runs] + [f"journal: {p.parent.name}" for p in journals]
    if not options:
        st.info(f"no session to follow: start one with botclave paper --session ID "
                f"--out-dir {sources.out_dir} (its run folder appears in {sources.runs_dir}), "
                f"or botclave live (journal under {sources.data_dir}/sessions)")
        return
    choice = st.selectbox("Session", options, key="live_session")
    follow = st.toggle("Follow (re-read every second)", value=True, key="live_follow")
    kind, _, name = choice.partition(": ")
    if kind == "paper":
        (_follow_paper if follow else _paper_once)(sources, name)
    else:
        path = next(p for p in journals if p.parent.name == name)
        (_follow_journal if follow else _journal_once)(path)


def _paper_once(sources: dd.Sources, run_id: str) -> None:
    with guard("Live"):
        results = tab_strategy.load(sources, run_id)  # re-read when the folder is rewritten
        s = live.paper_state(sources.runs_dir, run_id, results=results)
        st.markdown(f"**{run_id}** connection {CONNECTION_ICON[s.connection]} (status "
                    f"{s.status}, folder rewritten {s.age_s:.1f} s ago; read "
                    f"{dt.datetime.now(dt.UTC):%H:%M:%S} UTC)")
        c = st.columns(4)
        c[0].metric("equity", f"{s.equity:,.2f}" if s.equity is not None else "n/a")
        c[1].metric("P&L", f"{s.pnl:+,.2f}" if s.pnl is not None else "n/a")
        c[2].metric("realized", f"{s.realized:+,.2f}")
        c[3].metric("open positions", str(s.positions.height))
        st.markdown("Positions")
        st.dataframe(s.positions, hide_index=True, key="live_positions")
        st.markdown("Open orders")
        st.dataframe(s.open_orders, hide_index=True, key="live_orders")
        st.markdown("Fills (newest first)")
        st.dataframe(s.fills, hide_index=True, key="live_fills")
        if results["equity"].height:
            st.plotly_chart(equity_figure(results["equity"], "Session equity"),
                            key="live_equity")


@st.fragment(run_every=1.0)
def _follow_paper(sources: dd.Sources, run_id: str) -> None:
    _paper_once(sources, run_id)


def _journal_once(path) -> None:
    with guard("Live"):
        orders = live.journal_orders(path)
        st.markdown(f"**{path.parent.name}** journal {path} (read "
                    f"{dt.datetime.now(dt.UTC):%H:%M:%S} UTC)")
        st.markdown("Open orders")
        st.dataframe(orders.filter(orders["open"]), hide_index=True, key="journal_open")
        st.markdown("All orders")
        st.dataframe(orders, hide_index=True, key="journal_all")


@st.fragment(run_every=1.0)
def _follow_journal(path) -> None:
    _journal_once(path)
