"""The per-phase model: a stock `XGBClassifier` built from validated config, and the
constant-rate fallback used where a phase has too few events to learn from."""

from __future__ import annotations

import numpy as np
from xgboost import XGBClassifier

from models.config import XGBoostParams

# One thread, fixed. XGBoost's floating-point sums depend on how rows are split across
# threads, so a fixed count keeps a trained booster byte-identical on every machine. One rather
# than several because OpenMP threads spin-wait: when the CPU is shared (pytest -n 2, busy CI
# runners, several phases trained in parallel) two threads per fit ran 10-100x slower in our
# measurements, while one thread is never more than ~2x slower than two on an idle machine.
N_JOBS = 1


def make_classifier(
    params: XGBoostParams, seed: int, early_stopping: bool, n_estimators: int | None = None,
    base_score: float | None = None,
) -> XGBClassifier:
    """An unfitted binary `XGBClassifier` (log-loss, hist trees, NaN = missing).

    With `early_stopping`, `fit` must be given an `eval_set`; training stops after
    `params.early_stopping_rounds` rounds without improvement in its log-loss.
    `n_estimators` overrides `params.n_estimators` (used to refit with a chosen round count);
    `base_score` fixes the starting probability (0.5 for boosters that continue from a given
    base margin, so their own output is the sum of their trees).
    """
    return XGBClassifier(
        objective="binary:logistic",
        tree_method="hist",
        eval_metric="logloss",
        missing=np.nan,
        n_estimators=params.n_estimators if n_estimators is None else n_estimators,
        learning_rate=params.learning_rate,
        max_depth=params.max_depth,
        min_child_weight=params.min_child_weight,
        subsample=params.subsample,
        colsample_bytree=params.colsample_bytree,
        reg_lambda=params.reg_lambda,
        reg_alpha=params.reg_alpha,
        early_stopping_rounds=params.early_stopping_rounds if early_stopping else None,
        random_state=seed,
        n_jobs=N_JOBS,
        verbosity=0,
        base_score=base_score,
    )


class ConstantRisk:
    """Predicts the (weighted) observed event rate for every row: the few-events fallback.

    >>> ConstantRisk().fit(None, np.array([0, 0, 1, 1]), np.array([3.0, 1.0, 1.0, 1.0])).rate_
    0.3333333333333333
    """

    def fit(
        self, X: np.ndarray | None, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> ConstantRisk:
        y = np.asarray(y, dtype=np.float64)
        if y.size == 0:
            raise ValueError("ConstantRisk needs at least one row")
        w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, np.float64)
        self.rate_ = float(np.sum(w * y) / np.sum(w))
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Two columns like a classifier: P(y=0), P(y=1)."""
        n = len(X)
        return np.column_stack([np.full(n, 1.0 - self.rate_), np.full(n, self.rate_)])
