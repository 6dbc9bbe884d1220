"""Weighted performance metrics with patient-level (cluster) bootstrap confidence intervals.

Every metric is computed by one vectorised code path over a matrix of row weights
(one row of the matrix per bootstrap resample), so the point estimate and the resamples agree
by construction:

- auroc: weighted area under the ROC curve, ties counted as half (= sklearn `roc_auc_score`).
- auprc: weighted average precision, the step-wise sum of precision x recall increments
  (= sklearn `average_precision_score`).
- brier: weighted mean squared error of the probability.
- calibration_intercept: `a` in logit P(y=1) = a + logit(p), the slope fixed at 1
  ("calibration-in-the-large"); 0 is ideal, > 0 means risk is under-predicted.
- calibration_slope: `b` in logit P(y=1) = a + b * logit(p); 1 is ideal, < 1 means
  predictions are too extreme (over-fitting).
- ece: expected calibration error over 10 equal-frequency bins of p (edges are weighted
  quantiles of p on the full sample, fixed across resamples): the weight-share-weighted mean of
  |mean y - mean p| per bin. Equal-frequency, because relapse risks crowd at low values and
  equal-width bins would leave almost every row in the first bin. ECE is biased upward on small
  samples (noise in a bin only adds to |mean y - mean p|), and a resample with repeated patients
  more so, so its percentile interval can lie above the estimate (README, "Metrics").

Probabilities are clipped to [1e-6, 1 - 1e-6] before taking logits.
"""

from __future__ import annotations

import numpy as np

from models import newton
from models.folds import patients_as_seen
from models.link import logit

METRICS = (
    "auroc", "auprc", "brier", "calibration_intercept", "calibration_slope", "ece", "oe_ratio",
)
ECE_BINS = 10
_CHUNK = 25  # resamples per vectorised block: bounds memory to a few (25 x n) float arrays


def _check(y: np.ndarray, p: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, ...]:
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=np.float64)
    if not (y.ndim == 1 and y.shape == p.shape == w.shape):
        raise ValueError("y, p and w must be one-dimensional arrays of the same length")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must be 0/1")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError("p must be probabilities in [0, 1]")
    if not (np.isfinite(w).all() and (w >= 0).all()):
        raise ValueError("w must be finite and non-negative")
    return y, p, w


class _Sample:
    """Rows sorted by descending p, with everything the batched metrics reuse."""

    def __init__(self, y: np.ndarray, p: np.ndarray, w: np.ndarray, n_bins: int = ECE_BINS):
        self.order = np.argsort(-p, kind="stable")
        self.y, self.p, self.w = y[self.order], p[self.order], w[self.order]
        self.z = logit(self.p)
        # last row of each run of tied p: the distinct thresholds of the ROC/PR curves
        self.ends = np.r_[np.flatnonzero(np.diff(self.p)), self.p.size - 1]
        self.starts = np.r_[0, self.ends[:-1] + 1] if self.p.size else np.zeros(0, dtype=int)
        self._ranking_index()
        # [1, z, z^2] per row, contiguous, so the calibration fits' weighted sums are one product
        self.powers = np.column_stack([np.ones_like(self.z), self.z, self.z * self.z])
        self.powers2 = np.ascontiguousarray(self.powers[:, :2])
        inner = np.quantile(p, np.arange(1, n_bins) / n_bins, weights=w,
                            method="inverted_cdf") if w.sum() > 0 else np.zeros(n_bins - 1)
        bins = np.searchsorted(inner, self.p, side="left")
        # (n, n_bins): each row's residual y - p in its bin's column, so W @ it sums per bin
        self.bin_residual = np.eye(n_bins)[bins] * (self.y - self.p)[:, None]

    def _ranking_index(self) -> None:
        """Where the ranking metrics need sums. Only the thresholds (runs of tied p) that hold
        a positive row count, since a run without one adds nothing to AUROC or AP.

        `positives` are the positive rows; `run_first` / `run_last` index, into them, the first
        and last positive of each such run. `cuts` split the rows into segments whose borders
        are those runs' borders, so each of those runs is one segment (`run_segment`) and the
        rows between them are others: one pass of `np.add.reduceat` over the weights gives
        every sum the metrics need."""
        self.positives = np.flatnonzero(self.y == 1)
        run_of = np.searchsorted(self.ends, self.positives)
        self.run_first = np.flatnonzero(np.r_[True, np.diff(run_of) > 0]) if run_of.size else run_of
        self.run_last = np.r_[self.run_first[1:], run_of.size] - 1
        runs = run_of[self.run_first]
        cuts = np.unique(np.r_[0, self.starts[runs], self.ends[runs] + 1])
        self.cuts = cuts[cuts < self.p.size]
        self.run_segment = np.searchsorted(self.cuts, self.starts[runs])


