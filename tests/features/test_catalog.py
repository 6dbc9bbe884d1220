"""The catalogue's generated entries name exactly the columns the builders make."""

from features import assessments, bdnf, hrv, therapy
from features.catalog import FIXED, KEYS, assessment_entries, hrv_entries, one_hot_entries, therapy_entries


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
    for entry in [*KEYS, *FIXED, *therapy_entries("recently")]:
        assert entry.group and entry.description and entry.template
        if isinstance(entry.template, dict):
            assert entry.template.keys() <= {"positive", "negative", "zero", "any", "missing", "fallback"}
