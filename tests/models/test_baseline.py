"""Unit tests: the landmark logistic baseline."""

import warnings

import numpy as np

from models.baseline import make_logistic
from models.config import LogisticParams
from tests.models.synthetic import synthetic_phase


def test_handles_missing_values_and_all_missing_columns_without_warnings():
    d = synthetic_phase(n_patients=100)
    X = d["X"].copy()
    X[:, 3] = np.nan
    model = make_logistic(LogisticParams(C=0.1), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, d["y"], logisticregression__sample_weight=d["w"])
        p = model.predict_proba(X)[:, 1]
    assert p.shape == (X.shape[0],)
    assert np.all((p > 0) & (p < 1))


def test_learns_the_direction_of_the_signal():
    d = synthetic_phase(n_patients=300)
    model = make_logistic(LogisticParams(C=1.0), seed=0)
    model.fit(d["X"], d["y"], logisticregression__sample_weight=d["w"])
    coef = model.named_steps["logisticregression"].coef_[0]
    assert coef[0] > 0 and coef[1] < 0  # risk rises with f0 and falls with f1


def test_sample_weights_change_the_fit():
    d = synthetic_phase(n_patients=100)
    a = make_logistic(LogisticParams(C=1.0), 0).fit(d["X"], d["y"])
    w = np.where(d["X"][:, 0] > 0, 5.0, 1.0)
    b = make_logistic(LogisticParams(C=1.0), 0).fit(
        d["X"], d["y"], logisticregression__sample_weight=w)
    assert not np.allclose(a.predict_proba(d["X"]), b.predict_proba(d["X"]))
