"""The landmark logistic model a statistician would fit first: the yardstick for XGBoost."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.config import LogisticParams


class MedianImputer(TransformerMixin, BaseEstimator):
    """Median imputation plus missingness indicators: the transform of scikit-learn's
    `SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)`, value for
    value, computed with `np.nanmedian`.

    SimpleImputer takes its medians through NumPy masked arrays, which sort every column as
    objects of a masked array: about half the CPU time of fitting the whole baseline on a
    phase's landmark rows (README, "Measured performance"). Output columns: the features with
    NaN replaced by the column's training median (0 for a column with no observed value), then a
    0/1 indicator for each column that had a missing value in the training rows.
    """

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=np.float64)
        missing = np.isnan(X)
        observed = ~missing.all(axis=0)
        medians = np.zeros(X.shape[1])
        if observed.any():
            # column by column in memory (transposed): the same medians, 3x faster than along axis 0
            medians[observed] = np.nanmedian(np.ascontiguousarray(X[:, observed].T), axis=1)
        self.statistics_ = medians
        self.indicator_columns_ = np.flatnonzero(missing.any(axis=0))
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=np.float64)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} columns; the imputer was fitted on {self.n_features_in_}")
        missing = np.isnan(X)
        k = X.shape[1]
        out = np.empty((X.shape[0], k + self.indicator_columns_.size))  # filled in place: no stacked copies
        np.copyto(out[:, :k], X)
        np.copyto(out[:, :k], self.statistics_, where=missing)
        out[:, k:] = missing[:, self.indicator_columns_]
        return out


def make_logistic(params: LogisticParams, seed: int) -> Pipeline:
    """Median imputation plus missingness indicators, standardisation, L2 logistic regression.

    Columns with no observed value in the training rows are kept and imputed as 0, so the column
    count never changes between fit and predict; their indicator is constant and carries no
    weight after scaling. Fit with per-row weights as
    `fit(X, y, logisticregression__sample_weight=w)`.
    """
    return Pipeline(
        [
            ("impute", MedianImputer()),
            ("scale", StandardScaler()),
            ("logisticregression", LogisticRegression(C=params.C, max_iter=5000,
                                                      random_state=seed)),
        ]
    )


def baseline_risks(X_train, y_train, w_train, X_test, params: LogisticParams, seed: int) -> np.ndarray:
    """Risks for `X_test` from `make_logistic` fitted on the weighted training rows; the weighted
    event rate when those rows hold one class only (or none: 0)."""
    if y_train.size == 0 or y_train.min() == y_train.max():
        rate = float(np.average(y_train, weights=w_train)) if y_train.size else 0.0
        return np.full(X_test.shape[0], rate)
    model = make_logistic(params, seed)
    model.fit(X_train, y_train, logisticregression__sample_weight=w_train)
    return model.predict_proba(X_test)[:, 1]
