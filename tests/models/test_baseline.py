"""Unit tests: the landmark logistic baseline."""

import warnings

import numpy as np

from models.baseline import baseline_risks, make_logistic
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


def test_median_imputer_transforms_exactly_as_sklearns_simple_imputer():
    from sklearn.impute import SimpleImputer

    from models.baseline import MedianImputer

    d = synthetic_phase(n_patients=200)
    X = d["X"].copy()
    rng = np.random.default_rng(3)
    X[rng.random(X.shape) < 0.3] = np.nan
    X[:, 2] = np.nan  # no observed value
    X[:, 4] = X[0, 4] if not np.isnan(X[0, 4]) else 1.0  # observed everywhere: no indicator
    fit_rows, new_rows = X[: X.shape[0] // 2], X[X.shape[0] // 2:]
    reference = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True).fit(fit_rows)
    ours = MedianImputer().fit(fit_rows)
    for rows in (fit_rows, new_rows):
        assert np.array_equal(ours.transform(rows), reference.transform(rows))


def test_baseline_risks_of_one_class_are_the_weighted_event_rate():
    X = np.random.default_rng(0).normal(size=(6, 2))
    risks = baseline_risks(X[:4], np.ones(4), np.array([1.0, 2.0, 1.0, 1.0]), X[4:], LogisticParams(C=0.1), seed=0)
    assert risks.tolist() == [1.0, 1.0]
    assert baseline_risks(X[:0], np.zeros(0), np.ones(0), X[4:], LogisticParams(C=0.1), seed=0).tolist() == [0.0, 0.0]
    y = np.array([1.0, 0.0, 1.0, 0.0])
    fitted = baseline_risks(X[:4], y, np.ones(4), X[4:], LogisticParams(C=0.1), seed=0)
    assert fitted.shape == (2,) and ((fitted > 0) & (fitted < 1)).all()
