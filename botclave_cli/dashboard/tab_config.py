"""The Configuration tab: edit the strategy parameters (validated by the strategy's pydantic
models, errors shown inline) and run a backtest on the sidebar's selection with a progress bar;
the run is written to the runs folder and opens in the Strategy tab."""

from __future__ import annotations

import streamlit as st

from botclave_cli.dashboard import data as dd
from botclave_cli.dashboard import jobs
from botclave_cli.dashboard.ui import Selection
from botclave_cli.errors import BotclaveError


class StreamlitProgress:
    """``botclave_cli.progress.Progress`` drawn as ``st.progress`` (one bar, phase in text)."""

    def __init__(self) -> None:
        self.bar = st.progress(0.0, text="starting")
        self.total: float | None = None
        self.done = 0.0
        self.what = ""

    def start(self, total: float | None, description: str) -> None:
        self.total, self.done, self.what = total, 0.0, description
        self.bar.progress(0.0, text=description)

    def advance(self, amount: float = 1) -> None:
        self.done += amount
        share = min(self.done / self.total, 1.0) if self.total else 0.0
        self.bar.progress(share, text=f"{self.what} ({share:.0%})")


def render(sources: dd.Sources, sel: Selection | None) -> None:
    st.subheader("Strategy parameters")
    text = st.text_area("strategy_params.yaml", value=jobs.default_params_text(), height=320,
                        key="params_yaml")
    overrides = st.text_area("Overrides, one key=value a line (as --set)", value="",
                             key="params_set", height=90)
    try:
        params = jobs.parse_params(text, overrides.splitlines())
    except BotclaveError as exc:
        st.error(exc.message)
        return
    st.success(f"parameters valid: strategy {params.name}, bars {params.bars.timeframe}")
    if sel is None:
        st.info(dd.no_markets_message(sources.store))
        return
    m = sel.market
    use_book = st.checkbox("Walk the stored book (slower; needs book_snapshot + book_diff)",
                           value=False, key="bt_book")
    st.caption(f"backtest {m.label} [{sel.start:%Y-%m-%d %H:%M}, {sel.end:%Y-%m-%d %H:%M}) "
               f"-> {sources.runs_dir}")
    if not st.button("Run backtest", key="run_backtest", type="primary"):
        return
    progress = StreamlitProgress()
    rid, folder, metrics = jobs.run_backtest(sources, params, m, sel.start, sel.end,
                                             use_book=use_book, progress=progress)
    progress.bar.progress(1.0, text="done")
    st.session_state["new_run"] = rid
    st.success(f"run {rid}: {metrics.get('trades')} trade(s), total return "
               f"{metrics.get('total_return', 0.0):+.4%} -> {folder}; open the Strategy tab")
