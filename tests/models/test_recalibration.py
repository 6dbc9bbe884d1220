"""Unit tests: closed-testing site recalibration on hand-made data where the answer is known."""

import numpy as np
import pytest

from models.link import logit, sigmoid
from models.recalibration import Recalibration, closed_test


def cohort(n: int, a: float, b: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Model risks and labels drawn from logit P(y) = a + b * logit(risk)."""
    rng = np.random.default_rng(seed)
    risk = sigmoid(rng.normal(-2.0, 1.0, n))
    y = (rng.random(n) < sigmoid(a + b * logit(risk))).astype(float)
    return y, risk


def test_a_well_calibrated_model_is_kept():
    y, risk = cohort(4000, 0.0, 1.0, seed=1)
    result = closed_test(y, risk)
    assert result.chosen == Recalibration()
    assert result.p_overall >= 0.05 and result.p_slope is None


def test_a_shift_in_baseline_risk_updates_only_the_intercept():
    y, risk = cohort(6000, np.log(2.0), 1.0, seed=2)
    result = closed_test(y, risk)
    assert result.chosen.method == "intercept"
    assert result.chosen.a == pytest.approx(np.log(2.0), abs=0.15)
    assert result.p_overall < 0.05 and result.p_slope >= 0.05


def test_too_extreme_predictions_update_intercept_and_slope():
    y, risk = cohort(6000, -0.8, 0.5, seed=3)
    result = closed_test(y, risk)
    assert result.chosen.method == "intercept_slope"
    assert result.chosen.b == pytest.approx(0.5, abs=0.1)
    assert result.p_slope < 0.05


def test_weights_count_rows_as_their_ipcw_says():
    y, risk = cohort(3000, np.log(2.0), 1.0, seed=4)
    # up-weighting the events doubles observed risk again: the intercept grows by about log 2
    w = np.where(y == 1, 2.0, 1.0)
    assert closed_test(y, risk, w).chosen.a == pytest.approx(closed_test(y, risk).chosen.a + np.log(2), abs=0.1)


def test_constant_risk_can_only_move_its_intercept():
    rng = np.random.default_rng(5)
    y = (rng.random(3000) < 0.10).astype(float)
    result = closed_test(y, np.full(3000, 0.05))
    assert result.chosen.method == "intercept"
    assert result.chosen.apply(np.array([0.05]))[0] == pytest.approx(y.mean(), abs=1e-6)


def test_one_outcome_class_keeps_the_model():
    assert closed_test(np.zeros(50), np.full(50, 0.1)).chosen == Recalibration()


def test_a_model_ranking_the_cohort_the_wrong_way_round_never_gets_a_reversing_slope():
    y, risk = cohort(6000, -1.0, -0.8, seed=6)  # the local outcomes run against the model
    result = closed_test(y, risk)
    assert result.chosen.method in ("none", "intercept")  # b = 1: the model's own ranking
    assert "no better than chance or the wrong way round" in result.note
    assert np.isnan(result.log_likelihood["intercept_slope"])
    order = np.argsort(risk)
    assert (np.diff(result.chosen.apply(risk)[order]) >= 0).all()  # the ranking is the model's
    with pytest.raises(ValueError, match="must be positive"):
        Recalibration("intercept_slope", 0.1, -0.5)


def test_a_phase_with_few_patients_with_an_event_keeps_the_model():
    y, risk = cohort(600, 1.5, 2.0, seed=7)  # far off, but ...
    patients = np.arange(y.size) // 40  # ... 15 patients, so at most 15 with an event
    result = closed_test(y, risk, groups=patients, min_events=20)
    assert result.chosen == Recalibration() and result.note.startswith("kept: ")
    assert "fewer than min_events (20)" in result.note
    assert closed_test(y, risk, min_events=20).chosen != Recalibration()  # rows, not patients, without groups


def test_a_recalibrated_risk_stays_within_the_calibrated_range():
    layer = Recalibration("intercept_slope", 5.0, 3.0)
    out = layer.apply(np.array([0.001, 0.5, 0.98]))
    assert out.min() >= 0.001 and out.max() <= 0.98


def test_layers_compose_and_round_trip():
    first, second = Recalibration("intercept", 0.5, 1.0), Recalibration("intercept_slope", -0.2, 0.8)
    p = np.array([0.02, 0.2, 0.7])
    assert np.allclose(first.then(second).apply(p), second.apply(first.apply(p)))
    assert Recalibration.from_dict(second.to_dict()) == second
    with pytest.raises(ValueError, match="unknown recalibration"):
        Recalibration("platt", 0.0, 1.0)
