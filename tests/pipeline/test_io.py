"""Loaders: Parquet and CSV read to the same typed tables; bad files are clear errors."""

import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.io import atomic_write, drop_row_index, load_tables, read_frame, write_frame, write_tables
from pipeline.problems import ContractViolation
from pipeline.shard_files import split_by_patient
from tests.pipeline.test_contract import tables


@pytest.fixture
def valid():
    return drop_row_index(tables())


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_each_format_loads_every_table(tmp_path, valid, fmt):
    write_tables(valid, tmp_path, fmt=fmt)
    result, paths = load_tables(tmp_path, required=("patients", "outcomes"))
    assert set(result.tables) == set(valid) == set(paths)
    for name, frame in valid.items():
        loaded = drop_row_index({name: result.tables[name]})[name].select(frame.columns)
        assert loaded.equals(frame.cast(loaded.schema)), name


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_an_input_column_named_like_the_row_number_is_not_read(tmp_path, valid, fmt):
    own = {name: frame.with_columns(pl.lit(99).alias("_row")) for name, frame in valid.items()}
    write_tables(own, tmp_path, fmt=fmt)
    result, _ = load_tables(tmp_path, required=("patients", "outcomes"))
    assert result.problems == []
    assert result.tables["patients"]["_row"].to_list() == list(range(1, valid["patients"].height + 1))
    batches = split_by_patient(tmp_path, 2, tmp_path / "batches")
    rows = sorted(r for i in range(batches.n_batches) for r in batches.batch(i)["patients"]["_row"].to_list())
    assert rows == list(range(1, valid["patients"].height + 1))


def test_optional_tables_may_be_absent(tmp_path, valid):
    write_tables({"patients": valid["patients"]}, tmp_path)
    result, _ = load_tables(tmp_path)
    assert set(result.tables) == {"patients"}


def test_missing_patients_table(tmp_path):
    with pytest.raises(ContractViolation, match="patients: required table is missing"):
        load_tables(tmp_path)


def test_unreadable_files_and_an_empty_patients_table_are_named(tmp_path, valid):
    valid["patients"].head(0).write_csv(tmp_path / "patients.csv")
    (tmp_path / "bdnf.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ContractViolation) as err:
        load_tables(tmp_path)
    text = str(err.value)
    assert "bdnf: bdnf.parquet cannot be read" in text
    assert "patients: patients.csv has no rows" in text


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_header_only_optional_table_has_no_records_like_an_absent_one(tmp_path, valid, fmt):
    """A clinic's export may carry an empty file for a source it does not collect: its group is
    then missing (features null, reported by scoring), never an error."""
    write_tables({**valid, "hrv": valid["hrv"].head(0)}, tmp_path, fmt=fmt)
    result, _ = load_tables(tmp_path, required=("patients", "outcomes"))
    assert result.problems == [] and result.tables["hrv"].height == 0
    batches = split_by_patient(tmp_path, 2, tmp_path / "work")
    assert sum(batches.batch(i)["hrv"].height for i in range(batches.n_batches)) == 0
    assert batches.batch(0)["patients"].height + batches.batch(1)["patients"].height == valid["patients"].height


def test_a_table_file_named_in_another_case_or_a_folder_is_refused_not_skipped(tmp_path, valid):
    write_tables({"patients": valid["patients"]}, tmp_path)
    valid["bdnf"].write_csv(tmp_path / "bdnf.CSV")
    (tmp_path / "hrv.parquet").mkdir()
    with pytest.raises(ContractViolation) as err:
        load_tables(tmp_path)
    assert "bdnf: bdnf.CSV is not read: name the file bdnf.csv" in str(err.value)
    assert "hrv: hrv.parquet is a folder, not a table file" in str(err.value)


def test_two_files_for_one_table(tmp_path, valid):
    write_tables({"patients": valid["patients"]}, tmp_path)
    valid["patients"].write_csv(tmp_path / "patients.csv")
    with pytest.raises(ContractViolation, match="keep one"):
        load_tables(tmp_path)


def test_quarantine_keeps_valid_rows(tmp_path, valid):
    valid["bdnf"] = valid["bdnf"].with_columns(bdnf_ng_ml=pl.Series([18.0, -1.0]))
    write_tables(valid, tmp_path)
    with pytest.raises(ContractViolation):
        load_tables(tmp_path, on_invalid="fail")
    result, _ = load_tables(tmp_path, on_invalid="quarantine")
    assert result.tables["bdnf"].height == 1
    assert result.rejects().to_dicts() == [
        {"table": "bdnf", "row": 2, "column": "bdnf_ng_ml", "reason": "are outside the allowed range (> 0)"}
    ]


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.parquet"

    def broken(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert list(tmp_path.iterdir()) == []


def test_validate_cli_summarises_or_fails_with_exit_2(tmp_path, valid):
    write_tables(valid, tmp_path)
    ok = CliRunner().invoke(app, ["validate", "--data", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert "contract OK" in ok.output and "therapy_sessions" in ok.output
    assert "repeat an earlier one" not in ok.output
    sessions = valid["therapy_sessions"]
    pl.concat([sessions, sessions.head(1), sessions]).write_parquet(tmp_path / "therapy_sessions.parquet")
    twice = CliRunner().invoke(app, ["validate", "--data", str(tmp_path)])
    assert twice.exit_code == 0, twice.output  # a warning: two equal sessions on one day can be real
    assert "warning: therapy_sessions: 3 record(s) repeat an earlier one in every column (rows 3, 4, 5)" in (
        twice.output)
    valid["outcomes"].with_columns(patient_id=pl.lit("ghost")).write_parquet(tmp_path / "outcomes.parquet")
    bad = CliRunner().invoke(app, ["validate", "--data", str(tmp_path)])
    assert bad.exit_code == 2
    assert "outcomes.patient_id: 3 row(s)" in bad.output
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    "args",
    [
        ["score", "--as-of", "2024-06-01", "--out", "{data}/patients.parquet"],
        ["score", "--as-of", "2024-06-01", "--out", "{data}/../in/bdnf.csv"],  # a new table file beside bdnf.parquet
        ["score", "--as-of", "2024-06-01", "--out", "{tmp}/s.parquet", "--shap-out", "{data}/hrv.parquet"],
        ["features", "--out", "{data}/outcomes.parquet"],
        ["features", "--out", "{data}/BDNF.parquet"],  # the input's own file where case is not told apart
        ["score", "--as-of", "2024-06-01", "--out", "{data}/Patients.csv"],
    ],
)
def test_an_output_on_a_table_file_of_the_input_is_refused_before_any_work(tmp_path, valid, args):
    data = tmp_path / "in"
    write_tables(valid, data)
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    argv = [a.format(data=data, tmp=tmp_path) for a in args]
    result = CliRunner().invoke(app, [argv[0], "--data", str(data), *argv[1:]])
    assert result.exit_code == 2, result.output
    assert "is a table file of the input folder" in result.output
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before  # nothing replaced, nothing added


def test_an_output_frame_read_back_from_csv_keeps_its_identifiers_as_text(tmp_path):
    frame = pl.DataFrame({"patient_id": ["00123", "7"], "risk_30d": [0.25, 0.5], "model_version": ["2", "2"]})
    write_frame(frame, tmp_path / "scores.csv")
    back = read_frame(tmp_path / "scores.csv")
    assert back["patient_id"].to_list() == ["00123", "7"] and back["model_version"].to_list() == ["2", "2"]
    assert back["risk_30d"].to_list() == [0.25, 0.5]
