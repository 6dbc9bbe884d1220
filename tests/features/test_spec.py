"""FeatureSpec: learned from training tables, JSON round trip, groups used / absent / disabled."""

import json

import pytest

from features.spec import FeatureSpec, check_config, fit_feature_spec
from tests.features.conftest import cohort, features_config


def test_fit_on_every_table(config):
    spec = fit_feature_spec(cohort(), features_config(config, demographic={"extra": ["region"]}))
    assert spec.groups_used == ("demographic", "bdnf", "hrv", "therapy", "assessments")
    assert spec.groups_absent == () and spec.groups_disabled == ()
    assert spec.categorical_levels["ethnicity"] == ("Asian", "White British")
    assert spec.categorical_levels["region"] == ("north", "south")
    assert spec.extra_categorical == ("region",)
    assert spec.hrv_metrics == ("rmssd", "sdnn", "lf_hf", "mean_hr", "pnn50")
    assert spec.instruments == ("GAD7", "PHQ9", "craving_vas")
    assert spec.feature_names[:2] == ("age_at_intake", "sex_female")
    assert "region_north" in spec.feature_names and "assess_craving_vas_latest" in spec.feature_names
    assert len(set(spec.feature_names)) == len(spec.feature_names)


def test_json_round_trip(config):
    spec = fit_feature_spec(cohort(), config.features)
    text = json.dumps(spec.to_dict())
    back = FeatureSpec.from_dict(json.loads(text))
    assert back == spec
    assert back.to_dict() == spec.to_dict()


def test_absent_and_disabled_groups(config):
    tables = {k: v for k, v in cohort().items() if k in ("patients", "outcomes", "hrv")}
    spec = fit_feature_spec(tables, features_config(config, hrv={"enabled": False}))
    assert spec.groups_used == ("demographic",)
    assert spec.groups_disabled == ("hrv",)
    assert spec.groups_absent == ("bdnf", "therapy", "assessments")
    assert not any(n.startswith(("bdnf", "hrv", "therapy", "assess")) for n in spec.feature_names)


def test_metrics_follow_the_hrv_sources(config):
    tables = cohort()
    tables["hrv"] = tables["hrv"].with_columns(lf_hf=None)
    del tables["rr_intervals"]
    assert fit_feature_spec(tables, config.features).hrv_metrics == ("rmssd", "sdnn", "mean_hr")
    only_beats = {k: v for k, v in cohort().items() if k != "hrv"}
    assert fit_feature_spec(only_beats, config.features).hrv_metrics == (
        "rmssd",
        "sdnn",
        "mean_hr",
        "pnn50",
    )


def test_empty_table_counts_as_absent(config):
    tables = cohort()
    tables["bdnf"] = tables["bdnf"].clear()
    assert "bdnf" in fit_feature_spec(tables, config.features).groups_absent


def test_a_different_features_config_is_refused(config):
    spec = fit_feature_spec(cohort(), config.features)
    check_config(spec, config.features)
    with pytest.raises(ValueError, match="hrv.window_days"):
        check_config(spec, features_config(config, hrv={"window_days": 14}))


def test_unknown_version_is_refused(config):
    data = fit_feature_spec(cohort(), config.features).to_dict() | {"version": 99}
    with pytest.raises(ValueError, match="version"):
        FeatureSpec.from_dict(data)


def test_a_sensitive_attribute_is_not_a_predictor_unless_opted_in(config):
    tables = cohort()
    default = fit_feature_spec(tables, config.features)
    assert not any(n.startswith("ethnicity") for n in default.feature_names)
    assert default.categorical_levels["ethnicity"]  # levels still learned: the audit reads the raw column
    opted = fit_feature_spec(tables, features_config(config, demographic={"sensitive_as_predictor": True}))
    ethnicity = [n for n in opted.feature_names if n.startswith("ethnicity")]
    assert ethnicity == ["ethnicity_asian", "ethnicity_white_british"]
    both = features_config(config, demographic={"sensitive": ["ethnicity", "housing"]})
    housing = fit_feature_spec(tables, both)
    assert not any(n.startswith(("ethnicity", "housing")) for n in housing.feature_names)
    with pytest.raises(ValueError, match="sensitive names column.*religion"):
        fit_feature_spec(tables, features_config(config, demographic={"sensitive": ["religion"]}))
