"""Censoring-model weights against hand-computed cases."""

import numpy as np
import pytest

from models.censoring import censoring_probability, model_weights, weighted_event_rate
from models.config import LogisticParams


def test_weights_by_hand():
    # horizon 30: a row followed through the window is exposed for days t+1..t+29 (29 days),
    # a relapse on day t+16 for days t+1..t+15 (15 of 29)
    c = np.array([0.2, 0.5, 0.5, 0.0])
    seen = np.array([30, 16, 1, 30])
    got = model_weights(c, seen, horizon=30, truncate_quantile=1.0)
    np.testing.assert_allclose(got, [1 / 0.8, 0.5 ** (-15 / 29), 1.0, 1.0])


def test_weights_are_truncated_at_their_quantile():
    c = np.array([0.0, 0.5, 2 / 3, 0.99])  # full exposure: weights 1, 2, 3, 100
    got = model_weights(c, np.full(4, 30), horizon=30, truncate_quantile=0.5)
    np.testing.assert_allclose(got, [1.0, 2.0, 2.5, 2.5])  # the median of (1, 2, 3, 100) is 2.5


def test_censoring_probability_sees_the_covariate():
    rng = np.random.default_rng(0)
    missed = rng.integers(0, 2, 4000).astype(float)  # e.g. missed sessions: drop-out doubles
    censored = rng.random(4000) < np.where(missed == 1, 0.4, 0.2)
    label = np.where(censored, np.nan, (rng.random(4000) < 0.1).astype(float))
    X = np.column_stack([missed, rng.normal(size=4000)])
    c = censoring_probability(X, censored, label, LogisticParams(C=1.0), seed=0)
    known = censored | (label == 0)
    for group, want in ((1, 0.4), (0, 0.2)):
        rows = known & (missed == group)
        # the fit sees only rows with a known horizon status (relapses are left out)
        assert c[missed == group].mean() == pytest.approx(censored[rows].mean(), abs=0.02)
        assert c[missed == group].mean() == pytest.approx(want / (want + (1 - want) * 0.9), abs=0.03)


def test_no_censoring_gives_weight_one():
    X = np.zeros((5, 2))
    c = censoring_probability(X, np.zeros(5, bool), np.array([0, 1, 0, 0, 1.0]), LogisticParams(C=1.0), 0)
    assert (c == 0).all()
    assert (model_weights(c, np.full(5, 30), 30, 0.99) == 1).all()


def test_weighted_event_rate():
    assert weighted_event_rate(np.array([1, 0, 0]), np.array([2.0, 1.0, 1.0])) == 0.5
    assert np.isnan(weighted_event_rate(np.array([]), np.array([])))
