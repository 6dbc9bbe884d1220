"""Fitting one XGBoost booster from validated config, through XGBoost's own training API.

The native API rather than the scikit-learn wrapper, for speed: the wrapper builds its
validation set as a `QuantileDMatrix`, and XGBoost then re-predicts that set through every tree
at every boosting round; with a plain `DMatrix` the round's evaluation is incremental. Early
stopping on the validation set made fitting about three times slower through the wrapper in our
measurements (README, "Measured performance").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xgboost

from models.config import XGBoostParams

# One thread, fixed. XGBoost's floating-point sums depend on how rows are split across
# threads, so a fixed count keeps a trained booster byte-identical on every machine. One rather
# than several because OpenMP threads spin-wait: when the CPU is shared (pytest -n 2, busy CI
# runners, several phases trained in parallel) two threads per fit ran 10-100x slower in our
# measurements, while one thread is never more than ~2x slower than two on an idle machine.
N_JOBS = 1


def booster_params(params: XGBoostParams, seed: int, base_score: float | None = None) -> dict:
    """XGBoost training parameters: binary log-loss, hist trees, one thread, this seed.

    `base_score` fixes the starting probability (0.5 for boosters that continue from a given
    base margin, so that their own output is the sum of their trees); None lets XGBoost
    estimate it from the labels.
    """
    out = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "eval_metric": "logloss",
        "learning_rate": params.learning_rate,
        "max_depth": params.max_depth,
        "min_child_weight": params.min_child_weight,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "reg_lambda": params.reg_lambda,
        "reg_alpha": params.reg_alpha,
        "seed": seed,
        "nthread": N_JOBS,
        "verbosity": 0,
    }
    if base_score is not None:
        out["base_score"] = base_score
    return out


@dataclass(frozen=True)
class Rows:
    """Rows to fit or to validate on: features (NaN = missing), 0/1 labels, weights and an
    optional per-row starting margin (log-odds; replaces the base score when given)."""

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray
    base_margin: np.ndarray | None = None

    def dmatrix(self) -> xgboost.DMatrix:
        return xgboost.DMatrix(self.X, label=self.y, weight=self.w, base_margin=self.base_margin,
                               missing=np.nan, nthread=N_JOBS)


def fit_booster(params: XGBoostParams, seed: int, train: Rows, rounds: int | None = None,
                validation: Rows | None = None, base_score: float | None = None
                ) -> tuple[xgboost.Booster, np.ndarray]:
    """A booster fitted on `train` for `rounds` rounds (default `params.n_estimators`), and the
    weighted validation log-loss after each round (empty without `validation`).

    With `validation`, fitting stops after `params.early_stopping_rounds` rounds without a lower
    validation log-loss; the booster then holds every tree grown, best or not (the caller refits
    with the number of rounds it chooses from the history).
    """
    history: dict = {}
    dtrain = train.dmatrix()
    evals = [(validation.dmatrix(), "validation")] if validation is not None else []
    booster = xgboost.train(
        booster_params(params, seed, base_score), dtrain,
        num_boost_round=params.n_estimators if rounds is None else rounds,
        evals=evals, evals_result=history, verbose_eval=False,
        early_stopping_rounds=params.early_stopping_rounds if validation is not None else None,
    )
    losses = np.asarray(history["validation"]["logloss"]) if validation is not None else np.empty(0)
    return booster, losses
