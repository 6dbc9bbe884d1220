"""Unit tests: paired patient-bootstrap differences between a model and its ablation."""

import numpy as np
import pytest

from models.ablation import group_columns, paired_deltas
from models.link import sigmoid
from models.metrics import auroc, brier


def sample(n_patients: int = 600, rows: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_patients).astype(str), rows)
    signal = np.repeat(rng.normal(size=n_patients), rows)
    noise = rng.normal(size=groups.size)
    y = (rng.random(groups.size) < sigmoid(-2 + 1.5 * signal)).astype(float)
    return y, signal, noise, groups


def test_dropping_the_signal_lowers_auroc_with_a_ci_below_zero():
    y, signal, noise, groups = sample()
    full, without = sigmoid(-2 + 1.5 * signal), sigmoid(-2 + 0.0 * noise + 0.05 * noise)
    d = paired_deltas(y, full, without, np.ones_like(y), groups, [0.1, 0.25], n_boot=200, seed=1)
    est, lo, hi = d["delta_auroc"]
    assert est == pytest.approx(auroc(y, without) - auroc(y, full))
    assert hi < 0 and d["delta_brier"][1] > 0 and d["delta_net_benefit_0.1"][2] < 0


def test_dropping_nothing_of_value_gives_intervals_around_zero():
    y, signal, noise, groups = sample(seed=2)
    rng = np.random.default_rng(3)
    full = sigmoid(-2 + 1.5 * signal + 0.3 * noise)
    without = sigmoid(-2 + 1.5 * signal + 0.3 * rng.normal(size=y.size))
    d = paired_deltas(y, full, without, np.ones_like(y), groups, [0.1], n_boot=200, seed=4)
    for key in ("delta_auroc", "delta_brier", "delta_net_benefit_0.1"):
        assert d[key][1] <= 0 <= d[key][2]
    assert d["delta_brier"][0] == pytest.approx(brier(y, without) - brier(y, full))


def test_paired_intervals_are_narrower_than_the_unpaired_spread():
    y, signal, noise, groups = sample(seed=5)
    full = sigmoid(-2 + 1.5 * signal)
    without = sigmoid(-2 + 1.4 * signal)
    lo, hi = paired_deltas(y, full, without, np.ones_like(y), groups, [], n_boot=200, seed=6)["delta_auroc"][1:]
    assert hi - lo < 0.01  # same ranking, nearly: almost no paired uncertainty


def test_group_columns_keep_feature_order():
    got = group_columns(["a", "b", "c"], {"a": "bdnf", "b": "hrv", "c": "bdnf"})
    assert got == {"bdnf": ["a", "c"], "hrv": ["b"]}
