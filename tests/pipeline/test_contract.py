"""Data tests for the contract: every rule rejects what it should, names table, column and rows."""

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from features.tables import ROW
from pipeline.contract import validate


def with_rows(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))


def tables() -> dict[str, pl.DataFrame]:
    utc = UTC
    raw = {
        "patients": pl.DataFrame(
            {
                "patient_id": ["a", "b", "c"],
                "intake_date": [date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)],
                "age_at_intake": [19.0, 27.5, 41.0],
                "sex": ["female", "male", "other"],
                "deprivation_decile": [1, 5, 10],
                "polysubstance": [True, False, None],
                "housing": ["stable", None, "homeless"],
                "clinic_site": ["north", "south", "north"],  # extra columns are allowed
            }
        ),
        "outcomes": pl.DataFrame(
            {
                "patient_id": ["a", "b", "c"],
                "relapse_date": [date(2024, 1, 20), None, None],
                "last_followup_date": [date(2024, 1, 20), date(2024, 6, 1), date(2024, 3, 5)],
            }
        ),
        "bdnf": pl.DataFrame(
            {"patient_id": ["a", "b"], "sample_date": [date(2024, 1, 2), date(2024, 2, 3)], "bdnf_ng_ml": [18.0, 25.0]}
        ),
        "hrv": pl.DataFrame(
            {
                "patient_id": ["b"],
                "recorded_at": [datetime(2024, 2, 5, 7, 30, tzinfo=utc)],
                "rmssd_ms": [35.0],
                "sdnn_ms": [48.0],
            }
        ),
        "rr_intervals": pl.DataFrame(
            {
                "patient_id": ["c", "c", "c"],
                "recording_id": ["r1"] * 3,
                "recorded_at": [datetime(2024, 3, 2, 8, 0, tzinfo=utc)] * 3,
                "rr_ms": [810.0, 795.0, 830.0],
            }
        ),
        "therapy_sessions": pl.DataFrame(
            {
                "patient_id": ["a", "b"],
                "session_date": [date(2024, 1, 3), date(2024, 2, 8)],
                "modality": ["CBT", "EMDR"],
                "attended": [True, False],
            }
        ),
        "assessments": pl.DataFrame(
            {"patient_id": ["a"], "assessed_on": [date(2024, 1, 1)], "instrument": ["PHQ9"], "score": [14.0]}
        ),
    }
    return {name: with_rows(frame) for name, frame in raw.items()}


def only_problem(result, table: str, column: str, rows: list[int], text: str):
    found = [p for p in result.problems if p.table == table and p.column == column and text in p.reason]
    assert len(found) == 1, [p.message() for p in result.problems]
    assert found[0].rows == rows
    assert f"{table}.{column}" in found[0].message()
    return found[0]


def test_valid_tables_pass_typed_with_optional_columns_added():
    result = validate(tables(), required=("patients", "outcomes"))
    assert result.problems == []
    patients = result.tables["patients"]
    assert patients.schema["intake_date"] == pl.Date
    assert patients["ethnicity"].is_null().all()  # optional column absent from input -> nulls
    assert "clinic_site" in patients.columns
    assert result.tables["hrv"].schema["lf_hf"] == pl.Float64


def test_missing_required_table_and_column_are_fatal():
    raw = tables()
    del raw["outcomes"]
    raw["bdnf"] = raw["bdnf"].drop("bdnf_ng_ml")
    result = validate(raw, required=("patients", "outcomes"))
    fatal = {(p.table, p.column) for p in result.problems if p.fatal}
    assert fatal == {("outcomes", ""), ("bdnf", "bdnf_ng_ml")}


