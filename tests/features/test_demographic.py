"""Patient features: fixed and learned one-hot levels, flags, extras, missing and unseen values."""

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.config import DemographicConfig
from features.demographic import demographic_features, feature_names, fit_levels
from tests.features.conftest import patients

NULL = None


def train():
    return patients(
        ["a", "b", "c"],
        age_at_intake=[19.5, 34.0, 61.0],
        sex=["female", "male", "unknown"],
        ethnicity=["White British", "Asian", None],
        deprivation_decile=[1, None, 10],
        polysubstance=[True, False, None],
        ketamine_years=[2.5, None, 0.0],
        prior_treatments=[0, 3, None],
        trauma_history=[True, None, False],
        housing=["homeless", None, "stable"],
        region=["north", "south", None],  # categorical extra
        income=["1200", " 900 ", ""],  # numeric extra read from CSV as text
        gp_visits=[1, 2, 3],  # numeric extra
    )


def build(frame, cfg, learned=None):
    learned = learned or fit_levels(train(), cfg)
    out = demographic_features(frame.lazy(), learned["levels"], cfg.extra, learned["extra_numeric"])
    names = feature_names(learned["levels"], cfg.extra, learned["extra_numeric"])
    return out.select("patient_id", *names).collect()


def test_levels_are_learned_and_extras_typed():
    learned = fit_levels(train(), DemographicConfig(extra=["region", "income", "gp_visits"]))
    assert learned["levels"]["ethnicity"] == ("Asian", "White British")
    assert learned["levels"]["sex"] == ("female", "male", "other", "unknown")
    assert learned["levels"]["region"] == ("north", "south")
    assert learned["extra_numeric"] == ("income", "gp_visits")
    assert learned["extra_categorical"] == ("region",)


def test_encoding_of_every_column():
    cfg = DemographicConfig(extra=["region", "income", "gp_visits"])
    got = build(train(), cfg)
    expected = pl.DataFrame(
        {
            "patient_id": ["a", "b", "c"],
            "age_at_intake": [19.5, 34.0, 61.0],
            "sex_female": [1.0, 0.0, 0.0],
            "sex_male": [0.0, 1.0, 0.0],
            "sex_other": [0.0, 0.0, 0.0],
            "sex_unknown": [0.0, 0.0, 1.0],
            "ethnicity_asian": [0.0, 1.0, NULL],
            "ethnicity_white_british": [1.0, 0.0, NULL],
            "deprivation_decile": [1.0, NULL, 10.0],
            "polysubstance": [1.0, 0.0, NULL],
            "ketamine_years": [2.5, NULL, 0.0],
            "prior_treatments": [0.0, 3.0, NULL],
            "trauma_history": [1.0, NULL, 0.0],
            "housing_stable": [0.0, NULL, 1.0],
            "housing_unstable": [0.0, NULL, 0.0],
            "housing_homeless": [1.0, NULL, 0.0],
            "region_north": [1.0, 0.0, NULL],
            "region_south": [0.0, 1.0, NULL],
            "income": [1200.0, 900.0, NULL],
            "gp_visits": [1.0, 2.0, 3.0],
        }
    )
    assert_frame_equal(got, expected)


def test_unseen_category_at_scoring_is_zero_in_every_column():
    cfg = DemographicConfig(extra=["region"])
    learned = fit_levels(train(), cfg)
    new = patients(["z"], ethnicity=["Mixed"], region=["east"])
    got = build(new, cfg, learned)
    assert got.select("ethnicity_asian", "ethnicity_white_british", "region_north", "region_south").row(0) == (0.0,) * 4


def test_a_learned_level_matches_every_spelling_of_it_at_fitting_and_at_scoring():
    cfg = DemographicConfig(extra=["region"])
    fitted = train().with_columns(pl.Series("region", ["north", "North ", None]))
    learned = fit_levels(fitted, cfg)
    assert learned["levels"]["region"] == ("North ", )  # one level, not two
    new = patients(["y", "z"], ethnicity=["asian", "WHITE  BRITISH"], region=["NORTH", "south"])
    got = build(new, cfg, learned)
    assert got.select("ethnicity_asian", "ethnicity_white_british", "region_north").rows() == [
        (1.0, 0.0, 1.0), (0.0, 1.0, 0.0)]


def test_a_spec_holding_two_spellings_of_one_level_still_matches_each_exactly():
    """Fitted before levels were keyed, such a spec trained on them as two values."""
    cfg = DemographicConfig(extra=["region"])
    learned = fit_levels(train(), cfg)
    learned["levels"]["region"] = ("North", "north")
    got = build(patients(["y", "z"], region=["north", "NORTH"]), cfg, learned)
    assert got.select("region_north", "region_north_2").rows() == [(0.0, 1.0), (0.0, 0.0)]


def test_unknown_extra_column_is_named():
    with pytest.raises(ValueError, match="shoe_size"):
        fit_levels(train(), DemographicConfig(extra=["shoe_size"]))


def test_extra_column_missing_at_scoring_is_named():
    cfg = DemographicConfig(extra=["region"])
    learned = fit_levels(train(), cfg)
    with pytest.raises(ValueError, match="region"):
        demographic_features(patients(["z"]).lazy(), learned["levels"], cfg.extra, learned["extra_numeric"])


def test_extra_naming_a_contract_column_is_refused():
    with pytest.raises(ValueError, match="housing"):
        fit_levels(train(), DemographicConfig(extra=["housing"]))


@pytest.mark.parametrize("name", ["_pidx", "day", "phase", "as_of"])
def test_an_extra_named_like_a_working_or_key_column_is_refused(name):
    with pytest.raises(ValueError, match=f"tables. own columns use: {name} "):
        fit_levels(train().with_columns(pl.lit(1).alias(name)), DemographicConfig(extra=[name]))


def test_non_numeric_text_in_a_numeric_extra_fails_loudly():
    cfg = DemographicConfig(extra=["income"])
    learned = fit_levels(train(), cfg)
    with pytest.raises(pl.exceptions.InvalidOperationError, match="income"):
        build(patients(["z"], income=["lots"]), cfg, learned)


def test_unsupported_extra_type():
    frame = train().with_columns(pl.col("intake_date").alias("seen_on"))
    with pytest.raises(ValueError, match="seen_on"):
        fit_levels(frame, DemographicConfig(extra=["seen_on"]))
