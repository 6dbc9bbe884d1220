"""Boosters that borrow strength across phases: one shared booster on every phase's rows, and
per-phase boosters that continue from its margin.

The shared booster sees all landmark rows with the day since intake as an extra column, so it
learns what is common to the phases (and how risk moves with time in treatment) from every
event. A phase booster starts from the shared margin (XGBoost `base_margin`) and is early-
stopped on the phase's own patient-grouped validation rows; when no added tree lowers that
validation loss it adds none, and the phase uses the shared booster alone. A phase booster is
trained with `base_score` 0.5 (log-odds 0), so without a base margin its output is the sum of
its own trees: the phase margin is `margin(shared) + margin(phase)`, and the exact TreeSHAP
values of the two boosters add up in the same way.
"""

from __future__ import annotations

import numpy as np
import xgboost

from models.config import XGBoostParams
from models.folds import grouped_validation_split
from models.link import sigmoid
from models.phase_model import Rows, fit_booster

# Shrinkage for few events per predictor: regularisation grows as target_epv / epv, capped.
MAX_SHRINK = 20.0


def informative_columns(X: np.ndarray) -> np.ndarray:
    """Boolean mask of columns with at least two distinct observed values in these rows.

    All-missing and constant columns carry no information: they are not candidate predictors
    and do not count in events per predictor.
    """
    X = np.asarray(X, dtype=np.float64)
    observed = ~np.isnan(X)
    lo = np.where(observed, X, np.inf).min(axis=0, initial=np.inf)
    hi = np.where(observed, X, -np.inf).max(axis=0, initial=-np.inf)
    return observed.any(axis=0) & (hi > lo)


def shrunk_params(params: XGBoostParams, epv: float, target_epv: float) -> XGBoostParams:
    """Stronger regularisation where events per predictor fall below `target_epv`.

    The L2 penalty and minimum child weight are multiplied by target_epv / epv (at most
    MAX_SHRINK), so a phase with a tenth of the events it would need gets leaves ten times as
    heavily shrunk and needs ten times the weight to split: it can still add trees, but only
    where its own data speak loudly. At or above the target nothing changes.
    """
    if target_epv <= 0 or epv >= target_epv:
        return params
    factor = min(MAX_SHRINK, target_epv / max(epv, 1e-9))
    return params.model_copy(update={"reg_lambda": max(params.reg_lambda, 1.0) * factor,
                                     "min_child_weight": max(params.min_child_weight, 1.0) * factor})


def weighted_logloss(y: np.ndarray, m: np.ndarray, w: np.ndarray) -> float:
    """Weighted mean log-loss of margins `m` (log-odds) against 0/1 labels."""
    p = np.clip(sigmoid(m), 1e-15, 1 - 1e-15)
    return float(-np.sum(w * (y * np.log(p) + (1 - y) * np.log1p(-p))) / np.sum(w))


def fit_shared(X, y, w, groups, params: XGBoostParams, seed: int, validation_fraction: float
               ) -> tuple[xgboost.Booster, int]:
    """Early-stop on a patient-grouped validation split, then refit all rows with best+1 rounds."""
    val = grouped_validation_split(groups, validation_fraction, seed, events=y)
    _, history = fit_booster(params, seed, Rows(X[~val], y[~val], w[~val]), validation=Rows(X[val], y[val], w[val]))
    rounds = int(np.argmin(history)) + 1
    final, _ = fit_booster(params, seed, Rows(X, y, w), rounds=rounds)
    return final, rounds


def fit_continuation(X, y, w, groups, base_margin, params: XGBoostParams, seed: int,
                     validation_fraction: float) -> tuple[xgboost.Booster | None, int]:
    """A phase booster continuing from `base_margin`, or None when no tree helps.

    Early stopping watches the weighted log-loss on the phase's held-out patients; the number
    of trees kept is the best round's, or zero when the shared margin alone (no added tree)
    has the lowest validation loss. The booster is refitted on all rows with that many trees.
    """
    val = grouped_validation_split(groups, validation_fraction, seed, events=y)
    if y[~val].min() == y[~val].max() or y[val].min() == y[val].max():
        return None, 0
    _, history = fit_booster(params, seed, Rows(X[~val], y[~val], w[~val], base_margin[~val]),
                             validation=Rows(X[val], y[val], w[val], base_margin[val]), base_score=0.5)
    no_trees = weighted_logloss(y[val], base_margin[val], w[val])
    best = int(np.argmin(history))
    if not history[best] < no_trees - 1e-9:
        return None, 0
    final, _ = fit_booster(params, seed, Rows(X, y, w, base_margin), rounds=best + 1, base_score=0.5)
    return final, best + 1
