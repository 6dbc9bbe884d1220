"""CSV text as clinics export it: read correctly (BOM, CRLF, quoted commas and line breaks,
Unicode ids) or refused clearly (not UTF-8, duplicate header names, CR-only line endings, a
record with more or fewer fields than the header) or skipped and listed (records with no value at all), by
`relapse validate`, `load_tables` and the patient-batch reader of `relapse score` alike."""

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.contract import validate
from pipeline.io import load_tables
from pipeline.problems import ContractViolation
from pipeline.shard_files import split_by_patient

PATIENTS = "patient_id,intake_date,age_at_intake,sex,clinic_note\n"
ROWS = ['"Zoë, 患者",2024-01-01,30,female,"line one\nline two"', "b,2024-02-01,40,male,plain"]


@pytest.fixture
def folder(tmp_path):
    return tmp_path


def _write(folder, data: bytes):
    (folder / "patients.csv").write_bytes(data)


@pytest.mark.parametrize(
    "data",
    [
        (PATIENTS + "\n".join(ROWS) + "\n").encode(),
        b"\xef\xbb\xbf" + (PATIENTS + "\n".join(ROWS) + "\n").encode(),
        (PATIENTS + "\n".join(ROWS) + "\n").replace("\n", "\r\n").encode(),
    ],
    ids=["utf8", "bom", "crlf"],
)
def test_bom_crlf_quoted_commas_and_newlines_read_correctly(folder, data, tmp_path_factory):
    _write(folder, data)
    result, _ = load_tables(folder)
    patients = result.tables["patients"]
    assert patients.columns[:2] == ["_row", "patient_id"]
    assert patients["patient_id"].to_list() == ["Zoë, 患者", "b"]
    assert patients["_row"].to_list() == [1, 2]  # records, not lines
    assert patients["clinic_note"].str.replace_all("\r", "").to_list() == ["line one\nline two", "plain"]
    batches = split_by_patient(folder, 10, tmp_path_factory.mktemp("batches"))
    assert sorted(batches.batch(0)["patients"]["patient_id"].to_list()) == ["Zoë, 患者", "b"]


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ((PATIENTS + ROWS[1] + "\nJosé,2024-01-01,30,male,x\n").encode("latin-1"), "patients.csv is not UTF-8 text"),
        ((PATIENTS + ROWS[1] + "\n").encode("utf-16"), "it looks like UTF-16"),
        ((b"patient_id,sex,intake_date,age_at_intake,sex\nb,male,2024-01-01,30,female\n"), "repeats header"),
        ((PATIENTS + ROWS[1] + "\n").replace("\n", "\r").encode(), "ends its lines with CR alone"),
        ((PATIENTS + ROWS[1] + "\n" + "c,2024-02-01,40,male,plain,extra\n" + ROWS[1] + "\n").encode(),
         "the header has 5 fields but row 2 has 6"),
        ((PATIENTS + ROWS[1] + "\n" + "c,2024-02-01,40\n" + ROWS[1] + "\n").encode(),  # an export cut short
         "the header has 5 fields but row 2 has 3"),
        ((PATIENTS + ROWS[0] + "\n" + '"d, e",2024-02-01\n').encode(), "the header has 5 fields but row 2 has 2"),
        ((PATIENTS + ROWS[1] + "\n").replace(",", ";").encode(), "its fields look separated by semicolons"),
        ((PATIENTS + ROWS[1] + "\n").replace(",", "\t").encode(), "its fields look separated by tabs"),
    ],
    ids=["latin1", "utf16", "duplicate-header", "cr-only", "ragged-row", "short-row", "short-quoted-row", "semicolons",
         "tabs"],
)
def test_other_encodings_and_duplicate_headers_are_refused_clearly(folder, data, text, tmp_path_factory):
    _write(folder, data)
    with pytest.raises(ContractViolation, match=text) as err:
        load_tables(folder)
    assert str(err.value).count("\n") == 1 and "patients:" in str(err.value)
    with pytest.raises(ContractViolation, match=text):
        split_by_patient(folder, 10, tmp_path_factory.mktemp("batches"))
    result = CliRunner().invoke(app, ["validate", "--data", str(folder)])
    assert result.exit_code == 2 and text in result.output and "Traceback" not in result.output


def test_blank_lines_and_empty_records_are_skipped_and_named(folder, tmp_path_factory):
    """A blank line, a record of separators only and a spreadsheet's trailing empty rows hold no
    value: skipped, listed by row (rows still count them, as the file does), never an error; a
    record with any value is still checked."""
    _write(folder, (PATIENTS + "\n" + ROWS[1] + "\n,,,,\n" + "c,2024-03-01,50,female,x\n\n\n").encode())
    result, _ = load_tables(folder)
    assert result.tables["patients"]["patient_id"].to_list() == ["b", "c"]
    assert result.tables["patients"]["_row"].to_list() == [2, 4]
    assert result.empty_rows == {"patients": [1, 3, 5, 6]}
    assert result.problems == []
    batches = split_by_patient(folder, 10, tmp_path_factory.mktemp("batches"))
    assert sorted(validate(batches.batch(0)).tables["patients"]["patient_id"].to_list()) == ["b", "c"]
    shown = CliRunner().invoke(app, ["validate", "--data", str(folder)])
    assert shown.exit_code == 0, shown.output
    assert "patients: skipped 4 empty record(s), with no value in any column (rows 1, 3, 5, 6)" in shown.output

    _write(folder, (PATIENTS + "\n , ,\t,, \n").encode())  # blank text is no value either
    with pytest.raises(ContractViolation, match=r"patients.csv has no rows \(only 2 empty record\(s\)\)"):
        load_tables(folder)
    with pytest.raises(ContractViolation, match=r"patients.csv has no rows \(only 2 empty record\(s\)\)"):
        split_by_patient(folder, 10, tmp_path_factory.mktemp("batches"))

    _write(folder, (PATIENTS + ROWS[1] + "\n,,,,note\n").encode())
    with pytest.raises(ContractViolation, match=r"patients.patient_id: 1 row\(s\) are empty \(e.g. row 2"):
        load_tables(folder)


def test_field_counts_do_not_depend_on_where_the_file_is_cut_into_blocks():
    from pipeline.csv_text import _FieldCounter

    text = (PATIENTS + "\n".join(ROWS * 3) + '\nc,2024-01-01\n,,,,\n"q ""x"", y",2024-01-01,30,male\nlast,1').encode()

    def counted(cuts):
        counter = _FieldCounter()
        for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True):
            counter.feed(text[start:end])
        counter.feed(None)
        return counter.width, counter.ragged, counter.n_ragged, counter.quoted

    whole = counted([])
    assert whole == (5, [(7, 2), (9, 4), (10, 2)], 3, True)
    for cuts in ([1], [text.index(b"line two")], [text.index(b'""x')+1], list(range(1, len(text), 7))):
        assert counted(cuts) == whole, cuts
