"""Censoring weights that can see the patient: a landmark censoring model on the covariates.

The Kaplan–Meier weights of the landmark table (features/landmarks.py) assume drop-out is the
same for everyone at risk on a day. When drop-out depends on what the features measure (missed
sessions, unstable housing), those who stay are not like those who leave, and KM weights leave
that bias in. This model estimates, for each landmark row, the probability of being censored
within the horizon from the row's features and its day since intake:

    c(x, t) = P(follow-up ends inside (t, t+h) without relapse | at risk at t, x),

a penalised logistic regression (models/baseline.py) fitted on the rows whose horizon status is
known: censored rows (1) and rows followed through the horizon without relapse (0). Rows with a
relapse are left out of the fit (their censoring over the rest of the horizon is unobserved).
Within the horizon the censoring hazard is taken as constant, so a row seen through day s of
its window (days t+1 … s−1 must be uncensored, as for the KM weight Ĝ(t)/Ĝ(s−)) stays
uncensored with probability (1 − c)^((s−1−t)/(h−1)); its weight is the inverse. Weights are
truncated at their `truncate_quantile` (e.g. the 99th percentile) so a few rows predicted almost
certain to drop out cannot dominate the fit.
"""

from __future__ import annotations

import numpy as np

from models.baseline import make_logistic
from models.config import LogisticParams

# The censoring model is a sensitivity analysis beside the KM weights on every training run:
# it is fitted on at most this many rows (a seeded random subset) to keep training fast.
MAX_FIT_ROWS = 200_000


def censoring_probability(X: np.ndarray, censored: np.ndarray, label: np.ndarray, params: LogisticParams,
                          seed: int) -> np.ndarray:
    """c(x, t) for every row of X (features and day): P(censored inside the horizon).

    `censored` is a boolean per row; `label` is 1 (relapse), 0 or NaN (censored). A cohort in
    which nobody or everybody with a known status is censored gets that constant rate. At most
    MAX_FIT_ROWS rows with a known status are used for the fit.
    """
    X = np.asarray(X, dtype=np.float64)
    censored = np.asarray(censored, dtype=bool)
    known = censored | (np.nan_to_num(np.asarray(label, dtype=np.float64), nan=-1.0) == 0)
    target = censored[known].astype(np.float64)
    if target.size == 0 or target.min() == target.max():
        rate = float(target.mean()) if target.size else 0.0
        return np.full(X.shape[0], rate)
    rows = np.flatnonzero(known)
    if rows.size > MAX_FIT_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_FIT_ROWS, replace=False))
    model = make_logistic(params, seed)
    model.fit(X[rows], censored[rows].astype(np.float64))
    return model.predict_proba(X)[:, 1]


def model_weights(c: np.ndarray, seen_days: np.ndarray, horizon: int, truncate_quantile: float) -> np.ndarray:
    """Inverse probability of staying uncensored through each uncensored row's window.

    `c` is the censoring probability over the horizon (censoring_probability); `seen_days` is
    s − t, with s the relapse day for a relapse row and t + h for a row followed through.
    Weights are truncated at the `truncate_quantile` of their own distribution.
    """
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0 - 1e-6)
    exposure = np.clip((np.asarray(seen_days, dtype=np.float64) - 1.0) / max(horizon - 1, 1), 0.0, 1.0)
    weights = (1.0 - c) ** (-exposure)
    if weights.size and truncate_quantile < 1.0:
        weights = np.minimum(weights, np.quantile(weights, truncate_quantile))
    return weights


def weighted_event_rate(y: np.ndarray, w: np.ndarray) -> float:
    """The weighted observed event rate, NaN on no rows."""
    y, w = np.asarray(y, dtype=np.float64), np.asarray(w, dtype=np.float64)
    return float(np.sum(w * y) / np.sum(w)) if y.size else float("nan")
