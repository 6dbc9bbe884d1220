"""Unit tests: exact TreeSHAP contributions and reasons."""

import numpy as np
import pytest

from models.explain import (
    _dmatrix,
    check_additivity,
    contributions,
    effect_on_probability,
    margin,
    top_reasons,
    top_reasons_batch,
)
from models.fits import with_day
from models.link import sigmoid

# shares the session fixture's one expensive build with the other tests of its group
pytestmark = pytest.mark.xdist_group("fitted_phase")


@pytest.fixture(scope="module")
def phase_data(phase_data):
    """The early phase's features with the shared booster's day column."""
    return phase_data | {"X": with_day(phase_data["X"], np.full(phase_data["X"].shape[0], 30.0))}


def test_contributions_add_up_to_the_margin(trained, phase_data):
    X = phase_data["X"]
    values, base = contributions(trained.shared, X)
    assert values.shape == X.shape and base.shape == (X.shape[0],)
    margins = margin(trained.shared, X)
    assert np.max(np.abs(values.sum(axis=1) + base - margins)) < 1e-4
    check_additivity(values, base, margins)


def test_additivity_check_catches_a_mismatch(trained, phase_data):
    values, base = contributions(trained.shared, phase_data["X"][:10])
    with pytest.raises(ValueError, match="do not add up"):
        check_additivity(values, base, margin(trained.shared, phase_data["X"][:10]) + 0.01)


def test_contributions_equal_the_shap_library(trained, phase_data):
    import shap  # about a second to import: here, not at collection, so only this test's worker pays it

    X = phase_data["X"][:200]
    values, _ = contributions(trained.shared, X)
    reference = shap.TreeExplainer(trained.shared).shap_values(X)
    np.testing.assert_allclose(values, reference, atol=1e-5)


def test_missing_values_get_contributions_too(trained, phase_data):
    X = phase_data["X"][:50].copy()
    X[:, :] = np.nan
    values, base = contributions(trained.shared, X)
    check_additivity(values, base, margin(trained.shared, X))


def test_margin_is_the_dmatrix_prediction_bit_for_bit(trained, phase_data):
    X = phase_data["X"][:300].copy()
    X[::7, ::3] = np.nan  # missing values take each split's default direction in both
    reference = trained.shared.predict(_dmatrix(X), output_margin=True).astype(np.float64)
    np.testing.assert_array_equal(margin(trained.shared, X), reference)
    assert margin(trained.shared, X[:0]).shape == (0,)


def test_effect_on_probability_definition():
    m, s = np.array([0.5, -1.0]), np.array([0.8, -0.3])
    np.testing.assert_allclose(effect_on_probability(m, s), sigmoid(m) - sigmoid(m - s))
    assert effect_on_probability(0.5, 0.8) > 0 > effect_on_probability(0.5, -0.8)
    matrix = effect_on_probability(m[:, None], np.array([[0.1, -0.1], [0.2, 0.0]]))
    assert matrix.shape == (2, 2) and matrix[1, 1] == 0


def test_top_reasons_split_raising_and_protective():
    raising, protective = top_reasons(np.array([0.2, -0.5, 0.0, 0.7, -0.1]), 3)
    assert raising.tolist() == [3, 0]
    assert protective.tolist() == [1, 4]


def test_top_reasons_batch_matches_rows():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(200, 8))
    values[values.__abs__() < 0.8] = 0.0
    raising, protective = top_reasons_batch(values, 3)
    for i, row in enumerate(values):
        r, p = top_reasons(row, 3)
        assert raising[i][raising[i] >= 0].tolist() == r.tolist()
        assert protective[i][protective[i] >= 0].tolist() == p.tolist()
