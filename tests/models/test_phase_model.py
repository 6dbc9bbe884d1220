"""Unit tests: the XGBoost factory and the constant-rate fallback."""

import numpy as np
import pytest

from models.phase_model import N_JOBS, ConstantRisk, make_classifier
from tests.models.synthetic import small_model_config, synthetic_phase


def test_classifier_settings_come_from_config():
    params = small_model_config().xgboost
    clf = make_classifier(params, seed=3, early_stopping=True)
    got = clf.get_params()
    assert got["objective"] == "binary:logistic"
    assert got["tree_method"] == "hist"
    assert got["eval_metric"] == "logloss"
    assert got["n_jobs"] == N_JOBS
    assert got["random_state"] == 3
    assert got["max_depth"] == params.max_depth
    assert got["early_stopping_rounds"] == params.early_stopping_rounds
    assert np.isnan(got["missing"])
    assert make_classifier(params, 3, early_stopping=False).get_params()[
        "early_stopping_rounds"] is None
    assert make_classifier(params, 3, False, n_estimators=7).get_params()["n_estimators"] == 7


def test_same_seed_gives_identical_booster_bytes():
    d = synthetic_phase(n_patients=150)
    params = small_model_config().xgboost

    def train() -> bytes:
        clf = make_classifier(params, seed=11, early_stopping=False)
        clf.fit(d["X"], d["y"], sample_weight=d["w"])
        return bytes(clf.get_booster().save_raw("ubj"))

    assert train() == train()


def test_constant_risk_predicts_the_weighted_event_rate():
    y = np.array([0, 0, 1, 1])
    w = np.array([3.0, 1.0, 1.0, 1.0])
    model = ConstantRisk().fit(None, y, sample_weight=w)
    assert model.rate_ == pytest.approx(2 / 6)
    proba = model.predict_proba(np.zeros((3, 2)))
    np.testing.assert_allclose(proba, [[2 / 3, 1 / 3]] * 3)