@pytest.mark.parametrize(
    ("table", "column", "value", "text"),
    [
        ("patients", "age_at_intake", 7.0, "outside the allowed range"),
        ("patients", "age_at_intake", 101.0, "outside the allowed range"),
        ("patients", "sex", "F", "not one of"),
        ("patients", "deprivation_decile", 11, "outside the allowed range"),
        ("patients", "housing", "van", "not one of"),
        ("bdnf", "bdnf_ng_ml", 0.0, "outside the allowed range"),
        ("bdnf", "bdnf_ng_ml", -3.0, "outside the allowed range"),
        ("hrv", "rmssd_ms", 0.0, "outside the allowed range"),
        ("rr_intervals", "rr_ms", 120.0, "outside the allowed range"),
        ("rr_intervals", "rr_ms", 4000.0, "outside the allowed range"),
        ("therapy_sessions", "modality", "hypnosis", "not one of"),
    ],
)
def test_value_rules(table, column, value, text):
    raw = tables()
    frame = raw[table]
    raw[table] = frame.with_columns(
        pl.when(pl.col(ROW) == 1).then(pl.lit(value)).otherwise(pl.col(column)).cast(frame.schema[column]).alias(column)
    )
    result = validate(raw)
    only_problem(result, table, column, [1], text)
    assert 1 not in result.tables[table][ROW].to_list()


def test_unparseable_text_values_are_reported_per_column():
    raw = tables()
    raw["patients"] = raw["patients"].with_columns(
        pl.col("intake_date").cast(pl.String).replace({"2024-02-01": "01/02/2024"}),
        pl.col("polysubstance").cast(pl.String).fill_null("maybe"),
    )
    result = validate(raw)
    only_problem(result, "patients", "intake_date", [2], "not a valid Date")
    only_problem(result, "patients", "polysubstance", [3], "not a valid Boolean")


@pytest.mark.parametrize(
    ("column", "values", "bad_rows", "kept"),
    [
        # text after a date is not a date; an instant with an offset is dated in UTC, as recorded_at is
        ("intake_date", ["2024-01-01xyz", "2024-02-01T23:30:00-05:00", "2024-03-011"], [1, 3], date(2024, 2, 2)),
        ("intake_date", ["2024-01-01xyz", "2024-02-01T23:30", "2024-03-011"], [1, 3], date(2024, 2, 1)),  # naive
        # a Parquet float in an integer column: only whole numbers, never truncated
        ("deprivation_decile", [6.7, 5.0, float("nan")], [1, 3], 5),
        # the same as text (a CSV): "5.0" is the whole number 5, as the Parquet 5.0 is
        ("deprivation_decile", ["6.7", "5.0", "NaN"], [1, 3], 5),
        ("deprivation_decile", ["1e400", " 5 ", "five"], [1, 3], 5),
        # a number in a boolean column: only 1 and 0
        ("polysubstance", [2.0, 1.0, float("nan")], [1, 3], True),
        ("polysubstance", [7, 0, -1], [1, 3], False),
        # a number is never taken as a date
        ("intake_date", [20240101, 19723, 1], [1, 2, 3], None),
    ],
)
def test_values_a_cast_would_change_are_reported_not_changed(column, values, bad_rows, kept):
    raw = tables()
    raw["patients"] = raw["patients"].with_columns(pl.Series(column, values))
    result = validate(raw)
    only_problem(result, "patients", column, bad_rows, "not a valid")
    survivors = result.tables["patients"].filter(pl.col(ROW) == 2)
    assert survivors[column].to_list() == ([kept] if kept is not None else [])


def test_a_column_of_a_type_no_cast_can_take_is_named_with_its_type():
    raw = tables()
    raw["bdnf"] = raw["bdnf"].with_columns(pl.concat_list("bdnf_ng_ml").alias("bdnf_ng_ml"))
    result = validate(raw)
    found = only_problem(result, "bdnf", "bdnf_ng_ml", [], "has type List(Float64), expected Float64")
    assert found.fatal


def test_an_unknown_id_says_when_patients_has_it_with_spaces_around():
    raw = tables()
    raw["patients"] = raw["patients"].with_columns(pl.col("patient_id").replace({"a": " a"}))
    found = only_problem(validate(raw), "bdnf", "patient_id", [1], "not in patients")
    assert "patients has ids with spaces around them, e.g. ' a'" in found.reason


