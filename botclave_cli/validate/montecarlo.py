"""Monte Carlo of a backtest: trade-order reshuffle and circular block bootstrap of bar returns.

Both methods work on FRACTIONAL returns (0.01 = +1 % of equity) compounded from an equity of 1:
- ``reshuffle``: the trades' returns in a random order (a permutation, no replacement). Final
  equity and Sharpe do not depend on the order, so their spread is zero by construction; the
  point is the distribution of max drawdown and losing streaks the same trades could have had.
- ``bootstrap``: circular block bootstrap of per-bar returns (blocks of ``block_bars`` bars,
  random starts, wrapped at the end), keeping short-range dependence; every statistic varies.

Runs are drawn in fixed chunks of ``CHUNK_RUNS`` whose seeds come from
``numpy.random.SeedSequence(seed).spawn``, so the result depends on the seed only, never on how
many workers ran the chunks. Sharpe is per period times ``sqrt(periods_per_year)`` (per trade,
not annualised, for ``reshuffle``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from botclave_cli.errors import UsageError
from botclave_cli.validate.executor import Executor, SerialExecutor

Method = Literal["reshuffle", "bootstrap"]
CHUNK_RUNS = 100
PERCENTILES = (5, 25, 50, 75, 95)
STATS = ("final_equity", "max_drawdown", "sharpe", "longest_losing_streak")


def path_stats(paths: np.ndarray, periods_per_year: float = 1.0) -> dict[str, np.ndarray]:
    """Statistics of each row of ``paths`` (runs x periods of fractional returns).

    final_equity: equity multiple (1.0 = unchanged); max_drawdown: largest fall from a running
    peak as a fraction (the starting equity counts as a peak); sharpe: mean / std (ddof=1) x
    sqrt(periods_per_year), 0 for a flat path; longest_losing_streak: most consecutive negative
    returns.
    """
    r = np.atleast_2d(np.asarray(paths, dtype=np.float64))
    runs, n = r.shape
    equity = np.cumprod(1.0 + r, axis=1)
    peaks = np.maximum.accumulate(np.concatenate([np.ones((runs, 1)), equity], axis=1), axis=1)
    drawdown = 1.0 - equity / peaks[:, 1:]
    mean = r.mean(axis=1)
    sd = r.std(axis=1, ddof=1) if n > 1 else np.zeros(runs)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(sd > 0, mean / sd, 0.0) * np.sqrt(periods_per_year)
    idx = np.arange(n)
    last_ok = np.maximum.accumulate(np.where(r < 0, -1, idx), axis=1)
    streak = (idx - last_ok).max(axis=1) if n else np.zeros(runs, dtype=np.int64)
    return {
        "final_equity": equity[:, -1] if n else np.ones(runs),
        "max_drawdown": np.clip(drawdown.max(axis=1), 0.0, None) if n else np.zeros(runs),
        "sharpe": sharpe,
        "longest_losing_streak": streak.astype(np.int64),
    }


def reshuffled_paths(trade_returns: np.ndarray, runs: int, rng: np.random.Generator) -> np.ndarray:
    """``runs`` random permutations of the trade returns (runs x trades)."""
    base = np.broadcast_to(np.asarray(trade_returns, dtype=np.float64), (runs, len(trade_returns)))
    return rng.permuted(base, axis=1)


def block_bootstrap_paths(
    returns: np.ndarray, runs: int, block_bars: int, rng: np.random.Generator
) -> np.ndarray:
    """Circular block bootstrap: each path is ``ceil(T / block)`` blocks of ``block_bars``
    consecutive bars from random starts (wrapping at the end), cut to T bars."""
    r = np.asarray(returns, dtype=np.float64)
    n = r.size
    block = max(1, min(block_bars, n))
    n_blocks = -(-n // block)
    starts = rng.integers(0, n, size=(runs, n_blocks))
    offsets = np.arange(block)
    idx = (starts[:, :, None] + offsets[None, None, :]) % n
    return r[idx.reshape(runs, n_blocks * block)[:, :n]]


@dataclass(frozen=True)
class _Chunk:
    method: Method
    data: np.ndarray
    runs: int
    seed: np.random.SeedSequence
    block_bars: int
    periods_per_year: float


def _run_chunk(chunk: _Chunk) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(chunk.seed)
    if chunk.method == "reshuffle":
        paths = reshuffled_paths(chunk.data, chunk.runs, rng)
    else:
        paths = block_bootstrap_paths(chunk.data, chunk.runs, chunk.block_bars, rng)
    return path_stats(paths, chunk.periods_per_year)


@dataclass
class MonteCarloResult:
    method: Method
    runs: pl.DataFrame  # one row per run: run, final_equity, max_drawdown, sharpe, streak
    ruin_drawdown: float
    summary: dict = field(default_factory=dict)

    @property
    def prob_ruin(self) -> float:
        return float(self.summary["prob_ruin"])

    def as_dict(self) -> dict:
        return {"method": self.method, "runs": self.runs.height, **self.summary}


def summarise(runs: pl.DataFrame, ruin_drawdown: float) -> dict:
    """Percentiles (linear interpolation) and mean of every statistic, and the probability of
    ruin: the share of runs whose max drawdown reaches ``ruin_drawdown``."""
    out: dict = {"ruin_drawdown": ruin_drawdown}
    for name in STATS:
        values = runs[name].to_numpy().astype(np.float64)
        out[name] = {f"p{q}": float(np.percentile(values, q)) for q in PERCENTILES}
        out[name]["mean"] = float(values.mean())
    out["prob_ruin"] = float(np.mean(runs["max_drawdown"].to_numpy() >= ruin_drawdown))
    return out


def monte_carlo(
    returns: Sequence[float] | np.ndarray, method: Method = "reshuffle", runs: int = 1000,
    seed: int = 0, block_bars: int = 20, ruin_drawdown: float = 0.3,
    periods_per_year: float = 1.0, executor: Executor | None = None,
) -> MonteCarloResult:
    """``runs`` Monte Carlo paths of ``returns`` (trade returns for ``reshuffle``, bar returns
    for ``bootstrap``); identical for any executor with the same seed."""
    data = np.asarray(returns, dtype=np.float64)
    if method not in ("reshuffle", "bootstrap"):
        raise UsageError(f"monte_carlo.method {method!r}: expected reshuffle or bootstrap")
    if runs < 1:
        raise UsageError(f"--runs {runs}: expected at least 1")
    if data.size < 2:
        what = "trades" if method == "reshuffle" else "bars"
        raise UsageError(f"Monte Carlo {method} needs at least 2 {what}, got {data.size}")
    if not 0 < ruin_drawdown <= 1:
        raise UsageError(f"monte_carlo.ruin_drawdown {ruin_drawdown}: expected (0, 1]")
    sizes = [CHUNK_RUNS] * (runs // CHUNK_RUNS) + ([runs % CHUNK_RUNS] if runs % CHUNK_RUNS else [])
    seeds = np.random.SeedSequence(seed).spawn(len(sizes))
    ppy = 1.0 if method == "reshuffle" else periods_per_year
    chunks = [_Chunk(method, data, n, s, block_bars, ppy)
              for n, s in zip(sizes, seeds, strict=True)]
    parts = (executor or SerialExecutor()).map(_run_chunk, chunks)
    frame = pl.DataFrame({
        "run": np.arange(runs, dtype=np.int64),
        **{name: np.concatenate([p[name] for p in parts]) for name in STATS},
    })
    return MonteCarloResult(method, frame, ruin_drawdown, summarise(frame, ruin_drawdown))
