"""Fitting every phase at once: shared booster, phase boosters from its margin, phase status."""

import numpy as np
import pytest

from models.boosting import fit_continuation, informative_columns, shrunk_params
from models.explain import margin
from models.fits import PhaseData, with_day
from models.metrics import evaluate
from models.training import fit_phases
from tests.models.synthetic import small_model_config, synthetic_phase

# shares the session fixture's one expensive build with the other tests of its group
pytestmark = pytest.mark.xdist_group("fitted_phase")


def _data(d, day=30.0, prefix=""):
    return PhaseData(d["X"], d["y"], d["w"], np.array([prefix + g for g in d["groups"]]), np.full(d["y"].size, day))


def test_fit_reports_counts_status_predictions_and_metrics(trained, phases_data):
    early = phases_data["phases"]["early"]
    fit = trained.fits["early"]
    assert (fit.n_rows, fit.n_patients) == (early.y.size, 300)
    assert fit.n_events == int(early.y.sum()) and fit.n_predictors == 6
    assert fit.epv == pytest.approx(fit.n_event_patients / 6)
    for oof in (fit.oof_model, fit.oof_raw, fit.oof_baseline):
        assert oof.shape == (early.y.size,) and np.all((oof > 0) & (oof < 1))
    assert set(fit.metrics) == {"xgboost_calibrated", "logistic_baseline"}
    assert trained.shared is not None and trained.shared.num_boosted_rounds() == trained.shared_trees
    assert [f.status for f in trained.fits.values()] in (["phase_model", "phase_model", "no_data"],
                                                         ["phase_model", "shared", "no_data"])


def test_the_model_learns_the_signal(trained):
    for phase in ("acute", "early"):
        assert trained.fits[phase].metrics["xgboost_calibrated"]["auroc"][0] > 0.75


def test_a_phase_with_its_own_signal_adds_trees_from_the_shared_margin(trained, phases_data):
    acute = trained.fits["acute"]
    assert acute.status == "phase_model" and acute.added_trees == acute.booster.num_boosted_rounds() > 0
    assert len(acute.fold_added_trees) == 3


def test_an_empty_phase_is_reported_not_raised(trained):
    late = trained.fits["late"]
    assert late.status == "no_data" and late.n_rows == 0 and late.booster is None and late.calibrator is None
    assert "no at-risk rows" in late.warnings[0] and late.metrics == {}


def test_few_events_borrow_strength_from_the_shared_booster():
    rich = synthetic_phase(n_patients=300, seed=0)
    sparse = synthetic_phase(n_patients=60, intercept=-4.5, seed=1)
    assert 0 < sparse["y"].sum() < 20
    cfg = small_model_config(bootstrap_samples=0)
    out = fit_phases({"acute": _data(sparse, 7.0, "s"), "early": _data(rich)}, rich["feature_names"], cfg)
    fit = out.fits["acute"]
    assert fit.status == "shared" and fit.booster is None and fit.added_trees == 0
    assert any("acute" in w and "min_events" in w and "borrows strength" in w for w in fit.warnings)
    # a real model, not a rate: the shared booster ranks the sparse phase's rows
    assert np.unique(fit.oof_raw).size > 10
    assert fit.calibrator is not out.fits["early"].calibrator  # the pooled calibrator, not early's own


def test_a_single_class_phase_borrows_without_raising():
    rich = synthetic_phase(n_patients=300, seed=0)
    quiet = synthetic_phase(n_patients=40, seed=2)
    quiet["y"] = np.zeros_like(quiet["y"])
    out = fit_phases({"early": _data(rich), "late": _data(quiet, 400.0, "q")}, rich["feature_names"],
                     small_model_config(bootstrap_samples=0))
    late = out.fits["late"]
    assert late.status == "shared" and "one outcome class" in late.warnings[0] and late.metrics == {}
    assert np.all((late.oof_model > 0) & (late.oof_model < 1))


