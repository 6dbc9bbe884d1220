"""The catalogue's generated entries name exactly the columns the builders make."""

from features import assessments, bdnf, hrv, therapy
from features.catalog import (
    FIXED,
    KEYS,
    KINDS,
    TEMPLATE_KEYS,
)
from features.catalog_generated import assessment_entries, hrv_entries, one_hot_entries, therapy_entries


def names(entries):
    return [e.name for e in entries]


def test_generated_entries_match_the_builders():
    assert set(names(therapy_entries("recently"))) | {e.name for e in FIXED} >= set(therapy.FEATURES)
    metrics = tuple(hrv.METRICS)
    generated = {n for m in metrics for n in names(hrv_entries(m, "recently", "days 0-20"))}
    fixed_hrv = {e.name for e in FIXED if e.group == "hrv"}
    assert generated | fixed_hrv | {"hrv_recordings_per_week"} == set(hrv.feature_names(metrics))
    assert names(assessment_entries(("PHQ-9", "GAD7"))) == assessments.feature_names(("PHQ-9", "GAD7"))
    assert names(one_hot_entries("housing", "Housing", ("stable", "no fixed abode"), "demographic")) == [
        "housing_stable",
        "housing_no_fixed_abode",
    ]
    assert {e.name for e in FIXED} >= set(bdnf.FEATURES) - {"bdnf_slope_30d"}


def test_every_entry_is_complete():
    entries = [*KEYS, *FIXED, *therapy_entries("recently"), *assessment_entries(("PHQ9",))]
    entries += [e for m in ("rmssd", "pnn50") for e in hrv_entries(m, "recently", "days 0-20")]
    for entry in entries:
        assert entry.group and entry.description and entry.template and entry.kind in KINDS
        if isinstance(entry.template, dict):
            assert entry.template.keys() <= TEMPLATE_KEYS


def test_measurement_ages_and_counts_are_never_reasons():
    ages = [e for e in [*FIXED, *assessment_entries(("PHQ9",))] if e.name.endswith(("_age_days", "_n_samples"))]
    assert len(ages) == 4 and {e.kind for e in ages} == {"measurement_age"}


def test_concepts_group_one_variable_or_idea():
    attendance = {e.name for e in [*FIXED, *therapy_entries("recently")] if e.concept == "therapy_attendance"}
    assert {"therapy_sessions_attended", "therapy_attendance_rate", "therapy_attendance_rate_window"} <= attendance
    assert "therapy_cbt_attended" not in attendance
    levels = one_hot_entries("housing", "Housing", ("stable", "unstable"), "demographic")
    assert {e.concept for e in levels} == {"housing"} and [e.level for e in levels] == ["stable", "unstable"]
