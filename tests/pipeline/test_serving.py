"""REST requests checked before scoring: whole days inside a phase, numbers or nulls for features."""

import math

import polars as pl
import pytest

from features.config import Phase
from pipeline.serving import RequestError, check_request

PHASES = [Phase(name="acute", start_day=0, end_day=13), Phase(name="early", start_day=14, end_day=89)]
FEATURES = ["age_at_intake", "bdnf_latest"]


def test_a_request_with_day_only_gets_every_feature_as_unknown():
    rows = check_request({"day": [3, 20]}, FEATURES, PHASES)
    assert rows.columns == ["day", *FEATURES]
    assert rows["day"].dtype == pl.Int64 and rows["day"].to_list() == [3, 20]
    assert rows.select(FEATURES).null_count().row(0) == (2, 2)


def test_identifiers_pass_through_and_integer_features_become_floats():
    rows = check_request(
        {"patient_id": ["p1", None], "as_of": ["2024-09-01", "2024-09-01"], "day": [3.0, 14],
         "age_at_intake": [34, float("nan")], "bdnf_latest": [None, 21.5]},
        FEATURES, PHASES,
    )
    assert rows["patient_id"].to_list() == ["p1", None] and rows["as_of"].dtype == pl.String
    assert rows["day"].to_list() == [3, 14]
    assert rows["age_at_intake"].to_list() == [34.0, None] and rows["bdnf_latest"].to_list() == [None, 21.5]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"day": [900]}, "column 'day' is outside every recovery phase (days 0-89): row 0: 900"),
        ({"day": [-1, 5]}, "outside every recovery phase (days 0-89): row 0: -1"),
        ({"day": [5, 12.5]}, "column 'day' must be a whole number of days: row 1: 12.5"),
        ({"day": ["abc"]}, "column 'day' must be a whole number of days: row 0: 'abc'"),
        ({"day": [None]}, "must be a whole number of days: row 0: None"),
        ({"day": [True]}, "must be a whole number"),
        ({"day": [math.inf]}, "must be a whole number"),
        ({"day": [3], "bdnf_latest": ["high"]}, "column 'bdnf_latest' must be a number or null: row 0: 'high'"),
        ({"patient_id": ["p"]}, "column 'day' is required"),
        # what batch scoring refuses in the patients table, the REST model refuses too
        ({"day": [3, 4], "age_at_intake": [34, -30.0]},
         "column 'age_at_intake' has values that are outside the allowed range (>= 12 and <= 100) of "
         "patients.age_at_intake: row 1: -30.0"),
        ({"day": [3], "as_of": ["2024-13-45"]}, "column 'as_of' must be a date, YYYY-MM-DD: row 0: '2024-13-45'"),
        ({"day": [3], "as_of": ["1 March"]}, "column 'as_of' must be a date"),
    ],
)
def test_bad_requests_name_the_column_the_rule_and_the_rows(columns, message):
    with pytest.raises(RequestError) as err:
        check_request(columns, FEATURES, PHASES)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_identifiers_left_out_of_some_rows_are_null_not_the_text_nan():
    # pandas fills a key missing from some records with NaN, as a client's JSON records do
    rows = check_request({"day": [3, 4], "as_of": ["2024-01-01", float("nan")], "patient_id": ["p1", float("nan")]},
                         FEATURES, PHASES)
    assert rows["as_of"].to_list() == ["2024-01-01", None] and rows["patient_id"].to_list() == ["p1", None]


def test_many_bad_rows_are_summarised():
    with pytest.raises(RequestError, match=r"row 4: 904 and 3 more$"):
        check_request({"day": list(range(900, 908))}, FEATURES, PHASES)


