"""Unit tests: patient-grouped folds and validation splits."""

import numpy as np
import pytest

from models.folds import grouped_folds, grouped_validation_split
from tests.models.synthetic import synthetic_phase


@pytest.fixture
def data():
    return synthetic_phase(n_patients=200, rows_per_patient=5)


def _patients_per_side(groups, assignment):
    return {g: set(assignment[groups == g].tolist()) for g in np.unique(groups)}


def test_every_patient_is_in_exactly_one_fold(data):
    folds = grouped_folds(data["groups"], n_folds=5, seed=1, events=data["y"])
    assert all(len(s) == 1 for s in _patients_per_side(data["groups"], folds).values())
    assert sorted(set(folds.tolist())) == [0, 1, 2, 3, 4]


def test_folds_are_deterministic_for_a_seed_and_change_with_it(data):
    a = grouped_folds(data["groups"], 5, seed=7, events=data["y"])
    b = grouped_folds(data["groups"], 5, seed=7, events=data["y"])
    c = grouped_folds(data["groups"], 5, seed=8, events=data["y"])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_folds_do_not_depend_on_row_order(data):
    perm = np.random.default_rng(0).permutation(data["groups"].size)
    a = grouped_folds(data["groups"], 5, seed=3, events=data["y"])
    b = grouped_folds(data["groups"][perm], 5, seed=3, events=data["y"][perm])
    np.testing.assert_array_equal(a[perm], b)


def test_event_patients_are_spread_evenly_across_folds(data):
    folds = grouped_folds(data["groups"], 5, seed=0, events=data["y"])
    event_patients = np.unique(data["groups"][data["y"] == 1])
    per_fold = [np.unique(data["groups"][(folds == k) & np.isin(data["groups"],
                                                                  event_patients)]).size
                for k in range(5)]
    assert max(per_fold) - min(per_fold) <= 1


def test_too_few_patients_for_the_folds_is_an_error():
    with pytest.raises(ValueError, match="patients"):
        grouped_folds(np.array(["a", "b"]), n_folds=3, seed=0)


def test_validation_split_is_grouped_sized_and_deterministic(data):
    val = grouped_validation_split(data["groups"], 0.2, seed=5, events=data["y"])
    assert all(len(s) == 1 for s in _patients_per_side(data["groups"], val).values())
    share = np.unique(data["groups"][val]).size / np.unique(data["groups"]).size
    assert share == pytest.approx(0.2, abs=0.02)
    np.testing.assert_array_equal(
        val, grouped_validation_split(data["groups"], 0.2, seed=5, events=data["y"]))
    assert data["y"][val].sum() > 0  # stratified: events on both sides


def test_validation_split_is_never_empty_or_everything():
    groups = np.array(["a", "a", "b", "c"])
    assert grouped_validation_split(groups, 0.01, seed=0).any()
    assert not grouped_validation_split(groups, 0.99, seed=0).all()
