"""Feature groups a model was trained with but the scoring data cannot feed."""

import polars as pl

from features.coverage import expected_groups, missing_groups, unread_inputs
from features.spec import fit_feature_spec
from tests.features.conftest import cohort


def test_nothing_missing_from_the_training_tables(config):
    tables = cohort()
    spec = fit_feature_spec(tables, config.features)
    assert missing_groups(spec, tables) == {}


def test_an_absent_table_or_an_all_null_column_is_a_missing_group(config):
    tables = cohort()
    spec = fit_feature_spec(tables, config.features)
    without = {k: v for k, v in tables.items() if k != "bdnf"}
    assert missing_groups(spec, without) == {"bdnf": "table bdnf absent"}
    blank = dict(tables, assessments=tables["assessments"].with_columns(pl.lit(None, pl.Float64).alias("score")))
    assert missing_groups(spec, blank) == {"assessments": "table assessments: score all empty"}
    empty = dict(tables, therapy_sessions=tables["therapy_sessions"].clear())
    assert missing_groups(spec, empty) == {"therapy": "table therapy_sessions has no rows"}


def test_the_raw_beats_are_their_own_source(config):
    tables = cohort()
    spec = fit_feature_spec(tables, config.features)
    assert "hrv_beats" in expected_groups(spec)  # pNN50 comes from the beats only
    no_beats = {k: v for k, v in tables.items() if k != "rr_intervals"}
    assert list(missing_groups(spec, no_beats)) == ["hrv_beats"]
    neither = {k: v for k, v in no_beats.items() if k != "hrv"}
    assert list(missing_groups(spec, neither)) == ["hrv", "hrv_beats"]


def test_an_absent_patients_column_and_an_unmatched_instrument_are_unread_inputs(config):
    tables = cohort()
    spec = fit_feature_spec(tables, config.features)
    assert spec.patient_columns == ("polysubstance", "housing")  # the optional ones with a value
    assert unread_inputs(spec, tables) == {}
    respelled = tables["assessments"].with_columns(pl.col("instrument").replace({"GAD7": "gad7 "}))
    assert unread_inputs(spec, dict(tables, assessments=respelled)) == {}  # one instrument, however spelled
    changed = dict(
        tables,
        patients=tables["patients"].drop("housing").with_columns(pl.lit(None, pl.Boolean).alias("polysubstance")),
        assessments=tables["assessments"].with_columns(pl.col("instrument").replace({"PHQ9": "PHQ-9"})),
    )
    got = unread_inputs(spec, changed)
    assert got["patients.housing"] == ("column absent", ("housing_stable", "housing_unstable", "housing_homeless"))
    assert got["patients.polysubstance"] == ("no value in any row", ("polysubstance",))
    why, names = got["assessments.instrument PHQ9"]
    assert why == "no assessment names it; instruments here the model does not know: 'PHQ-9' (2 rows)"
    assert names == ("assess_phq9_latest", "assess_phq9_age_days", "assess_phq9_change_since_first")
    assert list(got) == ["patients.polysubstance", "patients.housing", "assessments.instrument PHQ9"]


def test_unread_inputs_read_raw_scans_of_any_type_and_blank_text_is_no_value(config):
    tables = cohort()
    spec = fit_feature_spec(tables, config.features)
    raw = dict(
        tables,
        patients=tables["patients"].with_columns(pl.lit("  ").alias("housing")),  # blanks only: no value
        assessments=tables["assessments"].with_columns(pl.col("instrument").cast(pl.Categorical)),
    )
    assert list(unread_inputs(spec, {k: v.lazy() for k, v in raw.items()})) == ["patients.housing"]
    no_column = dict(tables, assessments=tables["assessments"].drop("instrument"))
    assert unread_inputs(spec, no_column) == {}  # the contract names a missing column, not this check


def test_an_optional_measurement_column_left_out_is_an_unread_input(config):
    from features.coverage import MEASURED_FEATURES
    from features.tables import OPTIONAL_MEASUREMENTS

    assert set(MEASURED_FEATURES) == set(OPTIONAL_MEASUREMENTS)  # a new optional column needs its features named
    tables = cohort()
    spec = fit_feature_spec(tables, config.features)
    assert spec.measured_columns == ("hrv.lf_hf", "hrv.mean_hr_bpm", "therapy_sessions.duration_min")
    changed = dict(tables, hrv=tables["hrv"].drop("lf_hf", "mean_hr_bpm"),
                   therapy_sessions=tables["therapy_sessions"].with_columns(pl.lit(None, pl.Float64).alias(
                       "duration_min")))
    got = unread_inputs(spec, changed)
    assert got["hrv.lf_hf"] == ("column absent", tuple(f"hrv_lf_hf_{s}" for s in (
        "latest", "window_mean", "window_slope_30d", "change_from_baseline", "change_from_baseline_pct")))
    assert got["therapy_sessions.duration_min"] == ("no value in any row", ("therapy_minutes_attended",))
    assert "hrv.mean_hr_bpm" not in got  # the beats still give the heart rate
    no_beats = {k: v for k, v in changed.items() if k != "rr_intervals"}
    assert unread_inputs(spec, no_beats)["hrv.mean_hr_bpm"][0] == "column absent"
    none_here = dict(tables, therapy_sessions=tables["therapy_sessions"].clear().drop("duration_min"))
    assert "therapy_sessions.duration_min" not in unread_inputs(spec, none_here)  # no records: a missing group
    bare = fit_feature_spec(dict(tables, hrv=tables["hrv"].drop("lf_hf")), config.features)
    assert "hrv.lf_hf" not in bare.measured_columns and "hrv.lf_hf" not in unread_inputs(bare, changed)