def test_values_no_cohort_could_give_are_refused_in_the_builders_domains():
    from features.kinds import BIOMARKER, FeatureInfo

    def info(name, unit, kind="risk_factor", concept="", level=""):
        return FeatureInfo(name, "g", unit, "", "", kind=kind, concept=concept, level=level)

    registry = {"bdnf_latest": info("bdnf_latest", "ng/mL", BIOMARKER),
                "bdnf_slope_30d": info("bdnf_slope_30d", "ng/mL per 30 days", BIOMARKER),
                "sex_female": info("sex_female", "0/1", concept="sex", level="female"),
                "sex_male": info("sex_male", "0/1", concept="sex", level="male"),
                "therapy_attendance_rate": info("therapy_attendance_rate", "fraction"),
                "therapy_sessions_attended": info("therapy_sessions_attended", "sessions")}
    names = list(registry)
    fine = {"day": [3, 20], "bdnf_latest": [18.5, None], "bdnf_slope_30d": [-4.0, 2.0], "sex_female": [1, 0],
            "sex_male": [0, 0], "therapy_attendance_rate": [0.5, 1.0], "therapy_sessions_attended": [3, 0]}
    assert check_request(fine, names, PHASES, registry).height == 2
    for column, value, message in [
        ("bdnf_latest", -50.0, r"'bdnf_latest' \(ng/mL\) takes above 0: row 1: -50.0"),
        ("sex_female", 7, "'sex_female' .* takes whole numbers from 0 to 1: row 1: 7"),
        ("sex_male", 1, r"sex_female, sex_male: a patient has one sex, so at most one of them is 1 .*row 0: 2"),
        ("therapy_attendance_rate", 5, "'therapy_attendance_rate' .* from 0 to 1: row 1: 5"),
        ("therapy_sessions_attended", 2.5, "whole numbers of at least 0: row 1: 2.5"),
    ]:
        bad = {**fine, column: [fine[column][0], value] if column != "sex_male" else [value, 0]}
        with pytest.raises(RequestError, match=message):
            check_request(bad, names, PHASES, registry)


def test_inputs_every_patient_has_are_required_and_a_given_level_completes_its_category():
    from features.kinds import FeatureInfo

    def level(name, value):
        return FeatureInfo(name, "demographic", "0/1", "", "", concept="sex", level=value)

    registry = {"age_at_intake": FeatureInfo("age_at_intake", "demographic", "years", "", ""),
                "sex_female": level("sex_female", "female"), "sex_male": level("sex_male", "male"),
                "bdnf_latest": FeatureInfo("bdnf_latest", "bdnf", "ng/mL", "", "", kind="biomarker")}
    names = list(registry)
    required = {"age_at_intake": ("age_at_intake",), "sex": ("sex_female", "sex_male")}
    rows = check_request({"day": [3, 20], "age_at_intake": [31, 40], "sex_male": [1, None], "sex_female": [None, 1]},
                         names, PHASES, registry, required)
    assert rows["sex_female"].to_list() == [0.0, 1.0] and rows["sex_male"].to_list() == [1.0, 0.0]
    assert rows["bdnf_latest"].to_list() == [None, None]  # an optional feature stays unknown
    for columns, message in [
        ({"day": [3, 20], "sex_female": [1, 1]}, r"'age_at_intake' is required: .*row 0: None, row 1: None"),
        ({"day": [3, 20], "age_at_intake": [31, None], "sex_female": [1, 1]}, r"'age_at_intake' .*row 1: None$"),
        ({"day": [3], "age_at_intake": [31]}, r"sex_female, sex_male: patients.sex is required, .*row 0: 0"),
        ({"day": [3], "age_at_intake": [31], "sex_female": [0], "sex_male": [0]}, r"patients.sex is required"),
    ]:
        with pytest.raises(RequestError, match=message):
            check_request(columns, names, PHASES, registry, required)


def test_the_spec_names_the_inputs_every_patient_has():
    from features.spec import FeatureSpec

    levels = {"sex": ("female", "male", "other", "unknown"), "ethnicity": ("a",), "housing": ("stable",)}
    names = ("age_at_intake", "sex_female", "sex_male", "sex_other", "sex_unknown", "ketamine_years")
    spec = FeatureSpec(feature_names=names, groups_used=("demographic",), categorical_levels=levels)
    assert spec.required_inputs() == {"age_at_intake": ("age_at_intake",), "sex": names[1:5]}
    assert FeatureSpec(feature_names=("bdnf_latest",), groups_used=("bdnf",)).required_inputs() == {}
