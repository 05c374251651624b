"""Overfitting statistics: PSR, DSR, PBO by CSCV, and parameter stability.

- PSR (Bailey and Lopez de Prado 2012, "The Sharpe Ratio Efficient Frontier"): the probability
  that the true Sharpe ratio exceeds a benchmark, given the sample length and the skewness and
  (non-excess) kurtosis of the returns. Sharpe ratios here are PER PERIOD (not annualised).
- DSR (Bailey and Lopez de Prado 2014, "The Deflated Sharpe Ratio"): PSR against the Sharpe ratio
  the best of N independent trials would reach by luck alone, given the variance of the trials'
  Sharpe ratios.
- PBO (Bailey, Borwein, Lopez de Prado and Zhu 2015, "The Probability of Backtest Overfitting"):
  combinatorially symmetric cross-validation over a T x N matrix of returns.

Everything is plain numpy/scipy over arrays; nothing here knows about strategies or files.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from botclave_cli.errors import UsageError

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()  # Z and Z^-1 (scipy.stats costs a second of import in every worker)


def sharpe_per_period(returns: np.ndarray) -> float:
    """Mean over sample standard deviation (ddof=1) of periodic returns; 0 when flat or < 2."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return 0.0
    sd = float(r.std(ddof=1))
    return float(r.mean()) / sd if sd > 0 else 0.0


def moments(returns: np.ndarray) -> tuple[float, float]:
    """Sample skewness ``m3 / m2^1.5`` and NON-excess kurtosis ``m4 / m2^2`` (3 for a normal)
    from central moments (scipy.stats.skew / kurtosis(fisher=False) with bias=True), as the
    PSR formula wants them; (0, 3) for fewer than 3 returns or a flat series."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 3:
        return 0.0, 3.0
    d = r - r.mean()
    m2 = float(np.mean(d * d))
    if m2 <= 0.0:
        return 0.0, 3.0
    return float(np.mean(d ** 3)) / m2 ** 1.5, float(np.mean(d ** 4)) / (m2 * m2)


def probabilistic_sharpe_ratio(
    sr: float, sr_benchmark: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """``Z[(SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR^2)]``.

    ``sr`` and ``sr_benchmark`` per period, ``n_obs`` = T periods, ``kurtosis`` non-excess.
    NaN when T < 2 or the variance term is not positive (moments inconsistent with a
    distribution).
    """
    if n_obs < 2 or not math.isfinite(sr):
        return float("nan")
    denom = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if denom <= 0:
        return float("nan")
    z = (sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(denom)
    return _NORMAL.cdf(z)


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """SR0: the expected maximum per-period Sharpe of ``n_trials`` skill-less trials.

    ``sqrt(V) ((1 - gamma) Z^-1(1 - 1/N) + gamma Z^-1(1 - 1/(N e)))``; 0 for a single trial
    (nothing was selected).
    """
    if n_trials <= 1 or sr_variance <= 0:
        return 0.0
    n = float(n_trials)
    q = (1 - EULER_GAMMA) * _NORMAL.inv_cdf(1 - 1 / n) + EULER_GAMMA * _NORMAL.inv_cdf(
        1 - 1 / (n * math.e)
    )
    return float(math.sqrt(sr_variance) * q)


def deflated_sharpe_ratio(
    sr: float, n_obs: int, skew: float, kurtosis: float, n_trials: int, sr_variance: float
) -> float:
    """PSR of ``sr`` against SR0 of ``n_trials`` trials whose per-period Sharpe ratios have
    variance ``sr_variance``."""
    return probabilistic_sharpe_ratio(
        sr, expected_max_sharpe(n_trials, sr_variance), n_obs, skew, kurtosis
    )


@dataclass(frozen=True)
class PBOResult:
    """CSCV outcome. ``logits`` has one value per split (C(S, S/2) of them)."""

    pbo: float
    logits: np.ndarray
    blocks: int
    n_configs: int
    is_sharpe: np.ndarray  # per split: in-sample Sharpe of the in-sample winner
    oos_sharpe: np.ndarray  # per split: its out-of-sample Sharpe

    @property
    def n_splits(self) -> int:
        return int(self.logits.size)

    @property
    def prob_oos_loss(self) -> float:
        """Share of splits in which the in-sample winner loses money out of sample."""
        return float(np.mean(self.oos_sharpe < 0)) if self.oos_sharpe.size else float("nan")

    def as_dict(self) -> dict:
        return {
            "pbo": self.pbo, "blocks": self.blocks, "configs": self.n_configs,
            "splits": self.n_splits, "prob_oos_loss": self.prob_oos_loss,
            "logit_median": float(np.median(self.logits)) if self.logits.size else None,
        }


def _block_bounds(n_rows: int, blocks: int) -> np.ndarray:
    """Start index of each of ``blocks`` contiguous blocks (first ``n % blocks`` one longer)."""
    sizes = np.full(blocks, n_rows // blocks, dtype=np.int64)
    sizes[: n_rows % blocks] += 1
    return np.concatenate([[0], np.cumsum(sizes)])


def _sharpe_from_sums(total: np.ndarray, total_sq: np.ndarray, count: np.ndarray) -> np.ndarray:
    mean = total / count
    var = (total_sq - count * mean * mean) / (count - 1)
    sd = np.sqrt(np.clip(var, 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(sd > 1e-15 * np.maximum(np.abs(mean), 1e-300), mean / sd, 0.0)
    return np.where(np.isfinite(out), out, 0.0)


def pbo_cscv(returns: np.ndarray, blocks: int = 16) -> PBOResult:
    """Probability of Backtest Overfitting over ``returns`` (T rows x N configurations).

    The rows are cut into ``blocks`` (S, even) contiguous blocks; for every choice of S/2 blocks
    as in-sample, the configuration with the best in-sample Sharpe is ranked among all N by its
    Sharpe on the other S/2 blocks. Relative rank ``w = rank / (N + 1)`` (rank 1 = worst, ties
    averaged), logit ``ln(w / (1 - w))``; PBO is the share of splits with logit <= 0.
    """
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2:
        raise UsageError("PBO needs a 2-D matrix of returns (bars x configurations)")
    n_rows, n_cfg = m.shape
    if blocks < 2 or blocks % 2:
        raise UsageError(f"pbo.blocks {blocks}: expected an even number >= 2")
    if n_cfg < 2:
        raise UsageError(f"PBO needs at least 2 parameter sets, got {n_cfg}")
    if n_rows < 2 * blocks:
        raise UsageError(
            f"PBO with {blocks} blocks needs at least {2 * blocks} bars, got {n_rows}"
        )
    bounds = _block_bounds(n_rows, blocks)
    sums = np.add.reduceat(m, bounds[:-1], axis=0)  # S x N
    sums_sq = np.add.reduceat(m * m, bounds[:-1], axis=0)
    counts = np.diff(bounds).astype(np.float64)  # S
    combos = list(itertools.combinations(range(blocks), blocks // 2))
    mask = np.zeros((len(combos), blocks), dtype=np.float64)
    for i, combo in enumerate(combos):
        mask[i, list(combo)] = 1.0
    rest = 1.0 - mask
    is_sr = _sharpe_from_sums(mask @ sums, mask @ sums_sq, (mask @ counts)[:, None])
    oos_sr = _sharpe_from_sums(rest @ sums, rest @ sums_sq, (rest @ counts)[:, None])
    from scipy.stats import rankdata  # here only: workers never import scipy.stats

    best = np.argmax(is_sr, axis=1)
    ranks = rankdata(oos_sr, method="average", axis=1)
    rows = np.arange(len(combos))
    w = ranks[rows, best] / (n_cfg + 1)
    logits = np.log(w / (1 - w))
    return PBOResult(
        pbo=float(np.mean(logits <= 0)), logits=logits, blocks=blocks, n_configs=n_cfg,
        is_sharpe=is_sr[rows, best], oos_sharpe=oos_sr[rows, best],
    )


@dataclass(frozen=True)
class StabilityResult:
    """How the best parameter set's neighbours perform (objective values)."""

    best: int
    neighbours: list[int]
    best_score: float
    neighbour_median: float
    ratio: float  # neighbour median / best score (NaN when the best score is not positive)
    share_positive: float  # neighbours with a positive objective

    def as_dict(self) -> dict:
        return {
            "best": self.best, "neighbours": self.neighbours, "best_score": self.best_score,
            "neighbour_median": self.neighbour_median, "ratio": self.ratio,
            "share_positive": self.share_positive,
        }


