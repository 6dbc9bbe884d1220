"""Warnings for valid tables that may still hold a mistake: look-alike ids, late first records."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import polars as pl
import pytest

from pipeline.contract import validate
from pipeline.plausibility import (
    FIRST_RECORD_GAP_DAYS,
    RecordingFindings,
    implausible_values,
    input_warnings,
    late_first_records,
)
from tests.pipeline.test_contract import tables


@pytest.mark.parametrize(
    ("nfc", "nfd"),
    [("Zo\u00eb", "Zoe\u0308"),  # one name, typed and pasted
     ("p001", "P001 "),
     ("P001", "P\u200b001\ufeff")],  # a zero-width space and a byte order mark from a web page
)
def test_ids_that_differ_only_in_unicode_form_case_spacing_or_invisible_characters_are_warned_of(nfc, nfd):
    raw = tables()
    raw["patients"] = raw["patients"].with_columns(patient_id=pl.Series([nfc, "b", nfd]))
    for name in ("outcomes", "bdnf", "hrv", "rr_intervals", "therapy_sessions", "assessments"):
        raw[name] = raw[name].with_columns(pl.col("patient_id").replace({"a": nfc, "c": nfd}))
    result = validate(raw)
    assert result.problems == [] and result.tables["patients"].height == 3  # two patients, as written
    (warning,) = input_warnings(result.tables)
    assert warning.startswith(f"patients: 1 group(s) of patient ids differ only in Unicode form, letter case, "
                              f"spacing or invisible characters, e.g. {nfc!r} / {nfd!r} (rows 1, 3)")
    assert input_warnings(validate(tables()).tables) == []


def test_an_intake_date_no_record_comes_near_is_warned_of():
    raw = tables()
    intake = raw["patients"]["intake_date"].to_list()
    moved = date(intake[1].year - 20, intake[1].month, 1)  # patient b: a year typed two decades off
    raw["patients"] = raw["patients"].with_columns(pl.Series("intake_date", [intake[0], moved, intake[2]]))
    result = validate(raw)
    assert result.problems == []  # a valid table: the date is plausible on its own
    late = late_first_records(result.tables)
    assert late["patient_id"].to_list() == ["b"] and late["days"][0] > 19 * 365 and late["_row"][0] == 2
    (warning,) = input_warnings(result.tables)
    assert warning.startswith(f"patients: 1 patient(s) have no record until more than {FIRST_RECORD_GAP_DAYS} days "
                              "after intake_date, e.g. 'b' (first record ")
    assert "days after intake; row 2)" in warning
    no_records = {k: v for k, v in validate(raw).tables.items() if k in ("patients", "outcomes")}
    assert late_first_records(no_records).height == 0  # patients without records are not judged


def test_values_outside_their_plausible_range_are_warned_of_and_kept():
    raw = tables()
    raw["bdnf"] = raw["bdnf"].with_columns(pl.col("bdnf_ng_ml") * 1000)  # sent in pg/mL
    raw["assessments"] = raw["assessments"].with_columns(instrument=pl.lit("phq9 "), score=pl.lit(150.0))
    result = validate(raw)
    assert result.problems == [] and result.tables["bdnf"]["bdnf_ng_ml"].to_list() == [18000.0, 25000.0]
    assert implausible_values(result.tables) == {"bdnf.bdnf_ng_ml outside 1-100 ng/mL": (2, 18000.0),
                                                 "assessments.score of phq9 outside 0-27": (1, 150.0)}
    assert any(w.startswith("bdnf.bdnf_ng_ml outside 1-100 ng/mL: 2 value(s), e.g. 18000; kept as recorded")
               for w in input_warnings(result.tables))
    assert implausible_values(validate(tables()).tables) == {}
    raw = tables()
    raw["assessments"] = raw["assessments"].with_columns(instrument=pl.lit("PCL5"), score=pl.lit(95.0))
    raw["patients"] = raw["patients"].with_columns(ketamine_years=pl.Series([500.0, 30.0, 2.0]))  # aged 19, 27.5
    assert implausible_values(validate(raw).tables) == {
        "patients.ketamine_years outside 0-60 years": (1, 500.0),
        "patients.ketamine_years above age_at_intake": (2, 500.0),
        "assessments.score of PCL5 outside 0-80": (1, 95.0),  # named as the data spell it
    }


def test_beat_recordings_of_a_single_beat_are_warned_of():
    raw = tables()
    raw["rr_intervals"] = raw["rr_intervals"].with_columns(recording_id=pl.Series(["r1", "r2", "r3"]))  # a beat's id
    result = validate(raw)
    assert result.problems == []
    assert RecordingFindings.of(result.tables) == RecordingFindings(3, 3, (1, 2, 3))
    (warning,) = input_warnings(result.tables)
    assert warning.startswith("rr_intervals: 3 of 3 recording(s) hold a single beat (rows 1, 2, 3); a recording "
                              "needs two beats")
    raw["rr_intervals"] = raw["rr_intervals"].with_columns(recording_id=pl.Series(["r1", "r1", "r3"]))
    assert RecordingFindings.of(validate(raw).tables) == RecordingFindings(2, 1, (3,))
    other = tables()
    other["rr_intervals"] = other["rr_intervals"].with_columns(patient_id=pl.Series(["a", "c", "c"]))
    assert RecordingFindings.of(validate(other).tables) == RecordingFindings(2, 1, (1,))  # one id, two patients


def test_a_recording_id_reused_across_sessions_is_warned_of():
    raw = tables()
    rr = raw["rr_intervals"]
    later = rr.with_columns(pl.col("recorded_at") + timedelta(days=30))  # a month later, the numbering restarted
    raw["rr_intervals"] = pl.concat([rr, later])
    result = validate(raw)
    assert result.problems == []
    (warning,) = [w for w in input_warnings(result.tables) if "recording id(s)" in w]  # also: after follow-up
    assert warning.startswith("rr_intervals: 1 recording id(s) hold beats recorded more than a day apart (e.g. "
                              "patient c, recording r1: 2024-03-02 to 2024-04-01); each is taken as one recording")
    raw["rr_intervals"] = pl.concat([rr, rr.with_columns(pl.col("recorded_at") + timedelta(minutes=5))])
    assert input_warnings(validate(raw).tables) == []  # beats minutes apart are one session


def test_recording_findings_of_patient_batches_add_up_to_the_cohort_and_survive_a_manifest():
    beats = pl.DataFrame({
        "_row": list(range(1, 9)),
        "patient_id": ["a", "a", "b", "c", "c", "d", "d", "e"],
        "recording_id": ["r1", "r1", "r1", "r1", "r1", "r1", "r1", "r9"],
        "recorded_at": [datetime(2024, 1, 1), datetime(2024, 1, 9), datetime(2024, 1, 2), datetime(2024, 1, 3),
                        datetime(2024, 1, 3, 0, 5), datetime(2023, 12, 1), datetime(2023, 12, 30),
                        datetime(2024, 2, 1)],
        "rr_ms": [800.0] * 8,
    })
    whole = RecordingFindings.of({"rr_intervals": beats})
    assert whole == RecordingFindings(5, 2, (3, 8), 2, ("d", "r1", "2023-12-01", "2023-12-30"))
    for cut in (["a", "b"], ["a", "d"], ["e"]):
        inside = pl.col("patient_id").is_in(cut)
        parts = [RecordingFindings.of({"rr_intervals": beats.filter(keep)}) for keep in (inside, ~inside)]
        assert parts[0] + parts[1] == whole == parts[1] + parts[0]
    assert RecordingFindings.from_dict(json.loads(json.dumps(whole.to_dict()))) == whole
    single, merged = whole.warnings()
    assert single.startswith("rr_intervals: 2 of 5 recording(s) hold a single beat (rows 3, 8)")
    assert "2 recording id(s) hold beats recorded more than a day apart (e.g. patient d, recording r1: " in merged
    many = RecordingFindings(900, 800, (1, 2, 3, 4, 5))
    assert "800 of 900 recording(s) hold a single beat (rows 1, 2, 3, 4, 5 and 795 more)" in many.warnings()[0]
    assert RecordingFindings.of({}) == RecordingFindings() and RecordingFindings().warnings() == []


def test_a_column_spelt_another_way_is_warned_of_and_a_required_one_named_in_the_error():
    from pipeline.plausibility import look_alike_columns

    raw = tables()
    raw["patients"] = raw["patients"].rename({"housing": "Housing ", "deprivation_decile": "deprivaton_decile"})
    warnings = look_alike_columns(validate(raw).tables)
    assert "patients: column 'Housing ' is not read: the contract names it 'housing'" in warnings[1]
    assert "column 'deprivaton_decile' is not read: the contract names it 'deprivation_decile'" in warnings[0]
    assert look_alike_columns(validate(tables()).tables) == []
    raw = tables()
    raw["bdnf"] = raw["bdnf"].rename({"sample_date": " Sample Date"})
    (problem,) = validate(raw).problems
    assert problem.reason == ("required column is missing (the file has ' Sample Date': column names are matched "
                              "exactly)")


def test_files_no_table_is_read_from_are_named_with_the_table_they_look_like(tmp_path):
    from pipeline.io import stray_files

    for name in ("patients.csv", "assessment.csv", "hrv.csv.csv", "notes.parquet", "simulation.json"):
        (tmp_path / name).write_text("x\n")
    (tmp_path / "truth").mkdir()
    warnings = stray_files(tmp_path)
    assert len(warnings) == 3
    assert warnings[0].startswith("assessment.csv in ") and "(is it assessments?" in warnings[0]
    assert warnings[1].startswith("hrv.csv.csv in ") and "(is it hrv?" in warnings[1]
    assert warnings[2].startswith("notes.parquet in ") and "is it" not in warnings[2]


def test_records_after_the_last_follow_up_are_warned_of():
    from pipeline.plausibility import records_after_followup

    raw = tables()
    raw["bdnf"] = raw["bdnf"].with_columns(sample_date=pl.Series([date(2024, 2, 2), date(2024, 2, 3)]))  # a: after
    raw["rr_intervals"] = raw["rr_intervals"].with_columns(recorded_at=pl.lit("2024-03-05T23:59:00"))  # c's last day
    result = validate(raw)
    later = records_after_followup(result.tables)
    assert list(later) == ["bdnf"] and later["bdnf"]["patient_id"].to_list() == ["a"]
    (warning,) = [w for w in input_warnings(result.tables) if "last_followup_date" in w]
    assert warning.startswith("bdnf: 1 record(s) are dated after the patient's last_followup_date (e.g. patient 'a', "
                              "sample_date 2024-02-02 after 2024-01-20; row 1)")
    assert records_after_followup(validate(tables()).tables) == {}
