"""A simulated cohort shared by the simulator's tests (4,000 patients, in memory, about a second)."""

from __future__ import annotations

import polars as pl
import pytest
from typer.testing import CliRunner

from features.time import days_since
from pipeline.cli import app
from pipeline.simulator import SimulatedCohort, load_simulation_config, simulate_cohort

TABLES = ("patients", "outcomes", "bdnf", "hrv", "rr_intervals", "therapy_sessions", "assessments")
PHASES = ((0, 13), (14, 89), (90, 364), (365, 729))


@pytest.fixture(scope="package")
def config():
    return load_simulation_config()


@pytest.fixture(scope="package")
def cohort(config) -> SimulatedCohort:
    return simulate_cohort(4000, 5, config)


@pytest.fixture(scope="package")
def followed(cohort) -> pl.DataFrame:
    """Patients with their observed relapse day (null if none) and last follow-up day."""
    t = cohort.tables
    return (
        t["patients"]
        .join(t["outcomes"], on="patient_id")
        .with_columns(
            relapse_day=days_since(pl.col("relapse_date"), pl.col("intake_date")),
            last_day=days_since(pl.col("last_followup_date"), pl.col("intake_date")),
        )
    )


def with_day(cohort: SimulatedCohort, table: str, date_col: str) -> pl.DataFrame:
    """`table` with `day`: days from the patient's intake to `date_col`."""
    intake = cohort.tables["patients"].select("patient_id", "intake_date")
    frame = cohort.tables[table].join(intake, on="patient_id")
    return frame.with_columns(day=days_since(pl.col(date_col), pl.col("intake_date")))


def rate_per_1000_days(frame: pl.DataFrame) -> float:
    """Observed relapses per 1,000 person-days of follow-up."""
    return 1000 * frame["relapse_day"].is_not_null().sum() / (frame["last_day"].sum() + frame.height)


def run(*args: str):
    """The `relapse` CLI, in process."""
    return CliRunner().invoke(app, list(args))
