"""Therapy as of a landmark: scheduled / attended per modality, windows, recency, phase starts."""

import polars as pl
from polars.testing import assert_frame_equal

from features.asof import DAY, with_record_day
from features.config import Phase, TherapyConfig
from features.therapy import FEATURES, PHASE_START, add_therapy_features
from features.time import phase_start_expr
from tests.features.conftest import day, grid, typed

NULL = None
PHASES = [
    Phase(name="acute", start_day=0, end_day=13),
    Phase(name="early", start_day=14, end_day=89),
]


def build(sessions, landmarks):
    people, lm = grid(landmarks)
    lm = lm.with_columns(phase_start_expr(pl.col(DAY), PHASES).alias(PHASE_START))
    dated = None if sessions is None else with_record_day(sessions.lazy(), people, "session_date")
    return add_therapy_features(lm, dated, TherapyConfig(window_days=14)).select("patient_id", DAY, *FEATURES).collect()


def sessions():
    rows = [
        ("a", 0, "CBT", True, 60.0),
        ("a", 2, "MBI", False, 45.0),
        ("a", 5, "EMDR", True, None),
        ("a", 16, "CBT", True, 50.0),
        ("a", 16, "group", True, 90.0),
        ("a", 20, "MBI", True, 45.0),
        ("a", 30, "family", False, None),
        ("c", 1, "CBT", True, 60.0),
        ("c", 3, "CM", False, None),
    ]
    return typed(
        "therapy_sessions",
        {
            "patient_id": [r[0] for r in rows],
            "session_date": [day(r[1]) for r in rows],
            "modality": [r[2] for r in rows],
            "attended": [r[3] for r in rows],
            "duration_min": [r[4] for r in rows],
        },
    )


def test_therapy_features_by_hand():
    got = build(sessions(), {"a": [0, 5, 14, 16, 21, 35], "b": [0], "c": [3]})
    expected = pl.DataFrame(
        {
            "patient_id": ["a"] * 6 + ["b", "c"],
            DAY: [0, 5, 14, 16, 21, 35, 0, 3],
            "therapy_sessions_scheduled": [1, 3, 3, 5, 6, 7, 0, 2],
            "therapy_sessions_attended": [1, 2, 2, 4, 5, 5, 0, 1],
            "therapy_attendance_rate": [1.0, 2 / 3, 2 / 3, 0.8, 5 / 6, 5 / 7, NULL, 0.5],
            # window of 14 days: t-13 .. t
            "therapy_sessions_scheduled_window": [1, 3, 2, 3, 3, 1, 0, 2],
            "therapy_sessions_attended_window": [1, 2, 1, 3, 3, 0, 0, 1],
            "therapy_attendance_rate_window": [1.0, 2 / 3, 0.5, 1.0, 1.0, 0.0, NULL, 0.5],
            "therapy_cbt_attended": [1, 1, 1, 2, 2, 2, 0, 1],
            "therapy_mbi_scheduled": [0, 1, 1, 1, 2, 2, 0, 0],
            "therapy_mbi_attended_window": [0, 0, 0, 0, 1, 0, 0, 0],
            "therapy_other_scheduled": [0, 0, 0, 1, 1, 2, 0, 1],
            "therapy_other_attended_window": [0, 0, 0, 1, 1, 0, 0, 0],
            "therapy_days_since_attended": [0, 0, 9, 0, 1, 15, NULL, 2],
            # first attended session in the current phase (acute 0-13, early 14-89)
            "therapy_cbt_started_in_phase": [1, 1, 0, 0, 0, 0, 0, 1],
            "therapy_mbi_started_in_phase": [0, 0, 0, 0, 1, 1, 0, 0],
            "therapy_emdr_started_in_phase": [0, 1, 0, 0, 0, 0, 0, 0],
            # an attended session without a duration makes the total unknown
            "therapy_minutes_attended": [60.0, NULL, NULL, NULL, NULL, NULL, 0.0, 60.0],
        }
    )
    assert_frame_equal(got.select(expected.columns), expected, check_dtypes=False)
    assert all(got.schema[c] == pl.Float64 for c in FEATURES)


def test_started_in_phase_is_null_outside_every_phase():
    got = build(sessions(), {"a": [100]})
    assert got["therapy_cbt_started_in_phase"].item() is None


def test_no_table_gives_null_columns():
    got = build(None, {"a": [0, 7]})
    assert all(got[c].null_count() == 2 for c in FEATURES)
