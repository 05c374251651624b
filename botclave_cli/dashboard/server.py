"""The process ``botclave dashboard`` starts: ``streamlit run`` of app.py in this interpreter,
with the Order Flow tab's default selection built beforehand on a background thread.

The first visitor's page then opens on the cached footprint instead of waiting for it (a day
of trades takes seconds to build). The caches are the tabs' own ``st.cache_resource``
functions, shared by every session of this process; a visitor who arrives before the thread
is done waits on the same cache entry (Streamlit computes a key once) rather than building it
twice. Usage: ``python -m botclave_cli.dashboard.server run APP [streamlit options]``.
"""

from __future__ import annotations

import sys
import threading

from botclave_cli.logs import get_logger

log = get_logger("botclave.dashboard")


def warm() -> None:
    """Build the default selection's order flow into the caches; a store without trades (or
    any failure) leaves them cold: the page then shows its own message."""
    try:
        from botclave_cli.dashboard import tab_flow, ui
        from botclave_cli.dashboard.data import Sources

        sources = Sources.from_env()
        found = ui.cached_markets(str(sources.data_dir), ui.store_stamp(sources.data_dir))
        if found:
            tab_flow.warm(str(sources.data_dir), ui.default_selection(found))
    except Exception:  # noqa: BLE001 - warming is an optimisation, never a reason to stop
        log.warning("dashboard: warming the Order Flow cache failed", exc_info=True)


def main(argv: list[str]) -> int:
    from streamlit.web import cli

    threading.Thread(target=warm, name="botclave-warm", daemon=True).start()
    sys.argv = ["streamlit", *argv]
    return int(cli.main() or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
