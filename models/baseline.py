"""The landmark logistic model a statistician would fit first: the yardstick for XGBoost."""

from __future__ import annotations

from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.config import LogisticParams


def make_logistic(params: LogisticParams, seed: int) -> Pipeline:
    """Median imputation plus missingness indicators, standardisation, L2 logistic regression.

    Columns with no observed value in the training rows are kept and imputed as 0
    (`keep_empty_features`), so the column count never changes between fit and predict; their
    indicator is constant and carries no weight after scaling. Fit with per-row weights as
    `fit(X, y, logisticregression__sample_weight=w)`.
    """
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True,
                                     keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("logisticregression", LogisticRegression(C=params.C, max_iter=5000,
                                                      random_state=seed)),
        ]
    )
