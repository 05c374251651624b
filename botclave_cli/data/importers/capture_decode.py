"""Capture messages decoded per kind, and what they tell about the stream (symbol, market).

Messages are parsed with Polars' ``json_decode`` per message kind, scalars as strings (checked
and cast by capture_messages.py); a line that does not parse is found by bisection, so a clean
capture costs one vectorised decode per kind.
"""

from __future__ import annotations

import polars as pl

from botclave_cli.data.importers.badrows import FILE, LINE, BadLine
from botclave_cli.data.importers.symbols import is_coinm
from botclave_cli.errors import DataError, UsageError

S = pl.String()
LEVELS = pl.List(pl.List(pl.String()))

#: JSON shapes per message kind (scalars decoded as strings, checked and cast afterwards)
DTYPES: dict[str, pl.Struct] = {
    "trade": pl.Struct({"e": S, "s": S, "t": S, "p": S, "q": S, "T": S, "m": S, "M": S, "X": S}),
    "aggTrade": pl.Struct({"e": S, "s": S, "a": S, "p": S, "q": S, "f": S, "l": S, "T": S, "m": S}),
    "depth": pl.Struct({"e": S, "E": S, "s": S, "U": S, "u": S, "pu": S, "b": LEVELS, "a": LEVELS}),
    "bookTicker": pl.Struct(
        {"e": S, "u": S, "s": S, "b": S, "B": S, "a": S, "A": S, "E": S, "T": S}
    ),
    "snapshot": pl.Struct({"lastUpdateId": S, "E": S, "T": S, "bids": LEVELS, "asks": LEVELS}),
}


def decode_all(lines: pl.DataFrame) -> tuple[dict[str, pl.DataFrame], list[BadLine]]:
    """Decode the classified lines (``_kind`` set, bad ones removed), one frame per kind."""
    decoded: dict[str, pl.DataFrame] = {}
    bad: list[BadLine] = []
    for kind, dtype in DTYPES.items():
        part, more = _decode(lines.filter(pl.col("_kind") == kind), dtype, kind != "snapshot")
        decoded[kind] = part
        bad += more
    return decoded, bad


def _json_decode(bodies: pl.Series, dtype: pl.DataType) -> tuple[pl.Series, list[int]]:
    """Decode JSON strings; the indexes of strings that do not decode are found by bisection."""
    try:
        return bodies.str.json_decode(dtype), []
    except pl.exceptions.PolarsError:
        if len(bodies) == 1:
            return pl.Series(bodies.name, [None], dtype=dtype), [0]
    mid = len(bodies) // 2
    left, lbad = _json_decode(bodies[:mid], dtype)
    right, rbad = _json_decode(bodies[mid:], dtype)
    return left.append(right), lbad + [mid + i for i in rbad]


def _decode(
    part: pl.DataFrame, dtype: pl.Struct, enveloped: bool
) -> tuple[pl.DataFrame, list[BadLine]]:
    """Decode one kind's bodies into columns; the message fields become top-level columns."""
    if part.is_empty():
        return part.with_columns(pl.lit(None, dtype=dtype).alias("msg")).unnest("msg"), []
    envelope = pl.Struct({"data": dtype}) if enveloped else dtype
    bodies = part["body"]
    if enveloped and part["_stream"].null_count():
        # raw events are wrapped so that both shapes decode with one dtype
        bodies = part.select(
            pl.when(pl.col("_stream").is_null())
            .then(pl.format('{{"data":{}}}', pl.col("body")))
            .otherwise(pl.col("body"))
        ).to_series()
    msgs, failed = _json_decode(bodies, envelope)
    if enveloped:
        msgs = msgs.struct.field("data")
    out = part.with_columns(msgs.alias("msg"))
    bad: list[BadLine] = []
    if failed:
        rows = out[failed]
        bad = [
            BadLine(f, n, "truncated last line" if cut else "malformed JSON message")
            for f, n, cut in rows.select(FILE, LINE, "_last_cut").iter_rows()
        ]
        out = out.with_row_index("_i").filter(~pl.col("_i").is_in(failed)).drop("_i")
    return out.drop("body").unnest("msg"), bad


def symbols_of(lines: pl.DataFrame, decoded: dict[str, pl.DataFrame]) -> list[str]:
    """Exchange symbols named by stream names (``btcusdt@trade``) and ``s`` fields, sorted."""
    parts = [lines.select(pl.col("_stream").str.extract(r"^([^@]+)@", 1).alias("s"))]
    parts += [
        df.select(pl.col("s").cast(pl.String)) for df in decoded.values() if "s" in df.columns
    ]
    return (
        pl.concat(parts)
        .select(pl.col("s").str.to_uppercase().drop_nulls().unique())
        .to_series()
        .sort()
        .to_list()
    )


def raw_symbol(found: list[str], name: str, override: str | None) -> str:
    """The one exchange symbol of a capture (``found`` by ``symbols_of``); ``name`` for errors."""
    if len(found) > 1:
        raise DataError(
            f"{name}: capture holds several symbols ({', '.join(found)}); import one each"
        )
    if not found and override is None:
        raise UsageError(f"{name}: no stream name or message tells the symbol; pass --symbol")
    return found[0] if found else ""


def detect_market(decoded: dict[str, pl.DataFrame], raw: str) -> str | None:
    """spot, usdm or coinm (None: cannot tell): futures depth diffs carry ``pu``, futures trades
    ``X`` (spot trades ``M``), futures bookTickers ``e``."""
    futures = None
    depth = decoded["depth"]
    if depth.height:
        futures = bool(depth["pu"].is_not_null().any())
    elif decoded["trade"].height:
        trades = decoded["trade"]
        if trades["X"].is_not_null().any():
            futures = True
        elif trades["M"].is_not_null().any():
            futures = False
    elif decoded["bookTicker"].height:
        futures = bool(decoded["bookTicker"]["e"].is_not_null().any())
    if futures is None:
        return None
    if not futures:
        return "spot"
    return "coinm" if is_coinm(raw) else "usdm"


def first_event_us(decoded: dict[str, pl.DataFrame]) -> int | None:
    """Earliest exchange time (us) among the messages: ``E``, else trade ``T``; None if none."""
    stamps = [
        df.select(pl.coalesce(*(pl.col(c) for c in ("E", "T") if c in df.columns)).alias("t"))
        for df in decoded.values()
        if df.height and ({"E", "T"} & set(df.columns))
    ]
    if not stamps:
        return None
    lo = pl.concat(stamps).select(pl.col("t").cast(pl.Int64, strict=False).min()).item()
    return None if lo is None else int(lo) * 1000
