"""Unit tests: isotonic and Platt calibrators."""

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from models.calibration import MAX_PLATT_SLOPE, RISK_CEILING, RISK_FLOOR, Calibrator
from models.link import logit, sigmoid


@pytest.fixture
def miscalibrated():
    """Raw scores whose true risk is sigmoid(-0.5 + 0.6 * logit(raw))."""
    rng = np.random.default_rng(0)
    raw = sigmoid(rng.normal(-1, 1.5, 20_000))
    y = (rng.random(raw.size) < sigmoid(-0.5 + 0.6 * logit(raw))).astype(float)
    w = rng.uniform(1, 2, raw.size)
    return raw, y, w


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_monotone_and_within_bounds(miscalibrated, method):
    raw, y, w = miscalibrated
    cal = Calibrator(method).fit(raw, y, sample_weight=w)
    grid = np.linspace(0, 1, 2001)
    out = cal.predict(grid)
    assert np.all(np.diff(out) >= 0)
    assert out.min() >= RISK_FLOOR and out.max() <= RISK_CEILING
    assert np.isfinite(logit(out)).all()


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_json_round_trip_predicts_identically(miscalibrated, method):
    raw, y, w = miscalibrated
    cal = Calibrator(method).fit(raw, y, sample_weight=w)
    restored = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict(), allow_nan=False)))
    np.testing.assert_array_equal(restored.predict(raw), cal.predict(raw))


def test_platt_recovers_the_miscalibration(miscalibrated):
    raw, y, w = miscalibrated
    cal = Calibrator("platt").fit(raw, y, sample_weight=w)
    assert cal.a_ == pytest.approx(-0.5, abs=0.08)
    assert cal.b_ == pytest.approx(0.6, abs=0.05)


def test_isotonic_matches_sklearn_inside_the_floor(miscalibrated):
    raw, y, w = miscalibrated
    ours = Calibrator("isotonic").fit(raw, y, sample_weight=w).predict(raw)
    ref = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(raw, y, w).predict(raw)
    np.testing.assert_allclose(ours, np.clip(ref, RISK_FLOOR, RISK_CEILING), atol=1e-12)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_improves_calibration(miscalibrated, method):
    raw, y, w = miscalibrated
    cal = Calibrator(method).fit(raw, y, sample_weight=w)
    gap_before = abs(np.average(y - raw, weights=w))
    gap_after = abs(np.average(y - cal.predict(raw), weights=w))
    assert gap_after < 0.1 * gap_before


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="method"):
        Calibrator("beta").fit(np.array([0.1, 0.2]), np.array([0, 1]))
    with pytest.raises(ValueError, match="ascending"):
        Calibrator.from_dict({"method": "isotonic", "x": [0.1, 0.5], "y": [0.6, 0.2]})


def sparse_tail(seed: int = 0):
    """A phase with a few dozen events: most margins low, a thin tail of high ones with a handful
    of events - where an isotonic staircase reaches 1.0 and jumps between neighbours."""
    rng = np.random.default_rng(seed)
    m = np.concatenate([rng.normal(-2.5, 0.6, 600), rng.uniform(-0.5, 1.5, 60)])
    y = (rng.random(m.size) < sigmoid(-0.3 + 0.8 * m)).astype(float)
    return m, y


def neighbour_jumps(m: np.ndarray, risk: np.ndarray, close: float = 0.05) -> float:
    """Largest calibrated-risk difference between margin-sorted neighbours less than `close` apart."""
    order = np.argsort(m, kind="stable")
    dm, dr = np.diff(m[order]), np.abs(np.diff(risk[order]))
    return float(dr[dm < close].max(initial=0.0))


def test_platt_default_has_no_cliffs_and_no_certainties_on_a_sparse_tail():
    m, y = sparse_tail()
    assert Calibrator().method == "platt"
    grid = np.linspace(-8, 8, 4001)  # margins well beyond the data, both ends
    risk = Calibrator().fit(sigmoid(m), y).predict(sigmoid(grid))
    assert risk.min() > 1e-4 and risk.max() < 0.99
    assert neighbour_jumps(grid, risk) <= 0.10
    observed = Calibrator().fit(sigmoid(m), y).predict(sigmoid(m))
    assert neighbour_jumps(m, observed) <= 0.10


def test_isotonic_on_the_same_tail_is_what_the_default_avoids():
    # the property above is not trivially true: isotonic on the same data has a cliff
    m, y = sparse_tail()
    risk = Calibrator("isotonic").fit(sigmoid(m), y).predict(sigmoid(m))
    assert neighbour_jumps(m, risk) > 0.10


def test_platt_slope_is_capped_and_the_intercept_refitted():
    rng = np.random.default_rng(3)
    m = rng.normal(0, 0.05, 4000)  # a nearly flat model whose truth is steep
    y = (rng.random(m.size) < sigmoid(-1.0 + 20 * m)).astype(float)
    cal = Calibrator("platt").fit(sigmoid(m), y)
    assert cal.b_ == MAX_PLATT_SLOPE
    # with the slope held at the cap the intercept is still the weighted MLE: mean risk matches
    assert np.mean(cal.predict(sigmoid(m))) == pytest.approx(y.mean(), abs=0.01)


def test_platt_with_a_negative_slope_becomes_the_event_rate():
    rng = np.random.default_rng(4)
    m = rng.normal(size=3000)
    y = (rng.random(m.size) < sigmoid(-1.0 - 0.8 * m)).astype(float)
    cal = Calibrator("platt").fit(sigmoid(m), y)
    assert cal.b_ == 0.0
    assert cal.predict(sigmoid(np.array([-3.0, 3.0]))) == pytest.approx([y.mean()] * 2, abs=1e-6)