def parameter_stability(coords: np.ndarray, scores: np.ndarray) -> StabilityResult:
    """Neighbours of the best-scoring set in index space, and how close they come to it.

    ``coords`` (N x d) holds each set's position in every dimension as the index of its value in
    that dimension's sorted list of values, so a grid neighbour is one step in one dimension
    (L1 distance 1). For random search the nearest sets by L1 distance are the neighbours. A
    sharp peak with poor neighbours is a sign of a fitted fluke.
    """
    c = np.asarray(coords, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    finite = np.where(np.isfinite(s), s, -np.inf)
    best = int(np.argmax(finite))
    dist = np.abs(c - c[best]).sum(axis=1)
    dist[best] = np.inf
    if c.shape[0] < 2 or not np.isfinite(dist).any():
        return StabilityResult(best, [], float(s[best]), float("nan"), float("nan"), float("nan"))
    nearest = float(dist.min())
    neighbours = [int(i) for i in np.flatnonzero(dist == nearest)]
    values = s[neighbours]
    values = values[np.isfinite(values)]
    median = float(np.median(values)) if values.size else float("nan")
    best_score = float(s[best])
    ratio = median / best_score if best_score > 0 and math.isfinite(median) else float("nan")
    share = float(np.mean(values > 0)) if values.size else float("nan")
    return StabilityResult(best, neighbours, best_score, median, ratio, share)