def test_too_few_events_overall_fall_back_to_rates_per_phase():
    sparse = synthetic_phase(n_patients=60, intercept=-5, seed=1)
    out = fit_phases({"acute": _data(sparse)}, sparse["feature_names"], small_model_config())
    fit = out.fits["acute"]
    assert out.shared is None and fit.status == "constant"
    assert fit.fallback_rate == pytest.approx(np.average(sparse["y"], weights=sparse["w"]))
    assert fit.metrics["constant_rate"]["auroc"][0] == 0.5


def test_a_constant_phase_with_few_events_borrows_the_pooled_rate_not_its_own_zero():
    sparse = synthetic_phase(n_patients=60, intercept=-5, seed=1)
    lone = synthetic_phase(n_patients=1, seed=3)  # one patient followed into the late phase, no event
    lone["y"] = np.zeros_like(lone["y"])
    out = fit_phases({"acute": _data(sparse), "late": _data(lone, 400.0, "q")}, sparse["feature_names"],
                     small_model_config())
    late = out.fits["late"]
    pooled = np.average(np.concatenate([sparse["y"], lone["y"]]), weights=np.concatenate([sparse["w"], lone["w"]]))
    assert late.status == "constant" and late.fallback_rate == pytest.approx(pooled) and pooled > 0
    assert "event rate of all phases" in late.warnings[0] and "fewer than min_events" in late.warnings[0]


def test_calibrated_metrics_are_cross_fitted(trained, phases_data, model_config):
    d, fit = phases_data["phases"]["early"], trained.fits["early"]
    again = evaluate(d.y, fit.oof_model, d.w, d.groups, model_config.bootstrap_samples, model_config.seed)
    assert fit.metrics["xgboost_calibrated"] == again
    assert not np.allclose(fit.calibrator.predict(fit.oof_raw), fit.oof_model)


def test_training_is_deterministic():
    d = synthetic_phase(n_patients=120, seed=5)
    cfg = small_model_config(bootstrap_samples=0, n_folds=2)
    a, b = (fit_phases({"early": _data(d)}, d["feature_names"], cfg) for _ in range(2))
    assert bytes(a.shared.save_raw("ubj")) == bytes(b.shared.save_raw("ubj"))
    np.testing.assert_array_equal(a.fits["early"].oof_raw, b.fits["early"].oof_raw)


def test_continuation_learns_only_what_the_base_margin_misses():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 3))
    base = -1.0 + 1.5 * X[:, 0]
    y = (rng.random(3000) < 1 / (1 + np.exp(-base))).astype(float)
    groups = np.repeat(np.arange(1000), 3).astype(str)
    params = small_model_config().xgboost
    booster, trees = fit_continuation(X, y, np.ones(3000), groups, base, params, 1, 0.2)
    added = margin(booster, X) if booster is not None else np.zeros(3000)
    assert np.std(added) < 0.2 * np.std(base)  # at most noise on top of a right margin
    booster, trees = fit_continuation(X, y, np.ones(3000), groups, np.full(3000, -1.0), params, 1, 0.2)
    assert trees > 0 and np.corrcoef(margin(booster, X), X[:, 0])[0, 1] > 0.8


def test_continuation_adds_no_tree_when_none_lowers_the_validation_loss():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 2))
    y = (rng.random(600) < 0.3).astype(float)
    groups = np.arange(600).astype(str)
    base = np.full(600, np.log(y.mean() / (1 - y.mean())))
    # no split is allowed and the base is the event rate: a tree cannot change the loss
    params = small_model_config().xgboost.model_copy(update={"min_child_weight": 1e9, "subsample": 1.0})
    assert fit_continuation(X, y, np.ones(600), groups, base, params, 1, 0.2) == (None, 0)


def test_few_events_per_predictor_shrink_the_phase_booster():
    params = small_model_config().xgboost
    assert shrunk_params(params, 12.0, 10.0) == params
    shrunk = shrunk_params(params, 1.0, 10.0)
    assert shrunk.reg_lambda == pytest.approx(10 * params.reg_lambda)
    assert shrunk.min_child_weight == pytest.approx(10 * params.min_child_weight)
    assert shrunk_params(params, 0.01, 10.0).reg_lambda == pytest.approx(20 * params.reg_lambda)


