"""Validation layer: is a backtested edge real? ``validator.StrategyValidator`` runs walk-forward
folds (``splits``) over a parameter space (``param_space``), Monte Carlo (``montecarlo``), PBO and
the deflated Sharpe ratio (``overfitting``) and gives a verdict (``verdict``), configured by
``configs/validation.yaml`` (``config``). Evaluations run through an executor (``executor``;
``cluster``: a Dask cluster and the ``--executor`` option) and are checkpointed
(``checkpoint``) so a killed run resumes; ``backtest_evaluator`` scores a parameter set with the
backtester; ``sweep`` is ``backtest --sweep``."""

from typing import TYPE_CHECKING

from botclave_cli.lazy import lazy_names

if TYPE_CHECKING:
    from botclave_cli.validate.validator import StrategyValidator

__all__ = ["StrategyValidator"]
__getattr__, __dir__ = lazy_names(__name__, {
    "StrategyValidator": "botclave_cli.validate.validator",
})
