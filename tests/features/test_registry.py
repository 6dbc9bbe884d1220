"""Every output column has a registry entry; reason sentences read well."""

import math

import polars as pl
import pytest

from features.build import scoring_table
from features.registry import FeatureInfo, describe, feature_info, feature_registry
from features.spec import fit_feature_spec
from tests.features.conftest import cohort, day, features_config
from tests.features.test_build import training


def test_every_output_column_has_an_entry(config):
    tables = cohort()
    tables["patients"] = tables["patients"].with_columns(visits=pl.Series([1, 2, 3, 4]))
    features = features_config(config, demographic={"extra": ["region", "visits"]})
    spec, table = training(tables, config, features)
    scored = scoring_table(tables, config.phases, features, spec, day(40)).collect()
    registry = feature_registry(spec)
    missing = [c for c in [*table.columns, *scored.columns] if c not in registry]
    assert missing == []
    for name in spec.feature_names:
        info = feature_info(name, spec)
        assert isinstance(info, FeatureInfo) and info.name == name and info.description
        assert info.group in spec.groups_used


def test_groups_of_generated_entries(config):
    spec = fit_feature_spec(cohort(), features_config(config, demographic={"extra": ["region"]}))
    registry = feature_registry(spec)
    assert registry["region_north"].group == "demographic"
    assert registry["ethnicity_white_british"].description == "Ethnicity is White British"
    assert registry["hrv_pnn50_window_mean"].group == "hrv"
    assert registry["assess_craving_vas_change_since_first"].group == "assessments"
    assert registry["therapy_emdr_started_in_phase"].unit == "0/1"


def test_unknown_column():
    with pytest.raises(KeyError, match="nonsense"):
        feature_info("nonsense")


@pytest.mark.parametrize(
    ("name", "value", "sentence"),
    [
        ("bdnf_change_since_first_pct", -31.2, "BDNF has fallen 31% since intake"),
        ("bdnf_change_since_first_pct", 12.0, "BDNF has risen 12% since intake"),
        ("bdnf_change_since_first_pct", 0.0, "BDNF is unchanged since intake"),
        ("trauma_history", 1.0, "Has a history of trauma"),
        ("trauma_history", 0.0, "No trauma history recorded"),
        (
            "hrv_rmssd_window_slope_30d",
            -4.4,
            "RMSSD is falling by 4 ms a month over the last 28 days",
        ),
        (
            "therapy_mbi_started_in_phase",
            1.0,
            "Started mindfulness (MBI) in the current recovery phase",
        ),
        (
            "therapy_attendance_rate_window",
            0.25,
            "Attended 25% of scheduled therapy sessions in the last 28 days",
        ),
        (
            "assess_phq9_change_since_first",
            -3.0,
            "PHQ9 score has fallen 3 points since first assessed",
        ),
        ("sex_female", 1.0, "Sex: female"),
        ("age_at_intake", 19.0, "Aged 19 at intake"),
        ("bdnf_latest", None, "Latest serum BDNF: not recorded"),
        ("bdnf_latest", math.nan, "Latest serum BDNF: not recorded"),
    ],
)
def test_sentences(config, name, value, sentence):
    spec = fit_feature_spec(cohort(), config.features)
    assert describe(name, value, spec=spec) == sentence


def test_sentences_that_use_the_row(config):
    spec = fit_feature_spec(cohort(), config.features)
    row = {"therapy_sessions_scheduled_window": 6.0}
    assert describe("therapy_sessions_attended_window", 2.0, spec=spec, row=row) == (
        "Attended 2 of 6 therapy sessions in the last 28 days"
    )
    assert describe("therapy_sessions_attended_window", 2.0, spec=spec) == (
        "Attended 2 therapy session(s) in the last 28 days"
    )
    assert describe(
        "therapy_sessions_attended_window",
        2.0,
        spec=spec,
        row={"therapy_sessions_scheduled_window": None},
    ) == ("Attended 2 therapy session(s) in the last 28 days")


def test_describe_without_a_spec():
    assert describe("assess_gad7_latest", 6.0) == "Latest gad7 score is 6"
    assert describe("phase", "early") == "In the early phase"