def test_all_missing_and_constant_columns_are_not_predictors():
    X = np.array([[1.0, np.nan, 3.0, 0.0], [2.0, np.nan, 3.0, np.nan], [1.0, np.nan, 3.0, 1.0]])
    assert informative_columns(X).tolist() == [True, False, False, True]
    assert with_day(X, np.array([1, 2, 3])).shape == (3, 5)


@pytest.mark.parametrize(("field", "value", "message"), [("y", 0.5, "0/1"), ("w", 0.0, "positive")])
def test_invalid_inputs_are_rejected(field, value, message):
    d = synthetic_phase(n_patients=30)
    d[field] = np.full(d["y"].size, value)
    with pytest.raises(ValueError, match=message):
        fit_phases({"early": _data(d)}, d["feature_names"], small_model_config())


def test_own_trees_are_kept_only_where_they_lower_the_out_of_fold_loss():
    from models.training import _keep_own_trees

    rng = np.random.default_rng(0)
    index = np.repeat([0, 1, 2], 500)
    truth = rng.normal(-1, 1, 1500)
    y = (rng.random(1500) < 1 / (1 + np.exp(-truth))).astype(float)
    shared = truth + np.where(index == 0, rng.normal(0, 1, 1500), 0.0)  # shared misses phase 0's signal
    with_own = np.where(index == 0, truth, truth + rng.normal(0, 1, 1500))  # own trees: help 0, hurt 1
    plan = {"a": object(), "b": object(), "c": None}
    margins = with_own.copy()
    keep = _keep_own_trees(plan, index, y, np.ones(1500), shared, margins)
    assert keep == {"a": True, "b": False, "c": False}
    np.testing.assert_array_equal(margins[index == 0], with_own[index == 0])
    np.testing.assert_array_equal(margins[index != 0], shared[index != 0])  # reverted to the shared margin


def test_the_reason_a_phase_cannot_be_cross_validated_names_what_is_missing():
    from models.training import _cannot_cross_validate

    cfg = small_model_config(workers=1).model_copy(update={"min_events": 1, "n_folds": 5})
    one_event = {"rows": 900, "events": 3, "patients": 200, "event_patients": 1}
    assert _cannot_cross_validate(one_event, cfg) == "1 patient(s) with an event: too few to cross-validate " \
                                                     "(at least 2 are needed)"
    few = {"rows": 40, "events": 5, "patients": 4, "event_patients": 2}
    assert _cannot_cross_validate(few, cfg).startswith("4 patient(s): too few for 5-fold")
    assert _cannot_cross_validate({"rows": 900, "events": 30, "patients": 200, "event_patients": 20}, cfg) is None


def test_a_phase_whose_auroc_interval_reaches_chance_is_warned_of():
    from models.training import _chance_warning

    (warning,) = _chance_warning("acute", (0.504, 0.376, 0.601))
    assert warning.startswith("phase 'acute': out-of-fold AUROC 0.504 (95% CI 0.376-0.601) reaches 0.5")
    assert _chance_warning("acute", (0.70, 0.62, 0.78)) == []
    assert _chance_warning("acute", (0.70, float("nan"), float("nan"))) == []  # no interval, no claim


def test_a_phase_whose_calibration_gives_one_risk_reports_no_ranking_metric(phases_data, model_config, monkeypatch):
    from models.calibration import Calibrator
    from models.fits import UNRANKED

    monkeypatch.setattr(Calibrator, "flat", property(lambda self: True))  # every calibrator maps to one risk
    out = fit_phases(phases_data["phases"], phases_data["feature_names"], model_config)
    fit = out.fits["early"]
    metrics = fit.metrics["xgboost_calibrated"]
    for name in UNRANKED:  # the folds' calibrators are rates: their AUROC and slope would be noise
        assert all(np.isnan(metrics[name])), name
    assert np.isfinite(metrics["brier"][0]) and np.isfinite(metrics["oe_ratio"][0])  # calibration-in-the-large
    assert np.isfinite(fit.metrics["logistic_baseline"]["auroc"][0])  # the comparator still ranks
    assert any("gives every patient one risk" in w for w in fit.warnings)
