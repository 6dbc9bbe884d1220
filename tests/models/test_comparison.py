"""Promotion evidence: paired patient-bootstrap differences per phase, refusal with phase and amount."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.comparison import compare
from models.metrics import evaluate, group_metrics, paired_differences


@pytest.fixture(scope="module")
def rows() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    n = 4000
    groups = np.repeat(np.arange(n // 4), 4)
    x = rng.normal(size=n)
    good = 1 / (1 + np.exp(-(x - 2)))
    y = (rng.random(n) < good).astype(float)
    weak = 1 / (1 + np.exp(-(0.3 * x + rng.normal(size=n) - 2)))
    phase = np.where(groups < n // 8, "early", "late")
    weak = np.where(phase == "early", good, weak)  # the same model in early, worse in late
    return pl.DataFrame({"phase": phase, "patient_id": groups.astype(str), "label": y, "ipcw_weight": 1.0,
                         "risk_challenger": weak, "risk_champion": good})


def test_a_worse_challenger_is_refused_naming_the_phase_and_amount(rows):
    result = compare(rows, n_boot=60, seed=1, min_event_patients=10)
    assert result.refused
    assert len(result.reasons) == 1 and result.reasons[0].startswith("phase 'late': AUROC ")
    early = result.table.filter(pl.col("phase") == "early")
    assert (early["difference"] == 0).all() and not early["worse"].any()


def test_a_better_challenger_passes(rows):
    swapped = rows.rename({"risk_challenger": "risk_champion", "risk_champion": "risk_challenger"})
    assert not compare(swapped, n_boot=60, seed=1, min_event_patients=10).refused


def test_phases_with_too_few_event_patients_cannot_refuse(rows):
    few = pl.col("patient_id").cast(pl.Int64) < 560  # late (worse) keeps 60 patients, too few events to judge
    result = compare(rows.filter(few), n_boot=30, seed=1, min_event_patients=30)
    judged = dict(result.table.select("phase", "judged").unique().iter_rows())
    assert judged == {"early": True, "late": False} and not result.refused


def test_no_evidence_is_not_evidence_of_no_worse(rows):
    nothing_judged = compare(rows, n_boot=30, seed=1, min_event_patients=10_000)
    assert not nothing_judged.table["judged"].any()
    assert nothing_judged.reasons == ["no phase has at least 10000 patients with an event (and some without) on "
                                      "these rows, so no phase could be judged"]
    no_intervals = compare(rows, n_boot=0, seed=1, min_event_patients=10)
    assert no_intervals.refused and all("no interval for the" in r for r in no_intervals.reasons)
    assert len(no_intervals.reasons) == 4  # both metrics in both (judged) phases


def test_paired_interval_is_of_the_difference_and_matches_the_point_estimates(rows):
    y, ids = rows["label"].to_numpy(), rows["patient_id"].to_numpy()
    a, b = rows["risk_challenger"].to_numpy(), rows["risk_champion"].to_numpy()
    diff = paired_differences(y, a, b, None, ids, n_boot=40, seed=2)
    ea, eb = evaluate(y, a, None, ids, 0, 0), evaluate(y, b, None, ids, 0, 0)
    assert diff["auroc"][0] == pytest.approx(ea["auroc"][0] - eb["auroc"][0])
    assert diff["auroc"][1] <= diff["auroc"][0] <= diff["auroc"][2]


def test_group_metrics_intervals_surround_their_estimates(rows):
    y, ids, p = rows["label"].to_numpy(), rows["patient_id"].to_numpy(), rows["risk_champion"].to_numpy()
    m = group_metrics(y, p, None, ids, n_boot=60, seed=3)
    assert m["oe_ratio"][0] == pytest.approx(y.sum() / p.sum())
    for est, lo, hi in m.values():
        assert lo <= est <= hi
    assert m["auroc"] == pytest.approx(evaluate(y, p, None, ids, 60, 3)["auroc"])  # same resamples
