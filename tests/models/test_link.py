"""Unit tests: logit/sigmoid."""

import numpy as np

from models.link import logit, sigmoid


def test_logit_inverts_sigmoid_and_stays_finite_at_0_and_1():
    x = np.linspace(-8, 8, 33)
    np.testing.assert_allclose(logit(sigmoid(x)), x, atol=1e-9)
    assert np.isfinite(logit(np.array([0.0, 1.0]))).all()
