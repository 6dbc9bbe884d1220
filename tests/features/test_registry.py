"""Every output column has a registry entry; reason sentences read well."""

import math
import re

import numpy as np
import polars as pl
import pytest

from features import ENGINE
from features.build import scoring_table
from features.reasons import compile_template, render_values
from features.registry import FeatureInfo, describe, feature_info, feature_registry
from features.spec import fit_feature_spec
from tests.features.conftest import cohort, day, features_config
from tests.features.test_build import training


def test_every_output_column_has_an_entry(config):
    tables = cohort()
    tables["patients"] = tables["patients"].with_columns(visits=pl.Series([1, 2, 3, 4]))
    features = features_config(config, demographic={"extra": ["region", "visits"]})
    spec, table = training(tables, config, features)
    scored = scoring_table(tables, config.phases, features, spec, day(40)).collect(engine=ENGINE)
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
    assert registry["ethnicity_white_british"].kind == "sensitive"
    assert registry["housing_unstable"].concept_name == "housing" and registry["housing_unstable"].level == "unstable"
    assert registry["assess_phq9_age_days"].kind == "measurement_age"
    assert registry["hrv_pnn50_window_mean"].group == "hrv"
    assert registry["assess_craving_vas_change_since_first"].group == "assessments"
    assert registry["therapy_emdr_started_in_phase"].unit == "0/1"


def test_unknown_column():
    with pytest.raises(KeyError, match="nonsense"):
        feature_info("nonsense")


@pytest.mark.parametrize(
    ("name", "value", "sentence"),
    [
        ("bdnf_change_since_first_pct", -31.2, "Serum BDNF has fallen 31% since the first sample"),
        ("bdnf_change_since_first_pct", 12.0, "Serum BDNF has risen 12% since the first sample"),
        ("bdnf_change_since_first_pct", 0.0, "Serum BDNF is unchanged since the first sample"),
        ("bdnf_change_since_first", -0.04, "Serum BDNF is unchanged since the first sample"),  # shown as 0.0
        ("bdnf_change_since_first", -0.06, "Serum BDNF has fallen 0.1 ng/mL since the first sample"),
        ("bdnf_first", 21.04, "First serum BDNF sample was 21.0 ng/mL"),
        ("polysubstance", float("nan"), "Use of other substances besides ketamine: not recorded"),
        ("trauma_history", 1.0, "Has a history of trauma"),
        ("trauma_history", 0.0, "No history of trauma"),
        (
            "hrv_rmssd_window_slope_30d",
            -4.4,
            "Heart-rate variability (RMSSD) is falling by 4 ms a month over the last 28 days",
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
            "Depression score (PHQ-9) has fallen by 3 since first assessed",
        ),
        ("sex_female", 1.0, "Sex: female"),
        ("age_at_intake", 19.0, "Aged 19 at intake"),
        ("age_at_intake", 17.9, "Aged 17 at intake"),  # completed years: still under 18
        ("prior_treatments", 1.0, "1 previous treatment episode"),
        ("prior_treatments", 2.0, "2 previous treatment episodes"),
        ("assess_craving_vas_latest", 46.0, "Latest craving (0–100 scale) is 46"),
        ("assess_phq9_age_days", 321.0, "Latest depression score (PHQ-9) is 321 days old"),
        ("hrv_lf_hf_latest", 1.504, "Latest stress balance of heart rhythm (LF/HF ratio) is 1.5"),
        ("therapy_days_since_attended", None, "Has not attended a therapy session yet"),
        ("housing_unstable", 1.0, "Housing: unstable"),
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
        "Attended 2 of 6 therapy sessions scheduled in the last 28 days"
    )
    assert describe("therapy_sessions_attended_window", 2.0, spec=spec) == (
        "Therapy sessions attended in the last 28 days: 2"
    )
    assert describe(
        "therapy_sessions_attended_window",
        2.0,
        spec=spec,
        row={"therapy_sessions_scheduled_window": None},
    ) == ("Therapy sessions attended in the last 28 days: 2")


def test_describe_without_a_spec():
    assert describe("assess_gad7_latest", 6.0) == "Latest anxiety score (GAD-7) is 6"
    assert describe("assess_pcl5_age_days", 321.0) == "Latest PTSD checklist (PCL-5) score is 321 days old"
    assert describe("assess_sleep_quality_latest", 6.0) == "Latest sleep quality is 6"
    assert describe("phase", "early") == "In the early phase"


LEAKS = re.compile(r"\(s\)|\b[a-z0-9]+_[a-z0-9_]+\b|\bis not\b|\{|\}|nan|None")


def test_every_entry_reads_as_plain_language(config):
    """Every feature's sentence, for typical, zero, negative and missing values, with and without
    the other columns it reads: no column name, "(s)", "is not", unfilled field or NaN."""
    tables = cohort()
    tables["patients"] = tables["patients"].with_columns(visits_per_month=pl.Series([1, 2, 3, 4]))
    features = features_config(config, demographic={"extra": ["region", "visits_per_month"]})
    spec = fit_feature_spec(tables, features)
    registry = feature_registry(spec)
    names = [n for n, info in registry.items() if info.kind not in ("key", "outcome")]
    assert len(names) > 80
    values = np.array([12.4, 1.0, 0.0, -3.6, np.nan])
    for name in names:
        compiled = compile_template(registry[name])
        for known in (np.nan, 5.0):  # the other columns a sentence reads: unknown, then known
            refs = {c: np.full(len(values), known) for c in compiled.refs}
            for value, sentence in zip(values, render_values(compiled, values, refs), strict=True):
                assert sentence and not LEAKS.search(sentence), (name, value, sentence)
                assert sentence[0].isupper() or sentence[0] in "-0123456789", (name, sentence)
    assert describe("therapy_cbt_attended", 1.0, spec=spec, row={"therapy_cbt_scheduled": 1.0}) == (
        "Attended 1 of 1 CBT sessions scheduled since intake"
    )


def test_ethnicity_is_never_a_reason_even_when_a_configured_list_leaves_it_out():
    from features.kinds import SENSITIVE
    from features.registry import feature_registry
    from features.spec import FeatureSpec

    spec = FeatureSpec(("ethnicity_asian", "housing_stable"), ("demographic",),
                       categorical_levels={"sex": (), "ethnicity": ("asian",), "housing": ("stable",)},
                       features_config={"demographic": {"sensitive": ["housing"]}})
    registry = feature_registry(spec)
    assert registry["ethnicity_asian"].kind == SENSITIVE and registry["housing_stable"].kind == SENSITIVE
