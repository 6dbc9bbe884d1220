"""Unit tests: isotonic and Platt calibrators."""

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from models.calibration import RISK_FLOOR, Calibrator
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
    assert out.min() >= RISK_FLOOR and out.max() <= 1 - RISK_FLOOR
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
    np.testing.assert_allclose(ours, np.clip(ref, RISK_FLOOR, 1 - RISK_FLOOR), atol=1e-12)


def test_calibration_improves_calibration(miscalibrated):
    raw, y, w = miscalibrated
    cal = Calibrator("isotonic").fit(raw, y, sample_weight=w)
    gap_before = abs(np.average(y - raw, weights=w))
    gap_after = abs(np.average(y - cal.predict(raw), weights=w))
    assert gap_after < 0.1 * gap_before


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="method"):
        Calibrator("beta").fit(np.array([0.1, 0.2]), np.array([0, 1]))
    with pytest.raises(ValueError, match="ascending"):
        Calibrator.from_dict({"method": "isotonic", "x": [0.1, 0.5], "y": [0.6, 0.2]})
