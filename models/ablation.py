"""What a feature group adds: paired comparisons of a phase's model with and without it.

Both predictions are out-of-fold for the same rows and folds; every difference is
`metric(without the group) − metric(full model)`, so dropping a useful group gives a negative
ΔAUROC, a positive ΔBrier and a negative Δnet benefit. Intervals are 95% percentiles over
resamples of whole patients, the same resamples for both models (paired), so the shared
noise of the cohort cancels and a CI excluding 0 is evidence that the group matters there.
Net benefit at threshold t is Vickers & Elkin's (TP − FP · t / (1 − t)) / n, IPCW-weighted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from models.metrics import auroc_batch, patient_resamples, percentile_interval

Interval = tuple[float, float, float]


def group_columns(feature_names: Sequence[str], group_of: Mapping[str, str]) -> dict[str, list[str]]:
    """The feature columns of each group, in feature order (groups in first-seen order)."""
    out: dict[str, list[str]] = {}
    for name in feature_names:
        out.setdefault(group_of[name], []).append(name)
    return out


def _net_benefit(y: np.ndarray, p: np.ndarray, W: np.ndarray, t: float) -> np.ndarray:
    treated = p >= t
    return (W @ (y * treated) - W @ ((1 - y) * treated) * t / (1 - t)) / W.sum(axis=1)


def _brier(y: np.ndarray, p: np.ndarray, W: np.ndarray) -> np.ndarray:
    return W @ (p - y) ** 2 / W.sum(axis=1)


def _statistics(y, p_full, p_without, W, thresholds) -> dict[str, np.ndarray]:
    out = {
        "delta_auroc": auroc_batch(y, p_without, W) - auroc_batch(y, p_full, W),
        "delta_brier": _brier(y, p_without, W) - _brier(y, p_full, W),
    }
    for t in thresholds:
        out[f"delta_net_benefit_{t:g}"] = _net_benefit(y, p_without, W, t) - _net_benefit(y, p_full, W, t)
    return out


def paired_deltas(
    y: np.ndarray,
    p_full: np.ndarray,
    p_without: np.ndarray,
    w: np.ndarray,
    groups: np.ndarray,
    thresholds: Sequence[float],
    n_boot: int,
    seed: int,
) -> dict[str, Interval]:
    """ΔAUROC, ΔBrier and Δnet benefit at each threshold as (estimate, lo, hi); NaN bounds
    when too many resamples lack a class (`metrics.percentile_interval`)."""
    y, p_full, p_without, w = (np.asarray(a, dtype=np.float64) for a in (y, p_full, p_without, w))
    if not (y.shape == p_full.shape == p_without.shape == w.shape == np.shape(groups)):
        raise ValueError("y, both predictions, w and groups must have one value per row")
    thresholds = [float(t) for t in thresholds if 0 < t < 1]
    estimate = _statistics(y, p_full, p_without, w[None, :], thresholds)
    boots: dict[str, list[np.ndarray]] = {k: [] for k in estimate}
    for counts in patient_resamples(groups, n_boot, seed):
        for k, v in _statistics(y, p_full, p_without, counts * w, thresholds).items():
            boots[k].append(v)
    result = {}
    for k, v in estimate.items():
        lo, hi = percentile_interval(np.concatenate(boots[k]) if boots[k] else np.empty(0), n_boot)
        result[k] = (float(v[0]), lo, hi)
    return result
