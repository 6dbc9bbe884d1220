"""Who the patients are and when they are measured: ages, intake dates and wearable schedules."""

from __future__ import annotations

import polars as pl
import pytest

# shares the package's one simulated cohort (conftest.cohort, 4,000 patients) with the other tests
# of its group, so that one xdist worker builds it rather than both
pytestmark = pytest.mark.xdist_group("simulated_cohort")


def test_cohort_shape_ages_and_overall_relapse(cohort, followed):
    age = cohort.tables["patients"]["age_at_intake"]
    assert 0.84 <= (age <= 30).mean() <= 0.90
    assert age.min() >= 14 and (age < 18).sum() > 0
    assert 0.30 <= followed["relapse_day"].is_not_null().mean() <= 0.45
    intake = cohort.tables["patients"]["intake_date"]
    assert str(intake.min()) >= "2023-01-01" and str(intake.max()) <= "2024-12-31"


def test_wearables_have_gaps_and_raw_beats_fit_the_contract(cohort, config):
    n = cohort.tables["patients"].height
    hrv_ids = set(cohort.tables["hrv"]["patient_id"])
    rr = cohort.tables["rr_intervals"]
    rr_ids = set(rr["patient_id"])
    assert not hrv_ids & rr_ids
    assert 0.30 <= 1 - len(hrv_ids | rr_ids) / n <= 0.55, len(hrv_ids | rr_ids) / n
    assert 0.12 <= len(rr_ids) / len(hrv_ids | rr_ids) <= 0.28, len(rr_ids) / len(hrv_ids | rr_ids)
    assert cohort.tables["hrv"].schema["recorded_at"] == pl.Datetime("us", "UTC")
    per_recording = rr.group_by("patient_id", "recording_id").len()
    assert per_recording["len"].is_between(*config.hrv.raw_beats).all()
    assert per_recording.group_by("patient_id").len()["len"].max() <= config.hrv.raw_max_recordings
    assert rr["rr_ms"].is_between(200, 3000).all()
