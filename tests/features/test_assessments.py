"""Questionnaires as of a landmark: latest score per instrument, its age, change since first."""

import polars as pl
from polars.testing import assert_frame_equal

from features.asof import DAY, with_record_day
from features.assessments import add_assessment_features, feature_names
from tests.features.conftest import day, grid, typed

NULL = None


def build(records, landmarks, instruments=("GAD7", "PHQ9")):
    people, lm = grid(landmarks)
    dated = None if records is None else with_record_day(records.lazy(), people, "assessed_on")
    out = add_assessment_features(lm, dated, instruments)
    return out.select("patient_id", DAY, *feature_names(instruments)).collect()


def records():
    rows = [
        ("a", 0, "PHQ9", 10.0),
        ("a", 14, "PHQ9", 12.0),
        ("a", 14, "PHQ9", 14.0),
        ("a", 30, "PHQ9", 8.0),
        ("a", 14, "GAD7", 5.0),
        ("a", 3, "BDI", 20.0),
    ]
    return typed(
        "assessments",
        {
            "patient_id": [r[0] for r in rows],
            "assessed_on": [day(r[1]) for r in rows],
            "instrument": [r[2] for r in rows],
            "score": [r[3] for r in rows],
        },
    )


def test_assessment_features_by_hand():
    got = build(records(), {"a": [0, 7, 14, 30], "b": [0]})
    expected = pl.DataFrame(
        {
            "patient_id": ["a"] * 4 + ["b"],
            DAY: [0, 7, 14, 30, 0],
            "assess_gad7_latest": [NULL, NULL, 5.0, 5.0, NULL],
            "assess_gad7_age_days": [NULL, NULL, 0.0, 16.0, NULL],
            "assess_gad7_change_since_first": [NULL, NULL, 0.0, 0.0, NULL],
            # two PHQ9 scores on day 14: their mean, 13
            "assess_phq9_latest": [10.0, 10.0, 13.0, 8.0, NULL],
            "assess_phq9_age_days": [0.0, 7.0, 0.0, 0.0, NULL],
            "assess_phq9_change_since_first": [0.0, 0.0, 3.0, -2.0, NULL],
        }
    )
    assert_frame_equal(got, expected, check_dtypes=False)


def test_instrument_names_become_safe_columns():
    assert feature_names(["craving_vas", "PHQ-9"]) == [
        "assess_craving_vas_latest",
        "assess_craving_vas_age_days",
        "assess_craving_vas_change_since_first",
        "assess_phq_9_latest",
        "assess_phq_9_age_days",
        "assess_phq_9_change_since_first",
    ]


def test_no_table_gives_null_columns():
    got = build(None, {"a": [0]})
    assert got.select(feature_names(("GAD7", "PHQ9"))).null_count().row(0) == (1,) * 6


def test_an_instrument_matches_however_an_export_spells_it():
    exact = build(records(), {"a": [0, 7, 14, 30]})
    respelled = records().with_columns(pl.col("instrument").replace({"PHQ9": "phq9 ", "GAD7": "Gad\u200b7"}))
    assert_frame_equal(build(respelled, {"a": [0, 7, 14, 30]}), exact)
    other = records().with_columns(pl.col("instrument").replace({"PHQ9": "PHQ-9"}))  # another name: unknown
    assert build(other, {"a": [0, 7, 14, 30]})["assess_phq9_latest"].null_count() == 4


def test_a_categorical_instrument_column_reads_as_text():
    exact = build(records(), {"a": [0, 7, 14, 30]})
    categorical = records().with_columns(pl.col("instrument").cast(pl.Categorical))
    assert_frame_equal(build(categorical, {"a": [0, 7, 14, 30]}), exact)