def test_empty_required_value():
    raw = tables()
    raw["therapy_sessions"] = raw["therapy_sessions"].with_columns(attended=pl.lit(None, pl.Boolean))
    found = only_problem(validate(raw), "therapy_sessions", "attended", [1, 2], "are empty")
    assert "row 1: patient_id='a', attended=None" in found.message()  # the patient, not just the row


def test_blank_text_is_a_missing_value_not_a_value():
    raw = tables()
    raw["patients"] = raw["patients"].with_columns(
        sex=pl.Series(["female", "  ", "other"]), ethnicity=pl.Series(["", "\t", "group_a"]),
        clinic_site=pl.Series([" ", "south", "north"]),
    )
    raw["bdnf"] = raw["bdnf"].with_columns(patient_id=pl.Series(["a", "   "]))
    raw["assessments"] = pl.concat([raw["assessments"], with_rows(pl.DataFrame(
        {"patient_id": [" "], "assessed_on": [None], "instrument": [""], "score": [None]},
        schema=raw["assessments"].drop("_row").schema))]).with_columns(pl.Series("_row", [1, 2]))
    result = validate(raw)
    only_problem(result, "patients", "sex", [2], "are empty")
    only_problem(result, "bdnf", "patient_id", [2], "not in patients")  # patients has no blank id
    assert result.empty_rows == {"assessments": [2]}  # a record of blanks only carries nothing
    own = {(p.table, p.column) for p in result.problems if "patients row was rejected" not in p.reason}
    assert own == {("patients", "sex"), ("bdnf", "patient_id")}
    kept = result.tables["patients"]
    assert kept["ethnicity"].to_list() == [None, "group_a"]  # a blank is no subgroup of its own
    assert kept["clinic_site"].to_list() == [None, "north"]


def test_a_patient_whose_outcomes_row_is_rejected_is_rejected_with_every_record():
    raw = tables()
    intake = raw["patients"].filter(pl.col("patient_id") == "b")["intake_date"][0]
    raw["outcomes"] = raw["outcomes"].with_columns(  # b's relapse dated before intake: the row is rejected
        pl.when(pl.col("patient_id") == "b").then(intake - timedelta(days=5)).otherwise("relapse_date")
        .alias("relapse_date"))
    result = validate(raw)
    assert "b" not in result.tables["outcomes"]["patient_id"].to_list()
    assert "b" not in result.tables["patients"]["patient_id"].to_list()  # not scored as never relapsed
    assert all("b" not in frame["patient_id"].to_list() for frame in result.tables.values())
    only_problem(result, "patients", "patient_id", [2], "whose outcomes row was rejected")


def test_a_patient_with_no_outcomes_row_is_rejected_not_taken_as_never_relapsed():
    raw = tables()
    raw["outcomes"] = raw["outcomes"].filter(pl.col("patient_id") != "a")  # a relapsed; the export lost the row
    result = validate(raw)
    only_problem(result, "patients", "patient_id", [1], "have no outcomes row: their relapse and follow-up are unknown")
    assert all("a" not in frame["patient_id"].to_list() for frame in result.tables.values())
    del raw["outcomes"]  # no outcomes table at all (scoring without follow-up data): nothing to miss
    assert not validate(raw).problems


def test_duplicate_patient_ids():
    raw = tables()
    raw["patients"] = raw["patients"].with_columns(patient_id=pl.Series(["a", "a", "c"]))
    raw["outcomes"] = raw["outcomes"].with_columns(patient_id=pl.Series(["a", "b", "b"]))
    result = validate(raw)
    only_problem(result, "patients", "patient_id", [1, 2], "must be unique")
    only_problem(result, "outcomes", "patient_id", [2, 3], "must be unique")


def test_orphan_child_rows():
    raw = tables()
    raw["bdnf"] = raw["bdnf"].with_columns(patient_id=pl.Series(["a", "zz"]))
    only_problem(validate(raw), "bdnf", "patient_id", [2], "not in patients")


