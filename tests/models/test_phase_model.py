"""Unit tests: fitting one booster from config through XGBoost's native API."""

import numpy as np

from models.phase_model import N_JOBS, Rows, booster_params, fit_booster
from tests.models.synthetic import small_model_config, synthetic_phase


def test_booster_settings_come_from_config():
    params = small_model_config().xgboost
    got = booster_params(params, seed=3)
    assert got["objective"] == "binary:logistic" and got["tree_method"] == "hist"
    assert got["nthread"] == N_JOBS and got["seed"] == 3
    assert got["max_depth"] == params.max_depth and got["learning_rate"] == params.learning_rate
    assert "base_score" not in got and booster_params(params, 3, base_score=0.5)["base_score"] == 0.5


def _rows(d, part=slice(None)):
    return Rows(d["X"][part], d["y"][part], d["w"][part])


def test_same_seed_gives_identical_booster_bytes():
    d = synthetic_phase(n_patients=150)
    params = small_model_config().xgboost

    def train() -> bytes:
        booster, _ = fit_booster(params, 11, _rows(d), rounds=20)
        return bytes(booster.save_raw("ubj"))

    assert train() == train()


def test_early_stopping_keeps_rounds_past_the_best_and_reports_the_weighted_validation_loss():
    d = synthetic_phase(n_patients=300)
    params = small_model_config().xgboost.model_copy(update={"n_estimators": 400, "early_stopping_rounds": 5,
                                                             "learning_rate": 0.5})
    n = d["y"].size
    train, val = slice(0, n // 2), slice(n // 2, n)
    booster, history = fit_booster(params, 1, _rows(d, train), validation=_rows(d, val))
    assert booster.num_boosted_rounds() == history.size < 400  # stopped early, every grown tree kept
    assert history.size - 1 - int(np.argmin(history)) == params.early_stopping_rounds
    p = np.clip(booster.predict(_rows(d, val).dmatrix()), 1e-16, 1 - 1e-16)
    y, w = d["y"][val], d["w"][val]
    expected = -np.sum(w * (y * np.log(p) + (1 - y) * np.log1p(-p))) / w.sum()
    assert history[-1] == np.float32(expected) or abs(history[-1] - expected) < 1e-5


def test_a_base_margin_is_the_starting_point_of_a_continuing_booster():
    d = synthetic_phase(n_patients=150)
    params = small_model_config().xgboost
    start = np.full(d["y"].size, -1.3)
    rows = Rows(d["X"], d["y"], d["w"], start)
    booster, _ = fit_booster(params, 2, rows, rounds=3, base_score=0.5)
    with_start = booster.predict(rows.dmatrix(), output_margin=True)
    alone = booster.predict(Rows(d["X"], d["y"], d["w"]).dmatrix(), output_margin=True)
    np.testing.assert_allclose(with_start - alone, -1.3, atol=1e-5)  # base_score 0.5: trees only, no offset
