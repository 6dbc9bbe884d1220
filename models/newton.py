"""Batched Newton fits of logistic recalibration lines, one fit per row of a weight matrix (one
row per bootstrap resample): logit P(y=1) = a + z (the intercept, slope fixed at 1) and
logit P(y=1) = a + b z. `models.metrics` uses them for the calibration metrics of every resample.

The `newton_*` fits work through the rows in cache-sized column blocks; the `plain_*` fits keep
the arithmetic of earlier versions for the fits whose numbers are shipped (Platt calibrators,
the recalibration intercept), so those keep their bits.
"""

from __future__ import annotations

import numpy as np

from models.link import sigmoid

BLOCK = 8192  # columns per block of the Newton fits: a few (25 x 8192) float64 buffers stay in a core's L2 cache
MAX_ITER = 50
TOL = 1e-10
# The blocked fits stop after a step below STEP_TOL. Newton's method converges quadratically
# (each error about a constant times the square of the one before), so after a step of 1e-6 the
# error left is of order 1e-12, and the further pass over the rows that would only confirm a
# step below TOL is skipped: on the bootstraps of 20,000 simulated patients the last steps were
# 1e-7 and then 2e-14, so the results agree to 1e-13 with a quarter fewer passes.
STEP_TOL = 1e-6


def rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row i, sum_j a[i, j] * b[i, j], without a temporary of the full product."""
    return np.einsum("ij,ij->i", a, b)


def _expit_in_place(t: np.ndarray) -> np.ndarray:
    """t <- 1 / (1 + exp(-t)) in place (SIMD exp, no temporaries; exp overflow gives 0, exactly
    the limit). Equals scipy's expit to floating rounding."""
    np.negative(t, out=t)
    with np.errstate(over="ignore"):
        np.exp(t, out=t)
    t += 1.0
    return np.reciprocal(t, out=t)


def _blocks(n: int):
    """Column slices of BLOCK columns: the Newton fits work block by block, so their few
    (resamples x BLOCK) buffers stay in a core's cache across the dozen passes of one
    iteration instead of streaming (resamples x rows) arrays through memory each pass."""
    return [slice(i, min(i + BLOCK, n)) for i in range(0, n, BLOCK)]


