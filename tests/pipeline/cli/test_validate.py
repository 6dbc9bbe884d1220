"""Data tests through the CLI: corrupted copies of a simulated cohort are rejected by
`relapse validate` with the table, column and rows named, exit status 2, and nothing written."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline.cli import app

# one xdist worker simulates the module's cohort (the module fixture) for every test of the module
pytestmark = pytest.mark.xdist_group("validate_cohort")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cohort") / "data"
    result = CliRunner().invoke(app, ["simulate", "--patients", "150", "--seed", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def edit(table: str, change: Callable[[pl.DataFrame], pl.DataFrame]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        path = folder / f"{table}.parquet"
        change(pl.read_parquet(path)).write_parquet(path)

    return apply


def first_row(column: str, value) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def change(frame: pl.DataFrame) -> pl.DataFrame:
        new = pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(value)).otherwise(pl.col(column))
        return frame.with_columns(new.alias(column))

    return change


def write_bytes(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(data)


CORRUPTIONS = {
    "missing column": (edit("bdnf", lambda f: f.drop("bdnf_ng_ml")), "bdnf.bdnf_ng_ml: required column is missing"),
    "wrong type": (
        edit("patients", first_row("age_at_intake", "twenty")),
        "patients.age_at_intake: 1 row(s) are not a valid",
    ),
    "age out of range": (
        edit("patients", first_row("age_at_intake", 7.0)),
        "patients.age_at_intake: 1 row(s) are outside",
    ),
    "unknown category": (edit("patients", first_row("sex", "F")), "patients.sex: 1 row(s) are not one of"),
    "duplicate patient": (
        edit("patients", lambda f: pl.concat([f, f.head(1)])),
        "patients.patient_id: 2 row(s) repeat a patient_id",
    ),
    "duplicate outcome": (
        edit("outcomes", lambda f: pl.concat([f, f.head(1)])),
        "outcomes.patient_id: 2 row(s) repeat a patient_id",
    ),
    "orphan child rows": (
        edit("therapy_sessions", first_row("patient_id", "NOBODY")),
        "therapy_sessions.patient_id: 1 row(s) name a patient_id that is not in patients",
    ),
    "date before intake": (
        edit("assessments", first_row("assessed_on", date(2000, 1, 1))),
        "assessments.assessed_on: 1 row(s) are dated before",
    ),
    "relapse after follow-up": (
        edit(
            "outcomes",
            lambda f: f.with_columns(
                pl.when(pl.int_range(pl.len()) == 0)
                .then(pl.col("last_followup_date") + pl.duration(days=5))
                .otherwise(pl.col("relapse_date"))
                .alias("relapse_date")
            ),
        ),
        "outcomes.relapse_date: 1 row(s) have a relapse after last_followup_date",
    ),
    "non-positive BDNF": (edit("bdnf", first_row("bdnf_ng_ml", 0.0)), "bdnf.bdnf_ng_ml: 1 row(s) are outside"),
    "non-positive RMSSD": (edit("hrv", first_row("rmssd_ms", -4.0)), "hrv.rmssd_ms: 1 row(s) are outside"),
    "RR out of range": (edit("rr_intervals", first_row("rr_ms", 5000.0)), "rr_intervals.rr_ms: 1 row(s) are outside"),
    "unreadable file": (write_bytes("hrv.parquet", b"garbage"), "hrv: hrv.parquet cannot be read"),
    "empty patients": (edit("patients", lambda f: f.head(0)), "patients: patients.parquet has no rows"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corrupted_copy_is_rejected_naming_table_column_and_rows(cohort, tmp_path, name):
    corrupt, expected = CORRUPTIONS[name]
    folder = tmp_path / "data"
    shutil.copytree(cohort, folder)
    corrupt(folder)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(app, ["validate", "--data", str(folder)])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    if "row(s)" in expected:
        assert "(e.g. row " in result.output
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_the_simulated_cohort_itself_is_valid(cohort):
    result = CliRunner().invoke(app, ["validate", "--data", str(cohort)])
    assert result.exit_code == 0, result.output
    assert "contract OK" in result.output
