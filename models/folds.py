"""Patient-grouped splits: every row of a patient lands on the same side of every split.

Assignment depends only on the set of patient ids (sorted), which of them have an event, and
the seed, never on row order, so the same cohort gets the same folds on any machine.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def patient_index(groups) -> tuple[np.ndarray, int]:
    """Each row's patient as an index into the sorted distinct ids (NumPy's `np.unique`
    inverse, value for value), and the number of patients. A dense rank in Polars: on the
    object arrays of string ids that landmark rows carry, NumPy's sort of Python strings was
    the largest cost of a bootstrap's set-up."""
    groups = np.asarray(groups)
    if groups.ndim != 1:
        raise ValueError("groups must be one-dimensional (one patient id per row)")
    if groups.size == 0:
        return np.zeros(0, dtype=np.int64), 0
    inverse = pl.Series(groups).rank("dense").to_numpy().astype(np.int64) - 1
    return inverse, int(inverse.max()) + 1


def patients_as_seen(groups) -> tuple[np.ndarray, int]:
    """Each row's patient as an index in the order the patients first appear, and the number of
    patients. A bootstrap that draws these indices depends on the rows' order only, never on how
    the ids are spelled, so the audit, which reads keyed-hash ids, draws the very resamples
    training drew from the same rows, and its intervals are training's."""
    inverse, n_patients = patient_index(groups)
    if n_patients == 0:
        return inverse, 0
    _, first = np.unique(inverse, return_index=True)
    seen = np.empty(n_patients, dtype=np.int64)
    seen[np.argsort(first)] = np.arange(n_patients)
    return seen[inverse], n_patients


def _patients(groups: np.ndarray, events: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Row -> patient index (into sorted unique ids) and, per patient, whether any row has y=1."""
    groups = np.asarray(groups)
    inverse, n_patients = patient_index(groups)
    has_event = np.zeros(n_patients, dtype=bool)
    if events is not None:
        events = np.asarray(events)
        if events.shape != groups.shape:
            raise ValueError("events must have one value per row, like groups")
        np.logical_or.at(has_event, inverse, events > 0)
    return inverse, has_event


def _stratified_order(has_event: np.ndarray, seed: int) -> np.ndarray:
    """Patients shuffled within each stratum, event patients first, then the others."""
    rng = np.random.default_rng(seed)
    with_event = rng.permutation(np.flatnonzero(has_event))
    without_event = rng.permutation(np.flatnonzero(~has_event))
    return np.concatenate([with_event, without_event])


def grouped_folds(
    groups: np.ndarray, n_folds: int, seed: int, events: np.ndarray | None = None
) -> np.ndarray:
    """Fold index (0..n_folds-1) for each row; all rows of a patient share one fold.

    Patients are shuffled with `seed` and dealt round-robin into folds, patients with an event
    (any row with `events` > 0) first, so each fold gets a near-equal share of event patients
    and of patients.

    >>> folds = grouped_folds(np.array(["a", "a", "b", "c"]), n_folds=3, seed=0)
    >>> bool(folds[0] == folds[1]), sorted(set(folds.tolist()))
    (True, [0, 1, 2])
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    inverse, has_event = _patients(groups, events)
    if has_event.size < n_folds:
        raise ValueError(f"{has_event.size} patients cannot fill {n_folds} folds")
    patient_fold = np.empty(has_event.size, dtype=np.int64)
    patient_fold[_stratified_order(has_event, seed)] = np.arange(has_event.size) % n_folds
    return patient_fold[inverse]


def grouped_validation_split(
    groups: np.ndarray, fraction: float, seed: int, events: np.ndarray | None = None
) -> np.ndarray:
    """Boolean mask of validation rows: about `fraction` of patients, at least one, never all.

    The share is taken within event and non-event patients separately when `events` is given.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    inverse, has_event = _patients(groups, events)
    if has_event.size < 2:
        raise ValueError("a validation split needs at least two patients")
    rng = np.random.default_rng(seed)
    chosen = np.zeros(has_event.size, dtype=bool)
    for stratum in (np.flatnonzero(has_event), np.flatnonzero(~has_event)):
        n_pick = int(round(fraction * stratum.size))
        chosen[rng.permutation(stratum)[:n_pick]] = True
    if not chosen.any():
        chosen[rng.integers(has_event.size)] = True
    if chosen.all():
        chosen[rng.integers(has_event.size)] = False
    return chosen[inverse]