def _offset_sums(W: np.ndarray, z: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row r of W, with mu = expit(a_r + z): sum W mu and sum W mu (1 - mu)."""
    rows, n = W.shape
    expected, curvature = np.zeros(rows), np.zeros(rows)
    mu, w_mu = np.empty((rows, min(BLOCK, n))), np.empty((rows, min(BLOCK, n)))
    for cols in _blocks(n):
        m, wm = mu[:, :cols.stop - cols.start], w_mu[:, :cols.stop - cols.start]
        _expit_in_place(np.add(a[:, None], z[cols], out=m))
        np.multiply(W[:, cols], m, out=wm)
        part = wm.sum(axis=1)
        expected += part
        curvature += part - rowdot(wm, m)
    return expected, curvature


def _line_sums(W: np.ndarray, z: np.ndarray, a: np.ndarray, b: np.ndarray, powers: np.ndarray,
               powers2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row r of W, with mu = expit(a_r + b_r z): sum W mu [1, z] (rows x 2) and the
    Hessian sums W mu (1 - mu) [1, z, z^2] (rows x 3)."""
    rows, n = W.shape
    fitted, hessian = np.zeros((rows, 2)), np.zeros((rows, 3))
    mu, w_mu = np.empty((rows, min(BLOCK, n))), np.empty((rows, min(BLOCK, n)))
    for cols in _blocks(n):
        m, wm = mu[:, :cols.stop - cols.start], w_mu[:, :cols.stop - cols.start]
        np.multiply(b[:, None], z[cols], out=m)
        m += a[:, None]
        _expit_in_place(m)
        np.multiply(W[:, cols], m, out=wm)
        fitted += wm @ powers2[cols]
        m *= wm
        wm -= m  # now W mu (1 - mu)
        hessian += wm @ powers[cols]
    return fitted, hessian


def newton_intercept(z: np.ndarray, y: np.ndarray, W: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Per weight row, the MLE of `a` in logit P(y) = a + z (offset logistic regression)."""
    a = a.copy()
    observed = W @ y
    for _ in range(MAX_ITER):
        expected, curvature = _offset_sums(W, z, a)
        with np.errstate(invalid="ignore", divide="ignore"):
            step = np.clip((observed - expected) / curvature, -5, 5)
        a += step
        if not np.any(np.abs(step) > STEP_TOL):
            break
    return a


def newton_line(
    z: np.ndarray, y: np.ndarray, W: np.ndarray, a: np.ndarray, b: np.ndarray,
    powers: np.ndarray | None = None, powers2: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per weight row, the MLE of (a, b) in logit P(y) = a + b z; NaN where it is undefined.

    `powers` = [1, z, z^2] per row (and `powers2` its first two columns, contiguous) may be
    passed precomputed."""
    if powers is None:
        powers = np.column_stack([np.ones_like(z), z, z * z])
    if powers2 is None:
        powers2 = np.ascontiguousarray(powers[:, :2])
    observed = W @ (y[:, None] * powers2)  # score terms that do not change

    def fit(a, b, rows):
        converged = np.zeros(a.shape, dtype=bool)
        for _ in range(MAX_ITER):
            fitted, hessian = _line_sums(W[rows], z, a, b, powers, powers2)
            a, b, converged = _line_step(a, b, observed[rows] - fitted, hessian, STEP_TOL)
            if converged.all():
                break
        return a, b, converged

    return _from_zero_where_needed(fit, a, b)


def _from_zero_where_needed(fit, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`fit(a, b, rows)` from the given start, then again from (0, 0) for the rows that did not
    converge: Newton from the usual start (a slope of 1) overshoots into saturation when the
    true slope is far from it, e.g. negative for a model that ranks a cohort the wrong way round,
    while (0, 0) is the classical start of a logistic fit. Rows that converged keep their bits;
    rows that fail from both starts are NaN."""
    a, b, converged = fit(a.copy(), b.copy(), slice(None))  # every row (a view, not a copy, of W)
    if not converged.all():
        again = ~converged
        a[again], b[again], converged[again] = fit(np.zeros(again.sum()), np.zeros(again.sum()), again)
    a[~converged], b[~converged] = np.nan, np.nan
    return a, b


def _line_step(
    a: np.ndarray, b: np.ndarray, g: np.ndarray, hessian: np.ndarray, tol: float = TOL
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One clipped Newton step of (a, b) per resample from its score `g` and Hessian sums
    (h00, h01, h11); a singular Hessian gives NaN. Returns a, b and which resamples converged
    (both steps at most `tol`)."""
    h00, h01, h11 = hessian.T
    det = h00 * h11 - h01 * h01
    with np.errstate(invalid="ignore", divide="ignore"):
        singular = ~(det > 1e-12 * h00 * h11)
        da = np.clip((h11 * g[:, 0] - h01 * g[:, 1]) / det, -5, 5)
        db = np.clip((h00 * g[:, 1] - h01 * g[:, 0]) / det, -5, 5)
    a, b = a + da, b + db
    a[singular], b[singular] = np.nan, np.nan
    return a, b, ~(np.abs(da) > tol) & ~(np.abs(db) > tol)


def plain_intercept(z: np.ndarray, y: np.ndarray, W: np.ndarray, a: np.ndarray) -> np.ndarray:
    """`newton_intercept` with the arithmetic of earlier versions, for the fits whose numbers
    are shipped (the Platt calibrators): a calibrator fitted on the same out-of-fold margins has
    the same bits as before the bootstraps were blocked, so bundles stay byte-identical."""
    a = a.copy()
    observed = W @ y
    for _ in range(MAX_ITER):
        mu = sigmoid(a[:, None] + z)
        w_mu = W * mu
        expected = w_mu.sum(axis=1)
        w_mu *= mu
        with np.errstate(invalid="ignore", divide="ignore"):
            step = np.clip((observed - expected) / (expected - w_mu.sum(axis=1)), -5, 5)
        a += step
        if not np.any(np.abs(step) > TOL):
            break
    return a


def plain_line(
    z: np.ndarray, y: np.ndarray, W: np.ndarray, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`newton_line` with the arithmetic of earlier versions (see `plain_intercept`)."""
    powers = np.column_stack([np.ones_like(z), z, z * z])  # sums of w, w z, w z^2 in one product
    observed = W @ (y[:, None] * powers[:, :2])  # score terms that do not change

    def fit(a, b, rows):
        converged = np.zeros(a.shape, dtype=bool)
        for _ in range(MAX_ITER):
            mu = sigmoid(a[:, None] + b[:, None] * z)
            w_mu = W[rows] * mu
            g = observed[rows] - w_mu @ powers[:, :2]
            w_mu -= w_mu * mu  # now W mu (1 - mu), the Hessian weights
            a, b, converged = _line_step(a, b, g, w_mu @ powers)
            if converged.all():
                break
        return a, b, converged

    return _from_zero_where_needed(fit, a, b)
