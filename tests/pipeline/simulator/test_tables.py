"""The frames: the latent truth, raw beats that agree with the summaries, questionnaires that track stress."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.pipeline.simulator.conftest import with_day

# shares the package's one simulated cohort (conftest.cohort, 4,000 patients) with the other tests
# of its group, so that one xdist worker builds it rather than both
pytestmark = pytest.mark.xdist_group("simulated_cohort")


def test_truth_covers_exactly_the_at_risk_weekly_landmarks(cohort, followed):
    truth = cohort.truth["landmark_risk"]
    assert truth.columns == ["patient_id", "landmark_date", "day", "true_risk_30d", "neuroplasticity", "stress"]
    assert truth.schema["landmark_date"] == pl.Date and truth.schema["day"] == pl.Int64
    expected = (
        followed.select("patient_id", "intake_date", "relapse_day", "last_day")
        .join(pl.DataFrame({"day": np.arange(0, 730, 7)}), how="cross")
        .filter(
            (pl.col("relapse_day").is_null() | (pl.col("relapse_day") > pl.col("day")))
            & (pl.col("last_day") > pl.col("day"))
        )
        .select("patient_id", (pl.col("intake_date") + pl.duration(days=pl.col("day"))).alias("landmark_date"), "day")
        .sort("patient_id", "day")
    )
    assert_frame_equal(truth.select("patient_id", "landmark_date", "day"), expected)
    assert truth["true_risk_30d"].is_between(0, 1).all()


def test_truth_patients_hold_latent_traits_and_true_event_days(cohort, followed):
    truth = cohort.truth["patients"]
    assert truth["patient_id"].to_list() == followed["patient_id"].to_list()
    assert {"neuroplasticity_intake", "stress_baseline", "engagement", "relapse_day", "dropout_day"} <= set(
        truth.columns
    )
    seen = truth.filter(pl.col("relapse_observed"))["relapse_day"]
    assert seen.to_list() == followed.filter(pl.col("relapse_day").is_not_null())["relapse_day"].to_list()


def test_raw_beats_carry_the_same_rmssd_as_the_summaries(cohort):
    """Artefact-filtered RMSSD from beats agrees with the summaries of the same process."""
    beats = cohort.tables["rr_intervals"].with_columns(prev=pl.col("rr_ms").shift().over("recording_id"))
    clean = beats.filter((pl.col("rr_ms") - pl.col("prev")).abs() <= 0.2 * pl.col("prev"))
    from_beats = clean.group_by("recording_id").agg(
        ((pl.col("rr_ms") - pl.col("prev")) ** 2).mean().sqrt().log().alias("log_rmssd")
    )
    summaries = cohort.tables["hrv"]["rmssd_ms"].log()
    assert from_beats["log_rmssd"].mean() == pytest.approx(summaries.mean(), abs=0.15)


def test_assessments_track_stress(cohort):
    scores = with_day(cohort, "assessments", "assessed_on")
    phq9 = scores.filter(pl.col("instrument") == "PHQ9")
    assert phq9["score"].is_between(0, 27).all()
    assert phq9.filter(pl.col("day") <= 2)["score"].mean() > phq9.filter(pl.col("day") >= 180)["score"].mean() + 1
    assert set(scores["instrument"]) == {"PHQ9", "GAD7", "craving_vas", "PCL5"}
