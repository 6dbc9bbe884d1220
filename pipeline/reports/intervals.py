"""Confidence intervals where the report's reader takes a decision: calibration bands and net
benefit at the risk-band thresholds, both from whole-patient bootstrap resamples.

Pure: arrays in, Polars frames out. Resampling draws patients (all of a patient's weekly rows
together), as the metrics do, so correlated rows do not narrow the bands. Bin edges are fixed on
the full sample; the interval of each number is the 2.5th–97.5th percentile of that same number
over the resamples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from models.metrics import percentile_interval

CHUNK = 25  # resamples per block: memory stays at a few (25 × rows) arrays however large the cohort


def _resample_blocks(groups: np.ndarray, n_boot: int, seed: int):
    """Blocks of (≤ CHUNK, n_rows) row multiplicities when patients are drawn with replacement."""
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    n_patients = int(inverse.max()) + 1 if inverse.size else 0
    rng = np.random.default_rng(seed)
    for first in range(0, n_boot if n_patients else 0, CHUNK):
        size = min(CHUNK, n_boot - first)
        draws = rng.integers(n_patients, size=(size, n_patients))
        counts = np.zeros((size, n_patients))
        np.add.at(counts, (np.arange(size)[:, None], draws), 1.0)
        yield counts[:, inverse]


def _percentiles(values: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise `models.metrics.percentile_interval` over the resamples (rows): NaN where too
    many resamples leave the column undefined, and everywhere when the rows `y` hold one outcome
    only (no event: every resample has none either, so an interval of zero width would claim a
    certainty that zero events cannot give)."""
    if values.shape[0] == 0 or np.unique(y).size < 2:
        nothing = np.full(values.shape[1], np.nan)
        return nothing, nothing.copy()
    bounds = [percentile_interval(values[:, j], values.shape[0]) for j in range(values.shape[1])]
    lo, hi = (np.array([b[i] for b in bounds], dtype=np.float64) for i in (0, 1))
    return lo, hi


def calibration_bands(y, p, w, groups, bins: int = 10, n_boot: int = 200, seed: int = 0) -> pl.DataFrame:
    """Per quantile bin of predicted risk: weighted mean predicted, observed rate with its 95%
    band, and rows. The same bins as `figures.calibration_bins`."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    w = np.ones_like(p) if w is None else np.asarray(w, dtype=float)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)[1:-1])) if p.size else np.empty(0)
    index = np.searchsorted(edges, p, side="left")
    present = np.unique(index)
    member = (index[:, None] == present[None, :]).astype(float)  # rows × bins
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = ((w * y) @ member) / (w @ member)
        blocks = [((C * w * y) @ member) / ((C * w) @ member) for C in _resample_blocks(groups, n_boot, seed)]
    lo, hi = _percentiles(np.vstack(blocks) if blocks else np.empty((0, present.size)), y)
    return pl.DataFrame(
        {
            "predicted": ((w * p) @ member) / (w @ member),
            "observed": observed,
            "observed_lo": lo,
            "observed_hi": hi,
            "n": member.sum(axis=0).astype(np.int64),
        }
    )


def net_benefit_intervals(
    y, p, w, groups, thresholds: Sequence[float], n_boot: int = 200, seed: int = 0
) -> pl.DataFrame:
    """Net benefit of the model and of treating everyone at each threshold, with 95% intervals.

    NB = TP/n − FP/n · pt/(1 − pt) with IPCW-weighted sums (Vickers & Elkin), as in
    `analysis.decision_curve`; `difference` is model − treat-all, the number a clinic reads to
    decide whether acting on the score beats contacting everyone at that threshold.
    """
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    w = np.ones_like(p) if w is None else np.asarray(w, dtype=float)
    pt = np.asarray([t for t in thresholds if 0 < t < 1], dtype=float)
    treated = (p[:, None] >= pt[None, :]).astype(float)  # rows × thresholds
    odds = pt / (1 - pt)

    def net_benefits(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = weights.sum(axis=1)[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            model = ((weights * y) @ treated - (weights * (1 - y)) @ treated * odds) / n
            prevalence = (weights @ y)[:, None] / n
        return model, prevalence - (1 - prevalence) * odds

    point = net_benefits(w[None, :])
    blocks = [net_benefits(C * w) for C in _resample_blocks(groups, n_boot, seed)]
    boot = [np.vstack([b[k] for b in blocks]) if blocks else np.empty((0, pt.size)) for k in (0, 1)]
    columns = {"threshold": pt}
    for name, est, values in (("net_benefit_model", point[0], boot[0]), ("net_benefit_treat_all", point[1], boot[1]),
                              ("difference", point[0] - point[1], boot[0] - boot[1])):
        lo, hi = _percentiles(values, y)
        columns |= {name: est[0], f"{name}_lo": lo, f"{name}_hi": hi}
    return pl.DataFrame(columns)
