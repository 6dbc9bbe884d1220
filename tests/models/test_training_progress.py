"""The progress hook of `fit_phases`: one call per CV fold and one for the final fit."""

import numpy as np

from models.fits import PhaseData
from models.training import fit_phases
from tests.models.synthetic import small_model_config, synthetic_phase


def _fit_reporting(d, cfg):
    calls = []
    data = {"early": PhaseData(d["X"], d["y"], d["w"], d["groups"], np.full(d["y"].size, 30.0))}
    trained = fit_phases(data, d["feature_names"], cfg, on_fold=lambda done, total: calls.append((done, total)))
    return trained, calls


def test_each_fold_and_the_final_fit_are_reported_in_order():
    cfg = small_model_config(n_folds=2, bootstrap_samples=5, min_events=5)
    cfg = cfg.model_copy(update={"xgboost": cfg.xgboost.model_copy(update={"n_estimators": 10})})
    trained, calls = _fit_reporting(synthetic_phase(n_patients=80, rows_per_patient=2), cfg)
    total = cfg.n_folds + 1
    assert calls == [(k, total) for k in range(1, total + 1)]
    assert trained.shared is not None


def test_no_trainable_booster_reports_one_step():
    d = synthetic_phase(n_patients=60, intercept=-5, seed=1)
    trained, calls = _fit_reporting(d, small_model_config())
    assert trained.shared is None and calls == [(1, 1)]
