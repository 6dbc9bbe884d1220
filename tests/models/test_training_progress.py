"""The progress hook of `fit_phase`: one call per CV fold and one for the final fit."""

from models.training import fit_phase
from tests.models.synthetic import small_model_config, synthetic_phase


def _fit_reporting(d, cfg, phase):
    calls = []
    fit = fit_phase(d["X"], d["y"], d["w"], d["groups"], d["feature_names"], cfg, phase,
                    on_fold=lambda done, total: calls.append((done, total)))
    return fit, calls


def test_each_fold_and_the_final_fit_are_reported_in_order():
    cfg = small_model_config(n_folds=2, bootstrap_samples=5, min_events=5)
    cfg = cfg.model_copy(update={"xgboost": cfg.xgboost.model_copy(update={"n_estimators": 10})})
    fit, calls = _fit_reporting(synthetic_phase(n_patients=80, rows_per_patient=2), cfg, "early")
    total = cfg.n_folds + 1
    assert calls == [(k, total) for k in range(1, total + 1)]
    assert fit.booster is not None


def test_a_fallback_reports_one_step():
    d = synthetic_phase(n_patients=60, intercept=-5, seed=1)
    fit, calls = _fit_reporting(d, small_model_config(), "acute")
    assert fit.booster is None and calls == [(1, 1)]
