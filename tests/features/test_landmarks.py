"""Landmark grid, at-risk rule, labels, censoring and IPCW weights on hand-computed cases."""

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.asof import patient_index
from features.config import LandmarkConfig, Phase
from features.landmarks import censoring_survival, landmark_rows, outcome_days
from tests.features.conftest import day, outcomes, patients

WEEKLY = LandmarkConfig(spacing_days=7, horizon_days=30)


def rows(relapse, followup, phases=None, landmarks=WEEKLY):
    ids = [f"p{i}" for i in range(len(followup))]
    people = patient_index(patients(ids).lazy())
    out = landmark_rows(people, outcomes(ids, relapse, followup).lazy(), phases or DEFAULT_PHASES, landmarks)
    return out.select("patient_id", "day", "phase", "label", "censored", "ipcw_weight").collect()


DEFAULT_PHASES = [
    Phase(name="acute", start_day=0, end_day=13),
    Phase(name="early", start_day=14, end_day=89),
    Phase(name="consolidation", start_day=90, end_day=364),
    Phase(name="maintenance", start_day=365, end_day=729),
]

# Six patients; censoring KM by hand (a relapse on a day counts before a censoring that day):
#   day 10: 6 observed, 1 relapse -> 5 at risk of censoring, 1 censored: G = 4/5      = 0.8
#   day 20: 4 at risk, 1 censored: G = 0.8 * 3/4                                     = 0.6
#   day 30: a relapse only: G stays 0.6
#   day 40: 2 at risk, 1 censored: G = 0.6 * 1/2                                     = 0.3
#   day 60: 1 at risk, 1 censored: G = 0
KM_RELAPSE = [10, None, None, 30, None, None]
KM_FOLLOWUP = [10, 10, 20, 30, 40, 60]


def test_censoring_kaplan_meier_matches_hand_computation():
    ids = [f"p{i}" for i in range(6)]
    days = outcome_days(patient_index(patients(ids).lazy()), outcomes(ids, KM_RELAPSE, KM_FOLLOWUP).lazy())
    km = censoring_survival(days).collect()
    expected = pl.DataFrame({"day": [10, 20, 30, 40, 60], "survival": [0.8, 0.6, 0.6, 0.3, 0.0]})
    assert_frame_equal(km, expected, check_dtypes=False)


def test_labels_censoring_and_ipcw_weights_match_hand_computation():
    got = rows(KM_RELAPSE, KM_FOLLOWUP).filter(pl.col("day") <= 28 + 28)
    g = {0: 1.0, 7: 1.0, 14: 0.8, 21: 0.6, 28: 0.6}  # G(t) at the landmarks
    expected = [
        # p0: relapse day 10 -> s = 10, weight G(t)/G(9) = G(t)
        ("p0", 0, 1, 1.0),
        ("p0", 7, 1, 1.0),
        # p1, p2: follow-up ends inside every horizon without relapse -> censored
        ("p1", 0, None, None),
        ("p1", 7, None, None),
        ("p2", 0, None, None),
        ("p2", 7, None, None),
        ("p2", 14, None, None),
        # p3: relapse day 30 -> s = 30, weight G(t)/G(29) = G(t)/0.6
        *[("p3", t, 1, g[t] / 0.6) for t in (0, 7, 14, 21, 28)],
        # p4: followed to day 40 -> uncensored while t + 30 <= 40, s = t + 30
        ("p4", 0, 0, 1.0 / 0.6),
        ("p4", 7, 0, 1.0 / 0.6),
        *[("p4", t, None, None) for t in (14, 21, 28)],
        # p5: followed to day 60 -> G(t)/G(t+29)
        ("p5", 0, 0, 1 / 0.6),
        ("p5", 7, 0, 1 / 0.6),
        ("p5", 14, 0, 0.8 / 0.3),
        ("p5", 21, 0, 0.6 / 0.3),
        ("p5", 28, 0, 0.6 / 0.3),
        # no landmark after day 30 = 60 (the longest follow-up) - 30: no window is fully seen
    ]
    want = pl.DataFrame(
        {
            "patient_id": [e[0] for e in expected],
            "day": [e[1] for e in expected],
            "label": pl.Series([e[2] for e in expected], dtype=pl.Int8),
            "censored": [e[2] is None for e in expected],
            "ipcw_weight": pl.Series([e[3] for e in expected], dtype=pl.Float64),
        }
    )
    assert_frame_equal(got.drop("phase"), want, check_dtypes=False)
    assert got.schema["label"] == pl.Int8 and got.schema["censored"] == pl.Boolean