def _ranking(s: _Sample, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUROC and average precision for each row of weights W (rows in s's sorted order).

    Per threshold (run of tied p) g holding positive weight dT_g, negative weight dF_g, with
    T_g the positive weight down to it and S_g all weight down to it: area =
    sum_g dT_g (F_below_g + dF_g / 2) (ties count half; F_below_g the negative weight under
    the run) and AP = sum_g dT_g T_g / S_g / P. Only runs with a positive row add to either,
    so the work over all rows is one segment sum of W (`_Sample._ranking_index`); the rest is
    on the positive rows alone."""
    rows = W.shape[0]
    if s.p.size == 0:
        return np.full(rows, np.nan), np.full(rows, np.nan)
    at_pos = W[:, s.positives]
    through = np.add.accumulate(at_pos, axis=1)[:, s.run_last] if s.positives.size else at_pos
    d_pos = np.add.reduceat(at_pos, s.run_first, axis=1) if s.positives.size else at_pos
    P = at_pos.sum(axis=1)
    segments = np.add.reduceat(W, s.cuts, axis=1)
    running = np.zeros((rows, s.cuts.size + 1))
    np.add.accumulate(segments, axis=1, out=running[:, 1:])
    total = running[:, -1]
    seen = running[:, s.run_segment + 1]  # all weight down to the end of each run
    d_neg = segments[:, s.run_segment] - d_pos
    neg_below = (total[:, None] - seen) - (P[:, None] - through)
    area = newton.rowdot(d_pos, neg_below + d_neg / 2)
    precision = np.divide(through, seen, out=np.zeros_like(through), where=seen > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        auroc = area / (P * (total - P))
        auprc = newton.rowdot(d_pos, precision) / P
    return auroc, auprc


def _batch(s: _Sample, W: np.ndarray, start: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """All metrics for each row of weights W. NaN where undefined: AUROC, AUPRC and the
    calibration fits need both classes; Brier and ECE only a positive total weight.

    `start` holds Newton starting values (the point estimates, for resamples); the result has
    the same keys, "_line_a" being the intercept of the calibration-slope fit.
    """
    total, pos = W.sum(axis=1), W @ s.y
    both_classes = (pos > 0) & (total - pos > 0)
    auroc, auprc = _ranking(s, W)
    a0 = np.broadcast_to(start["calibration_intercept"], total.shape)
    intercept = newton.newton_intercept(s.z, s.y, W, np.nan_to_num(a0))
    line_a0 = np.nan_to_num(np.broadcast_to(start["_line_a"], total.shape))
    line_b0 = np.nan_to_num(np.broadcast_to(start["calibration_slope"], total.shape), nan=1.0)
    line_a, slope = newton.newton_line(s.z, s.y, W, line_a0, line_b0, s.powers, s.powers2)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "auroc": auroc,
            "auprc": auprc,
            "brier": (W @ (s.p - s.y) ** 2) / total,
            "calibration_intercept": intercept,
            "calibration_slope": slope,
            "ece": np.abs(W @ s.bin_residual).sum(axis=1) / total,
            "oe_ratio": pos / (W @ s.p),
            "_line_a": line_a,
        }
    defined = {k: (total > 0) if k in ("brier", "ece", "oe_ratio") else both_classes for k in out}
    return {k: np.where(defined[k], v, np.nan) for k, v in out.items()}


def _point(s: _Sample) -> dict[str, np.ndarray]:
    start = {"calibration_intercept": np.zeros(1), "_line_a": np.zeros(1),
             "calibration_slope": np.ones(1)}
    return _batch(s, s.w[None, :], start)


def recalibration_line(
    y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None
) -> tuple[float, float]:
    """(a, b) of the weighted logistic fit logit P(y=1) = a + b * logit(p) (Platt on logits)."""
    y, p, w = _check(y, p, w)
    a, b = newton.plain_line(logit(p), y, w[None, :], np.zeros(1), np.ones(1))
    return float(a[0]), float(b[0])


def offset_intercept(y: np.ndarray, offset: np.ndarray, w: np.ndarray | None = None) -> float:
    """`a` of the weighted logistic fit logit P(y=1) = a + offset (the offset's slope fixed)."""
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=np.float64)
    return float(newton.plain_intercept(np.asarray(offset, dtype=np.float64), y, w[None, :], np.zeros(1))[0])


def point_metrics(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> dict[str, float]:
    """All metrics on one sample (NaN where undefined, see `_batch`); keys as in METRICS."""
    y, p, w = _check(y, p, w)
    point = _point(_Sample(y, p, w))
    return {k: float(point[k][0]) for k in METRICS}


def auroc(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    y, p, w = _check(y, p, w)
    s = _Sample(y, p, w)
    return float(_ranking(s, s.w[None, :])[0][0])


def auprc(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    y, p, w = _check(y, p, w)
    s = _Sample(y, p, w)
    return float(_ranking(s, s.w[None, :])[1][0])


def brier(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    y, p, w = _check(y, p, w)
    return float(np.sum(w * (p - y) ** 2) / np.sum(w))


def calibration_intercept(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    y, p, w = _check(y, p, w)
    return float(newton.plain_intercept(logit(p), y, w[None, :], np.zeros(1))[0])


def calibration_slope(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    return recalibration_line(y, p, w)[1]


def ece(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    return point_metrics(y, p, w)["ece"]


def _resample_weights(
    inverse: np.ndarray, n_patients: int, rng: np.random.Generator, size: int
) -> np.ndarray:
    """(size, n_rows) multiplicity of each row when patients are drawn with replacement."""
    draws = rng.integers(n_patients, size=(size, n_patients))
    flat = (draws + np.arange(size)[:, None] * n_patients).ravel()
    counts = np.bincount(flat, minlength=size * n_patients).reshape(size, n_patients).astype(np.float64)
    return counts[:, inverse]


def evaluate(
    y: np.ndarray,
    p: np.ndarray,
    w: np.ndarray | None,
    groups: np.ndarray,
    n_boot: int,
    seed: int,
) -> dict[str, tuple[float, float, float]]:
    """Each metric as (estimate, lower, upper): a 95% percentile interval from `n_boot`
    resamples of whole patients (all of a patient's rows together), so correlated landmark
    rows of one person do not make intervals falsely narrow.

    Bounds are NaN when more than `MAX_UNDEFINED` of the resamples leave the metric undefined
    (a single class, for AUROC, AUPRC and the calibration fits; see `percentile_interval`), or
    fewer than 2 are usable (`n_boot` 0). When the estimate itself is undefined (NaN, e.g. a
    calibration slope whose fit does not converge on the full sample), so are its bounds: an
    interval around no estimate would suggest a precision the data do not have.
    """
    y, p, w = _check(y, p, w)
    groups = np.asarray(groups)
    if groups.shape != y.shape:
        raise ValueError("groups must have one patient id per row")
    s = _Sample(y, p, w)
    estimate = _point(s)
    inverse, n_patients = patients_as_seen(np.asarray(groups)[s.order])
    rng = np.random.default_rng(seed)
    boots: dict[str, list[np.ndarray]] = {k: [] for k in METRICS}
    for first in range(0, n_boot, _CHUNK):
        size = min(_CHUNK, n_boot - first)
        W = _resample_weights(inverse, n_patients, rng, size)
        W *= s.w
        for k, v in _batch(s, W, estimate).items():
            if k in boots:
                boots[k].append(v)
    result = {}
    for k in METRICS:
        point = float(estimate[k][0])
        lo, hi = percentile_interval(np.concatenate(boots[k]) if boots[k] else np.empty(0), n_boot)
        result[k] = (point, lo, hi) if np.isfinite(point) else (point, np.nan, np.nan)
    return result


def counts(y: np.ndarray, groups: np.ndarray) -> dict[str, int]:
    """Rows, patients, event rows (y = 1) and event patients (patients with any y = 1)."""
    y = np.asarray(y)
    groups = np.asarray(groups)
    return {
        "rows": int(y.size),
        "patients": int(np.unique(groups).size),
        "events": int(np.sum(y == 1)),
        "event_patients": int(np.unique(groups[y == 1]).size),
    }


# The share of resamples that may leave a metric undefined before its interval is withheld.
MAX_UNDEFINED = 0.025


def percentile_interval(values: np.ndarray, n_boot: int) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of the resampled values, or NaN for both.

    Resamples where the metric is undefined (no patient with an event drawn, for AUROC) cannot
    simply be skipped: the percentiles of the rest are those of the resamples that drew an event,
    an interval conditional on luck. With one patient with an event, 37% of resamples draw none,
    and the rest all hold that one patient: the interval came out 0.93-0.97 for an AUROC that one
    event decides. So when more than `MAX_UNDEFINED` (half of one tail) of the `n_boot`
    resamples are undefined, no interval is given; with four event patients about 1.8% are.
    """
    finite = values[np.isfinite(values)]
    if finite.size < 2 or finite.size < (1 - MAX_UNDEFINED) * n_boot:
        return np.nan, np.nan
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return float(lo), float(hi)


def group_metrics(
    y: np.ndarray, p: np.ndarray, w: np.ndarray | None, groups: np.ndarray, n_boot: int, seed: int
) -> dict[str, tuple[float, float, float]]:
    """Observed/expected ratio, calibration intercept and AUROC of one subgroup, each as
    (estimate, lower, upper) with 95% percentile intervals from whole-patient resamples.

    oe_ratio = Σ w·y / Σ w·p (1 is ideal; 2 means twice the events the model predicted). The
    intervals are percentiles of the same statistic over the resamples, so the estimate lies
    inside them unless the distribution is very skewed. AUROC and the intercept need both
    outcomes (NaN otherwise, and resamples with one class are skipped).
    """
    y, p, w = _check(y, p, w)
    s = _Sample(y, p, w)
    inverse, n_patients = patients_as_seen(np.asarray(groups)[s.order])

    def stats(W: np.ndarray, start: np.ndarray) -> dict[str, np.ndarray]:
        observed, expected = W @ s.y, W @ s.p
        both = (observed > 0) & (W.sum(axis=1) - observed > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            oe = np.where(expected > 0, observed / expected, np.nan)
        intercept = newton.newton_intercept(s.z, s.y, W, start)
        return {"oe_ratio": oe, "calibration_intercept": np.where(both, intercept, np.nan),
                "auroc": np.where(both, _ranking(s, W)[0], np.nan)}

    point = stats(s.w[None, :], np.zeros(1))
    start = np.nan_to_num(point["calibration_intercept"])
    rng = np.random.default_rng(seed)
    boots: dict[str, list[np.ndarray]] = {k: [] for k in point}
    for first in range(0, n_boot if n_patients else 0, _CHUNK):
        size = min(_CHUNK, n_boot - first)
        W = _resample_weights(inverse, n_patients, rng, size) * s.w
        for k, v in stats(W, np.broadcast_to(start, (size,))).items():
            boots[k].append(v)
    return {
        k: (float(point[k][0]), *percentile_interval(np.concatenate(v) if v else np.empty(0), n_boot))
        for k, v in boots.items()
    }


def paired_differences(
    y: np.ndarray,
    p_a: np.ndarray,
    p_b: np.ndarray,
    w: np.ndarray | None,
    groups: np.ndarray,
    n_boot: int,
    seed: int,
    names: tuple[str, ...] = ("auroc", "calibration_intercept", "ece"),
) -> dict[str, tuple[float, float, float]]:
    """Metric of `p_a` minus metric of `p_b` on the same rows, as (estimate, lower, upper).

    Both predictions are scored on the same whole-patient resamples (a paired bootstrap), so
    the interval is of the difference itself: much narrower than comparing two separate
    intervals when the models rank patients alike. For calibration_intercept the difference
    is of absolute values (|a_A| − |a_B|: > 0 means A is further from calibrated).
    """
    y, p_a, w = _check(y, p_a, w)
    _, p_b, _ = _check(y, p_b, w)
    inverse, n_patients = patients_as_seen(groups)
    samples = [_Sample(y, p, w) for p in (p_a, p_b)]

    def metric(s: _Sample, W_rows: np.ndarray, start: dict) -> dict[str, np.ndarray]:
        out = _batch(s, W_rows[:, s.order], start)
        out["calibration_intercept"] = np.abs(out["calibration_intercept"])
        return out

    points = [_point(s) for s in samples]
    estimate = {k: float(np.abs(points[0][k][0]) - np.abs(points[1][k][0])) if k == "calibration_intercept"
                else float(points[0][k][0] - points[1][k][0]) for k in names}
    rng = np.random.default_rng(seed)
    diffs: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for first in range(0, n_boot if n_patients else 0, _CHUNK):
        size = min(_CHUNK, n_boot - first)
        W = _resample_weights(inverse, n_patients, rng, size) * w  # rows in the caller's order
        a, b = (metric(s, W, pt) for s, pt in zip(samples, points, strict=True))
        for k in names:
            diffs[k].append(a[k] - b[k])
    return {k: (estimate[k], *percentile_interval(np.concatenate(v) if v else np.empty(0), n_boot))
            for k, v in diffs.items()}


def patient_resamples(groups: np.ndarray, n_boot: int, seed: int):
    """Yield blocks of (size, n_rows) row multiplicities, `n_boot` resamples of whole patients
    in all; rows stay in their given order, so two predictors of the same rows can be scored
    on the very same resamples (paired intervals)."""
    inverse, n_patients = patients_as_seen(groups)
    rng = np.random.default_rng(seed)
    for first in range(0, n_boot, _CHUNK):
        yield _resample_weights(inverse, n_patients, rng, min(_CHUNK, n_boot - first))


def auroc_batch(y: np.ndarray, p: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Weighted AUROC for each row of weights W (rows of W in the order of y and p)."""
    y, p, _ = _check(y, p, None)
    s = _Sample(y, p, np.ones_like(y))
    return _ranking(s, np.asarray(W)[:, s.order])[0]
