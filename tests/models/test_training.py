"""Unit and behavioural tests: fitting one phase."""

import numpy as np
import pytest

from models.metrics import evaluate
from models.phase_model import ConstantRisk
from models.training import fit_phase
from tests.models.synthetic import small_model_config, synthetic_phase

# shares the session fixture's one expensive build with the other tests of its group
pytestmark = pytest.mark.xdist_group("fitted_phase")


def _fit(d, cfg, phase="early"):
    return fit_phase(d["X"], d["y"], d["w"], d["groups"], d["feature_names"], cfg, phase)


def test_fit_reports_counts_predictions_and_metrics(fitted_phase, phase_data):
    fit, n = fitted_phase, phase_data["y"].size
    assert (fit.n_rows, fit.n_patients) == (n, 300)
    assert fit.n_events == int(phase_data["y"].sum())
    assert fit.epv == pytest.approx(fit.n_event_patients / 6)
    for oof in (fit.oof_model, fit.oof_raw, fit.oof_baseline):
        assert oof.shape == (n,) and np.all((oof > 0) & (oof < 1))
    assert set(fit.metrics) == {"xgboost_raw", "xgboost_calibrated", "logistic_baseline"}
    assert fit.fallback is None and fit.fallback_rate is None and fit.warnings == []


def test_the_model_learns_the_signal(fitted_phase):
    # minimum functionality: the synthetic signal is strong
    assert fitted_phase.metrics["xgboost_raw"]["auroc"][0] > 0.75
    assert fitted_phase.metrics["logistic_baseline"]["auroc"][0] > 0.75


def test_final_booster_has_the_early_stopped_number_of_rounds(fitted_phase):
    assert fitted_phase.booster.num_boosted_rounds() == fitted_phase.best_iteration + 1
    assert len(fitted_phase.fold_best_iterations) == 3


def test_folds_keep_patients_together(fitted_phase, phase_data):
    for g in np.unique(phase_data["groups"])[:50]:
        assert np.unique(fitted_phase.folds[phase_data["groups"] == g]).size == 1


def test_calibrated_metrics_are_cross_fitted(fitted_phase, phase_data, model_config):
    d = phase_data
    reported = fitted_phase.metrics["xgboost_calibrated"]
    again = evaluate(d["y"], fitted_phase.oof_model, d["w"], d["groups"],
                     model_config.bootstrap_samples, model_config.seed)
    assert reported == again
    # the shipped calibrator saw every OOF prediction, so applying it in-sample differs
    in_sample = fitted_phase.calibrator.predict(fitted_phase.oof_raw)
    assert not np.allclose(in_sample, fitted_phase.oof_model)


def test_training_is_deterministic(phase_data, model_config, fitted_phase):
    again = _fit(phase_data, model_config)
    assert bytes(again.booster.save_raw("ubj")) == bytes(fitted_phase.booster.save_raw("ubj"))
    np.testing.assert_array_equal(again.oof_raw, fitted_phase.oof_raw)
    assert again.metrics == fitted_phase.metrics


def test_few_events_fall_back_to_the_observed_rate_with_a_warning():
    d = synthetic_phase(n_patients=60, intercept=-5, seed=1)
    assert 0 < d["y"].sum() < 20
    fit = _fit(d, small_model_config(), "acute")
    assert isinstance(fit.fallback, ConstantRisk) and fit.booster is None
    assert fit.fallback_rate == pytest.approx(np.average(d["y"], weights=d["w"]))
    assert fit.best_iteration is None and fit.calibrator is None
    assert any("acute" in w and "min_events" in w for w in fit.warnings)
    assert fit.metrics["constant_rate"]["auroc"][0] == 0.5


def test_a_single_class_falls_back_without_raising():
    d = synthetic_phase(n_patients=40)
    d["y"] = np.zeros_like(d["y"])
    fit = _fit(d, small_model_config(min_events=1), "maintenance")
    assert fit.fallback_rate == 0.0
    assert "one outcome class" in fit.warnings[0]


def test_low_events_per_predictor_is_warned():
    d = synthetic_phase(n_patients=300)
    fit = _fit(d, small_model_config(low_epv_warning=1000))
    assert fit.booster is not None
    assert any("EPV" in w for w in fit.warnings)


def test_platt_calibration_is_supported(phase_data):
    fit = _fit(phase_data, small_model_config(calibration="platt", bootstrap_samples=0))
    assert fit.calibrator.method == "platt"


@pytest.mark.parametrize(
    ("change", "message"),
    [({"y": np.full(1200, 0.5)}, "0/1"), ({"w": np.zeros(1200)}, "positive"),
     ({"feature_names": ["a"]}, "columns")],
)
def test_invalid_inputs_are_rejected(phase_data, model_config, change, message):
    with pytest.raises(ValueError, match=message):
        _fit(phase_data | change, model_config)