@pytest.mark.parametrize(
    ("relapse", "followup", "label_at_14", "last_landmark"),
    [
        (14, 14, "absent", 7),  # relapse exactly on day t: not at risk at t
        (44, 44, 1, 42),  # relapse on t + 30: inside the horizon
        (45, 45, 0, 42),  # relapse on t + 31: outside, and followed through t + 30
        (None, 14, "absent", 7),  # follow-up ends on t: not at risk at t
        (None, 44, 0, 42),  # follow-up ends on t + 30: observed through the horizon
        (None, 43, "censored", 42),  # follow-up ends on t + 29: censored
        (15, 15, 1, 14),  # relapse the day after the landmark
    ],
)
def test_at_risk_and_horizon_boundaries(relapse, followup, label_at_14, last_landmark):
    # a second patient followed for years keeps the cohort's administrative end far away
    got = rows([relapse, None], [followup, 2000]).filter(pl.col("patient_id") == "p0")
    assert got["day"].max() == last_landmark
    at_14 = got.filter(pl.col("day") == 14)
    if label_at_14 == "absent":
        assert at_14.height == 0
    elif label_at_14 == "censored":
        assert at_14["censored"].item() and at_14["label"].item() is None and at_14["ipcw_weight"].item() is None
    else:
        assert at_14["label"].item() == label_at_14 and not at_14["censored"].item()


def test_landmarks_stop_at_the_last_phase_and_take_its_phase():
    got = rows([None], [2000])
    assert got["day"].to_list() == list(range(0, 730, 7))
    phase = dict(zip(got["day"], got["phase"], strict=True))
    assert (phase[7], phase[14], phase[84], phase[91], phase[364], phase[371], phase[728]) == (
        "acute",
        "early",
        "early",
        "consolidation",
        "consolidation",
        "maintenance",
        "maintenance",
    )


def test_custom_phases_and_spacing():
    phases = [Phase(name="a", start_day=0, end_day=4), Phase(name="b", start_day=5, end_day=10)]
    got = rows([None], [100], phases=phases, landmarks=LandmarkConfig(spacing_days=5, horizon_days=3))
    assert got["day"].to_list() == [0, 5, 10]
    assert got["phase"].to_list() == ["a", "b", "b"]
    assert got["label"].to_list() == [0, 0, 0]


def test_patients_without_outcomes_and_landmark_dates():
    people = patient_index(patients(["a", "b"]).lazy())
    out = landmark_rows(people, outcomes(["a"], [None], [50]).lazy(), DEFAULT_PHASES, WEEKLY).collect()
    assert out["patient_id"].unique().to_list() == ["a"]
    assert out["landmark_date"].to_list() == [day(0), day(7), day(14)]


def test_uncensored_weights_are_at_least_one():
    relapse = [None, 5, None, 50, None, 90, None]
    followup = [3, 5, 33, 50, 70, 90, 400]
    got = rows(relapse, followup)
    weights = got.filter(~pl.col("censored"))["ipcw_weight"]
    assert weights.null_count() == 0 and weights.min() >= 1.0


def test_no_landmark_whose_horizon_passes_the_cohorts_longest_follow_up():
    # everyone followed at most 182 days (pharmacoSmoking-like): the last full window starts on
    # day 152, so weekly landmarks stop at 147 and the late relapse (day 170) labels nothing
    got = rows([170, None, None], [170, 182, 100])
    assert got["day"].max() == 147
    assert got.filter(pl.col("patient_id") == "p0")["label"].to_list() == [0] * 20 + [1] * 2
    assert got.filter(pl.col("phase") == "maintenance").height == 0
