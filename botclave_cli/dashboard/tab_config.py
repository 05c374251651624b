"""Placeholder while the tab is built."""

from __future__ import annotations

import streamlit as st


def render(*args: object) -> None:
    st.info("not built yet")
