"""OrderFlowStrategy's entry rules on one closed bar's feature row, in Python scalars.

A paper or live session decides each bar as it closes, from that bar's row alone. The batch
rules (strategy.py: Polars expressions over every row) spend ~2-4 ms of per-call overhead on a
one-row frame (filters, selects, concat, sort), most of the decision-latency budget (trade
received -> order handed to the core, p99 <= 5 ms); these are the same rules on a ``dict`` in
tens of microseconds. Polars' null semantics are spelt out: arithmetic with a missing value is
missing (``None``), a comparison with one is false, and the expression order is the batch's, so
every float is the same bits. tests/test_row_rules.py holds the two equal on random rows and
configurations (missing values included), tests/test_strategy_stream.py signal for signal on
the synthetic days and on the real captures.

Prices are quote currency, ``tick`` the symbol's tick size; a signal row has
``SIGNAL_SCHEMA``'s keys (``ts`` the bar's end as a UTC datetime).
"""

from __future__ import annotations

from typing import Any

from botclave_cli.strategy.base import SIGNAL_SCHEMA
from botclave_cli.strategy.params import StrategyParams

Row = dict[str, Any]
_FALLBACK = object()  # a setup without a stop of its own: the configured stop rule


def decide_row(params: StrategyParams, tick: float, row: Row) -> list[Row]:
    """The signals of one bar's feature row, ordered as the batch orders them (by setup)."""
    if row["break_dir"] == 0 and row.get("absorption_side") is None:
        return []  # neither a break nor an absorption: most bars
    setups = params.entry.setups
    out: list[Row] = []
    if "bos" in setups:
        out += _bos(params, tick, row, retest=False)
    if "bos_ob_retest" in setups:
        out += _bos(params, tick, row, retest=True)
    if "absorption" in setups:
        out += _absorption(params, tick, row)
    out.sort(key=lambda s: s["setup"])  # stable, as the batch's sort by (ts, setup)
    sides = params.entry.sides
    if sides != "both":
        out = [s for s in out if s["action"] == (1 if sides == "long" else -1)]
    return out


def _bos(p: StrategyParams, tick: float, row: Row, retest: bool) -> list[Row]:
    e = p.entry
    d = row["break_dir"]
    if d is None or d == 0:
        return []
    delta_pct = 0.0 if row["delta_pct"] is None else row["delta_pct"]
    if not delta_pct * d >= e.min_delta_pct:
        return []
    if e.min_displacement_atr > 0:
        body = abs(row["close"] - row["open"])
        if not _ge(body, _mul(e.min_displacement_atr, row["atr"])):
            return []
    if not _filters(p, row, d):
        return []
    if retest:
        if row["ob_bar"] is None:
            return []
        edge = row["ob_high"] if d == 1 else row["ob_low"]
        return [_common(p, tick, row, d, edge, "bos_ob_retest", "limit", edge)]
    ref = row["close"]
    if e.order_type == "limit":
        limit = ref - d * e.limit_offset_ticks * tick
        return [_common(p, tick, row, d, limit, "bos", "limit", limit)]
    return [_common(p, tick, row, d, ref, "bos", "market", None)]


def _absorption(p: StrategyParams, tick: float, row: Row) -> list[Row]:
    e = p.entry
    side = row["absorption_side"]
    d = 1 if side == "bid" else -1 if side == "ask" else 0
    strength = 0.0 if row["absorption_strength"] is None else row["absorption_strength"]
    if d == 0 or not strength >= e.absorption_min_strength or not _filters(p, row, d):
        return []
    price = row["absorption_price"]
    stop = None if price is None else price - d * (p.stop.buffer_ticks * tick)
    ref = row["close"]
    if e.order_type == "limit":
        limit = ref - d * e.limit_offset_ticks * tick
        return [_common(p, tick, row, d, limit, "absorption", "limit", limit, stop)]
    return [_common(p, tick, row, d, ref, "absorption", "market", None, stop)]


def _filters(p: StrategyParams, row: Row, d: int) -> bool:
    """Entry filters shared by every setup, for direction ``d`` (strategy.py's ``_filters``)."""
    e = p.entry
    if e.stacked_imbalance:
        count = row["stacked_buy_count"] if d == 1 else row["stacked_sell_count"]
        if not _gt(count, 0):
            return False
    if e.cvd_divergence_veto:
        divergence = 0 if row["recent_divergence"] is None else row["recent_divergence"]
        if divergence == -d:
            return False
    if e.book_imbalance_min is not None \
            and not _ge(_mul(row["book_imbalance"], d), e.book_imbalance_min):
        return False
    return True


def _common(p: StrategyParams, tick: float, row: Row, d: int, ref: float | None, setup: str,
            order_type: str, limit: float | None, own_stop: Any = _FALLBACK) -> Row:
    """The signal row (strategy.py's ``_common``); a setup's own stop (``own_stop``) stands
    when it lies on the right side of ``ref``, else the configured stop rule's."""
    fallback = _stop(p, tick, row, d, ref)
    if own_stop is _FALLBACK:
        stop = fallback
    else:
        stop = own_stop if _gt(_mul(d, _sub(ref, own_stop)), 0) else fallback
    trail = _mul(p.trailing.atr_mult, row["atr"]) if p.trailing.enabled else None
    signal = {"ts": row["bar_end"], "action": d, "order_type": order_type, "limit_price": limit,
              "stop_price": stop, "target_price": _target(p, row, d, ref, stop),
              "trail_dist": trail, "hold_bars": p.exit.time_stop_bars or None,
              "expiry_bars": p.entry.limit_expiry_bars, "setup": setup}
    return {c: signal[c] for c in SIGNAL_SCHEMA}


def _stop(p: StrategyParams, tick: float, row: Row, d: int, ref: float | None) -> float | None:
    """Stop price for direction ``d`` and entry reference ``ref`` (strategy.py's ``_stop``)."""
    sp = p.stop
    buf = sp.buffer_ticks * tick
    atr_stop = _sub(ref, _mul(d * sp.atr_mult, row["atr"]))
    if sp.mode == "order_block":
        beyond = _sub(row["ob_low"], buf) if d == 1 else _add(row["ob_high"], buf)
    elif sp.mode == "swing":
        beyond = _sub(row["level_low"], buf) if d == 1 else _add(row["level_high"], buf)
    else:
        beyond = atr_stop
    return beyond if _gt(_mul(d, _sub(ref, beyond)), 0) else atr_stop


def _target(p: StrategyParams, row: Row, d: int, ref: float | None, stop: float | None
            ) -> float | None:
    tp = p.target
    if tp.mode == "none":
        return None
    distance = _sub(ref, stop)
    r_target = _add(ref, _mul(d * tp.r_multiple, None if distance is None else abs(distance)))
    if tp.mode == "poc":
        poc = row["poc_high"] if d == 1 else row["poc_low"]
        return poc if _gt(_mul(d, _sub(poc, ref)), 0) else r_target
    return r_target


# Polars' null arithmetic on scalars: None in, None out; a comparison with None is false ------
def _add(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _mul(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a * b


def _gt(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and a > b


def _ge(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and a >= b
