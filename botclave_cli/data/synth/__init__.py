"""The embedded synthetic market: a seeded, consistent order book and tape with planted events.

``generate(SynthConfig(...))`` returns a ``SynthMarket`` (trades, book_snapshot, book_diff, quotes,
ohlcv 1m, and the ``Truth`` of what was planted); ``write_synth(store, cfg)`` writes it to the
store as exchange ``synth``, market ``spot``, with ``truth.json`` beside the datasets. The
contract with the detectors is in notes/SYNTH.md.

Modules: ``config`` (SynthConfig), ``plan`` (background path and the plan arrays), ``events``
(the planters and the day's schedule), ``edge`` (the absorptions' follow-through and its
reference trade), ``kernel`` (numba book simulation), ``generate`` (orders and frames),
``truth`` (Truth models, measured on the output), ``write`` (store and truth file).
"""

from botclave_cli.data.synth.config import SynthConfig
from botclave_cli.data.synth.edge import FOLLOW_THROUGH, FollowThrough
from botclave_cli.data.synth.generate import SynthMarket, generate, ohlcv_1m
from botclave_cli.data.synth.truth import EdgeTruth, QuietStretch, Truth, TruthEvent
from botclave_cli.data.synth.write import (
    EXCHANGE,
    MARKET,
    TRUTH_NAME,
    SynthWritten,
    dataset_refs,
    read_truth,
    truth_path,
    write_synth,
)

__all__ = [
    "EXCHANGE", "FOLLOW_THROUGH", "MARKET", "TRUTH_NAME", "EdgeTruth", "FollowThrough",
    "QuietStretch", "SynthConfig", "SynthMarket",
    "SynthWritten", "Truth", "TruthEvent", "dataset_refs", "generate", "ohlcv_1m", "read_truth",
    "truth_path", "write_synth",
]
