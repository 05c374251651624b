"""Order book: snapshots and diffs -> a sequenced book (``stream``), its numba kernel (``kernel``)
over a dense price ladder (``ladder``), ``dom_builder.DOMBuilder``, replays of stored books
(``replay``, ``replay_report``) on a tick grid (``tick_grid``)."""

from typing import TYPE_CHECKING

from botclave_cli.lazy import lazy_names

if TYPE_CHECKING:
    from botclave_cli.engine.book.dom_builder import DOMBuilder

__all__ = ["DOMBuilder"]
__getattr__, __dir__ = lazy_names(__name__, {
    "DOMBuilder": "botclave_cli.engine.book.dom_builder",
})
