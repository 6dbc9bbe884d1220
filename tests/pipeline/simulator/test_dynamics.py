"""The daily dynamics: unit tests of the steps, and data tests that the cohort shows each encoded mechanism."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipeline.simulator.cohort import draw_patients
from pipeline.simulator.dynamics import (
    NEVER,
    Record,
    State,
    accumulate_hazards,
    count_sessions,
    initial_state,
    keep_landmarks,
)
from pipeline.simulator.terms import Inputs, daily_inputs, simulated_days
from tests.pipeline.simulator.conftest import PHASES, rate_per_1000_days, with_day

# shares the package's one simulated cohort (conftest.cohort, 4,000 patients) with the other tests
# of its group, so that one xdist worker builds it rather than both
pytestmark = pytest.mark.xdist_group("simulated_cohort")


def three_patients(config) -> tuple[Inputs, State]:
    pat = draw_patients(np.random.default_rng(0), config, 3)
    inputs = daily_inputs(config, pat, simulated_days(config.cohort))
    return inputs, initial_state(np.random.default_rng(1), inputs)


# --- the steps ------------------------------------------------------------------------------------


def test_an_event_happens_on_the_first_day_its_cumulative_hazard_passes_the_threshold(config):
    _, state = three_patients(config)
    state.relapse_threshold[:] = [0.5, 1.5, 10.0]
    state.dropout_threshold[:] = 10.0
    for d in (1, 2, 3):
        accumulate_hazards(state, np.log(np.full(3, 0.6)), np.full(3, -50.0), d)
    assert state.relapse_day.tolist() == [1, 3, NEVER]
    assert (state.dropout_day == NEVER).all()


def test_a_landmark_closes_with_the_probability_of_relapse_over_the_horizon(config):
    inputs, state = three_patients(config)
    record = Record(np.zeros(0, bool), {}, {}, [], [])
    keep_landmarks(record, state, inputs, 0)
    assert record.landmarks[0].patients.tolist() == [0, 1, 2]
    state.relapse_hazard += [0.0, 0.1, 1.0]
    for d in range(1, config.cohort.horizon_days + 1):
        keep_landmarks(record, state, inputs, d)
    np.testing.assert_allclose(record.risks[0], -np.expm1(-np.array([0.0, 0.1, 1.0])))


def test_any_attended_session_resets_the_run_of_missed_ones(config):
    inputs, state = three_patients(config)
    cbt, weight = np.int8(inputs.kinds.cbt), inputs.session_weight
    count_sessions(state, inputs, np.array([0, 0, 1]), np.full(3, cbt), np.array([False, False, True]), 5)
    assert state.missed_streak.tolist() == [2, 0, 0] and state.last_missed[0] == 5
    assert state.exposure.missed[0] == pytest.approx(2 * weight) and state.exposure.cbt[1] == pytest.approx(weight)
    assert state.core_sessions.tolist() == [0.0, 1.0, 0.0]
    count_sessions(state, inputs, np.array([0, 0]), np.full(2, cbt), np.array([True, False]), 9)
    assert state.missed_streak[0] == 0 and state.last_missed[0] == 5


# --- the mechanisms (data tests) ------------------------------------------------------------------


def test_true_risk_matches_the_observed_30_day_relapse_rate(cohort, followed):
    rows = cohort.truth["landmark_risk"].join(followed.select("patient_id", "relapse_day", "last_day"), on="patient_id")
    event = pl.col("relapse_day").is_between(pl.col("day") + 1, pl.col("day") + 30).fill_null(False)
    uncensored = rows.filter(event | (pl.col("last_day") >= pl.col("day") + 30))
    observed = uncensored.select(event.mean()).item()
    assert uncensored["true_risk_30d"].mean() == pytest.approx(observed, rel=0.1)


def test_relapse_hazard_per_person_day_is_highest_in_the_acute_phase(followed):
    rates = []
    for start, end in PHASES:
        days = (pl.min_horizontal(pl.col("last_day"), pl.lit(end)) - start + 1).clip(0).sum()
        events = pl.col("relapse_day").is_between(start, end).sum()
        rates.append(followed.select(events / days).item())
    assert rates[0] > 2 * rates[1]
    assert rates == sorted(rates, reverse=True)


@pytest.mark.parametrize(
    ("group", "rest"),
    [
        (pl.col("age_at_intake") < 25, pl.col("age_at_intake") >= 25),
        (pl.col("sex") == "female", pl.col("sex") == "male"),
        (pl.col("polysubstance"), ~pl.col("polysubstance")),
        (pl.col("deprivation_decile") <= 3, pl.col("deprivation_decile") >= 8),
        (pl.col("trauma_history"), ~pl.col("trauma_history")),
        (pl.col("housing") != "stable", pl.col("housing") == "stable"),
    ],
    ids=["young", "female", "polysubstance", "deprived", "trauma", "housing"],
)
def test_high_risk_groups_relapse_more(followed, group, rest):
    assert rate_per_1000_days(followed.filter(group)) > 1.3 * rate_per_1000_days(followed.filter(rest))


def test_bdnf_is_sparse_and_rises_with_abstinence(cohort):
    n = cohort.tables["patients"].height
    per_patient = cohort.tables["bdnf"].group_by("patient_id").len()
    assert 0.33 <= 1 - per_patient.height / n <= 0.47
    assert per_patient["len"].max() <= 6
    samples = with_day(cohort, "bdnf", "sample_date").with_columns(log_bdnf=pl.col("bdnf_ng_ml").log())
    early = samples.filter(pl.col("day") <= 14)["log_bdnf"].mean()
    late = samples.filter(pl.col("day") >= 180)["log_bdnf"].mean()
    assert late - early > 0.15
    change = (
        samples.sort("day")
        .group_by("patient_id")
        .agg((pl.col("log_bdnf").last() - pl.col("log_bdnf").first()).alias("change"), pl.len())
        .filter(pl.col("len") >= 2)
    )
    assert change["change"].mean() > 0.1


def test_rmssd_is_higher_after_mbi_attendance(cohort):
    mbi = (
        cohort.tables["therapy_sessions"]
        .filter(pl.col("modality") == "MBI")
        .group_by("patient_id")
        .agg(attended=pl.col("attended").sum())
    )
    later = with_day(cohort, "hrv", "recorded_at").filter(pl.col("day") >= 90).join(mbi, on="patient_id", how="left")
    log_rmssd = pl.col("rmssd_ms").log().mean()
    attended = later.filter(pl.col("attended") >= 4).select(log_rmssd).item()
    never = later.filter(pl.col("attended").is_null()).select(log_rmssd).item()
    assert attended - never > 0.05


def test_emdr_helps_trauma_patients_after_the_acute_phase_more_than_others(cohort):
    """Geometric-mean true risk at landmarks with EMDR sessions in the past 4 weeks vs without.

    Sessions *scheduled* (not attended) compare groups set by random assignment, not engagement.
    """
    emdr = with_day(cohort, "therapy_sessions", "session_date").filter(pl.col("modality") == "EMDR")
    rows = cohort.truth["landmark_risk"].filter(pl.col("day").is_between(28, 120))
    recent = (
        rows.select("patient_id", "day")
        .join(emdr.select("patient_id", pl.col("day").alias("session")), on="patient_id")
        .filter(pl.col("session").is_between(pl.col("day") - 27, pl.col("day")))
        .group_by("patient_id", "day")
        .len()
    )
    risk = (
        rows.join(recent, on=["patient_id", "day"], how="left")
        .join(cohort.truth["patients"].select("patient_id", "trauma_history"), on="patient_id")
        .group_by("trauma_history", (pl.col("len").fill_null(0) >= 2).alias("emdr"))
        .agg(pl.col("true_risk_30d").log().mean())
    )
    log_risk = {(r["trauma_history"], r["emdr"]): r["true_risk_30d"] for r in risk.iter_rows(named=True)}
    trauma_effect = log_risk[(True, True)] - log_risk[(True, False)]
    other_effect = log_risk[(False, True)] - log_risk[(False, False)]
    assert trauma_effect < -0.15 and trauma_effect < other_effect - 0.1, (trauma_effect, other_effect)


def test_age_acts_in_bands_with_a_step_at_25(followed):
    """18-24s relapse far more than 25-29s, while within each band age matters little."""
    rate = lambda lo, hi: rate_per_1000_days(followed.filter(pl.col("age_at_intake").is_between(lo, hi, closed="left")))  # noqa: E731
    step = rate(21, 25) / rate(25, 30)
    within = rate(18, 21) / rate(21, 25)
    assert step > 1.8 and within < 1.4 and step > within + 0.6, (step, within)


def test_a_run_of_missed_sessions_raises_the_true_risk(cohort):
    """Geometric-mean true risk at landmarks whose last two sessions (within 3 weeks) were both
    missed, vs landmarks whose last session in that time was attended."""
    sessions = (
        with_day(cohort, "therapy_sessions", "session_date")
        .group_by("patient_id", "day")
        .agg(pl.col("attended").any())
        .sort("patient_id", "day")
        .with_columns(
            run=(~pl.col("attended") & ~pl.col("attended").shift(1).over("patient_id").fill_null(True)),
            session=pl.col("day"),
        )
    )
    rows = cohort.truth["landmark_risk"].filter(pl.col("day") >= 14).sort("patient_id", "day")
    last = rows.join_asof(
        sessions.select("patient_id", "day", "session", "attended", "run"),
        on="day",
        by="patient_id",
        strategy="backward",
        tolerance=21,
        check_sortedness=False,
    ).filter(pl.col("session").is_not_null())
    log_risk = last.group_by("run", "attended").agg(pl.col("true_risk_30d").log().mean(), pl.len())
    value = {(r["run"], r["attended"]): r["true_risk_30d"] for r in log_risk.iter_rows(named=True)}
    assert value[(True, False)] - value[(False, True)] > 0.5, value


def test_dropout_depends_on_deprivation_and_housing(cohort):
    truth = cohort.truth["patients"].with_columns(
        dropped=(pl.col("dropout_day") == pl.col("last_followup_day")).fill_null(False)
    )

    def per_1000_days(group: pl.Expr) -> float:
        part = truth.filter(group)
        return 1000 * part["dropped"].sum() / (part["last_followup_day"] + 1).sum()

    assert per_1000_days(pl.col("deprivation_decile") <= 3) > per_1000_days(pl.col("deprivation_decile") >= 8)
    assert per_1000_days(pl.col("housing") != "stable") > per_1000_days(pl.col("housing") == "stable")