def test_a_missing_child_patient_id_is_reported_once_as_empty():
    raw = tables()
    raw["bdnf"] = raw["bdnf"].with_columns(patient_id=pl.Series(["a", None]))
    result = validate(raw)
    only_problem(result, "bdnf", "patient_id", [2], "are empty")
    assert len(result.problems) == 1, [p.message() for p in result.problems]  # not "not in patients" too


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("bdnf", "sample_date"),
        ("therapy_sessions", "session_date"),
        ("assessments", "assessed_on"),
        ("outcomes", "last_followup_date"),
    ],
)
def test_dates_before_intake(table, column):
    raw = tables()
    raw[table] = raw[table].with_columns(
        pl.when(pl.col(ROW) == 1).then(pl.lit(date(2023, 12, 1))).otherwise(pl.col(column)).alias(column)
    )
    only_problem(validate(raw), table, column, [1], "before the patient's intake_date")


def test_recordings_before_intake_use_their_utc_date():
    raw = tables()
    raw["hrv"] = raw["hrv"].with_columns(recorded_at=pl.lit(datetime(2024, 1, 31, 23, 0, tzinfo=UTC)))
    only_problem(validate(raw), "hrv", "recorded_at", [1], "before the patient's intake_date")


def test_relapse_after_last_followup():
    raw = tables()
    raw["outcomes"] = raw["outcomes"].with_columns(relapse_date=pl.Series([date(2024, 2, 1), None, None]))
    only_problem(validate(raw), "outcomes", "relapse_date", [1], "after last_followup_date")


def test_rejected_patient_takes_its_child_rows_and_every_row_is_accounted_for():
    raw = tables()
    raw["patients"] = raw["patients"].with_columns(age_at_intake=pl.Series([19.0, 250.0, 41.0]))
    result = validate(raw)
    rejects = result.rejects()
    for name, frame in raw.items():
        kept = result.tables[name].height
        rejected = rejects.filter(pl.col("table") == name).height
        assert kept + rejected == frame.height, name
    assert "b" not in result.tables["bdnf"]["patient_id"].to_list()
    assert rejects.filter(pl.col("table") == "bdnf")["reason"].to_list() == [
        "belong to a patient whose patients row was rejected"
    ]


def test_naive_and_offset_datetimes_from_text_become_utc():
    raw = tables()
    raw["hrv"] = with_rows(
        pl.DataFrame(
            {
                "patient_id": ["b", "b"],
                "recorded_at": ["2024-02-05T07:30:00", "2024-02-05T09:30:00+02:00"],
                "rmssd_ms": ["35", "36"],
                "sdnn_ms": ["48", "50"],
            }
        )
    )
    result = validate(raw)
    assert result.problems == []
    stamps = result.tables["hrv"]["recorded_at"]
    assert stamps.dtype == pl.Datetime("us", "UTC")
    assert stamps[0] == stamps[1]


def test_an_unknown_id_that_is_a_patients_id_written_with_other_characters_is_spelt_out():
    raw = tables()
    composed, decomposed = "Zo\u00eb", "Zoe\u0308"  # print alike
    for name in ("patients", "outcomes"):
        raw[name] = raw[name].with_columns(pl.col("patient_id").replace({"b": composed}))
    raw["bdnf"] = raw["bdnf"].with_columns(pl.col("patient_id").replace({"b": decomposed}))
    found = only_problem(validate(raw), "bdnf", "patient_id", [2], "not in patients")
    assert "'Zoe\\u0308' here is 'Zo\\xeb' in patients, written with other characters" in found.reason


def test_a_column_of_fixed_levels_names_every_wrong_level_it_holds():
    raw = tables()
    raw["therapy_sessions"] = raw["therapy_sessions"].with_columns(pl.Series("modality", ["cbt", "Group"]))
    found = only_problem(validate(raw), "therapy_sessions", "modality", [1, 2], "are not one of")
    assert found.reason.endswith("(values here: 'cbt', 'Group')")
