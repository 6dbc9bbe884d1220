"""Small hand-made tables for the feature tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from features.asof import DAY, PIDX, patient_index
from features.tables import SPECS
from pipeline.config import Config, load_config

INTAKE = date(2024, 1, 1)


def day(n: int, start: date = INTAKE) -> date:
    return start + timedelta(days=n)


def at(n: int, hour: int = 8, minute: int = 0, start: date = INTAKE) -> datetime:
    d = day(n, start)
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=UTC)


def typed(table: str, rows: dict[str, list]) -> pl.DataFrame:
    """A frame of `table` with contract dtypes; optional contract columns not given are null."""
    spec = SPECS[table]
    n = len(next(iter(rows.values())))
    columns = {}
    for c in spec.columns:
        values = rows.get(c.name, [None] * n)
        columns[c.name] = pl.Series(c.name, values, dtype=c.dtype)
    extras = {k: pl.Series(k, v) for k, v in rows.items() if k not in columns}
    return pl.DataFrame({**columns, **extras})


def patients(ids: list[str], intake: list[date] | None = None, **columns: list) -> pl.DataFrame:
    n = len(ids)
    rows = {
        "patient_id": ids,
        "intake_date": intake or [INTAKE] * n,
        "age_at_intake": columns.pop("age_at_intake", [30.0] * n),
        "sex": columns.pop("sex", ["female"] * n),
        **columns,
    }
    return typed("patients", rows)


def outcomes(
    ids: list[str], relapse: list[int | None], followup: list[int], intake: list[date] | None = None
) -> pl.DataFrame:
    starts = intake or [INTAKE] * len(ids)
    return typed(
        "outcomes",
        {
            "patient_id": ids,
            "relapse_date": [None if r is None else day(r, s) for r, s in zip(relapse, starts, strict=True)],
            "last_followup_date": [day(f, s) for f, s in zip(followup, starts, strict=True)],
        },
    )


def grid(days_by_patient: dict[str, list[int]]) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Patients (intake INTAKE) keyed by `_pidx`, and landmark rows (`_pidx`, patient_id, day)."""
    people = patient_index(patients(list(days_by_patient)).lazy())
    rows = pl.LazyFrame(
        {
            "patient_id": [p for p, days in days_by_patient.items() for _ in days],
            DAY: pl.Series([d for days in days_by_patient.values() for d in days], dtype=pl.Int64),
        }
    ).join(people.select(PIDX, "patient_id"), on="patient_id", maintain_order="left")
    return people, rows.select(PIDX, "patient_id", DAY)


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config()


def cohort() -> dict[str, pl.DataFrame]:
    """Four patients with every table, an extra patient column and raw beats."""
    ids = ["p1", "p2", "p3", "p4"]
    intake = [INTAKE, day(10), day(20), day(-800)]
    tables = {
        "patients": patients(
            ids,
            intake,
            age_at_intake=[19.0, 25.0, 44.0, 30.0],
            sex=["female", "male", "other", "female"],
            ethnicity=["Asian", "White British", None, "Asian"],
            housing=["stable", "unstable", "homeless", None],
            polysubstance=[True, False, True, None],
            region=["north", "south", "north", None],
        ),
        "outcomes": outcomes(ids, [60, None, None, None], [60, 200, 45, 900], intake),
        "bdnf": typed(
            "bdnf",
            {
                "patient_id": ["p1", "p1", "p2"],
                "sample_date": [day(0), day(30), day(12)],
                "bdnf_ng_ml": [20.0, 15.0, 30.0],
            },
        ),
        "hrv": typed(
            "hrv",
            {
                "patient_id": ["p1", "p1", "p2", "p2"],
                "recorded_at": [at(1), at(20, 23, 30), at(11), at(40, 2)],
                "rmssd_ms": [40.0, 30.0, 55.0, 50.0],
                "sdnn_ms": [50.0, 45.0, 70.0, 66.0],
                "lf_hf": [1.2, None, 2.0, 1.8],
                "mean_hr_bpm": [72.0, 75.0, 61.0, None],
            },
        ),
        "rr_intervals": typed(
            "rr_intervals",
            {
                "patient_id": ["p3"] * 5,
                "recording_id": ["r1"] * 5,
                "recorded_at": [at(25)] * 5,
                "rr_ms": [800.0, 820.0, 1500.0, 790.0, 805.0],
            },
        ),
        "therapy_sessions": typed(
            "therapy_sessions",
            {
                "patient_id": ["p1", "p1", "p2", "p2", "p3"],
                "session_date": [day(2), day(9), day(15), day(30), day(22)],
                "modality": ["CBT", "MBI", "EMDR", "group", "CBT"],
                "attended": [True, False, True, True, True],
                "duration_min": [50.0, 50.0, 60.0, None, 45.0],
            },
        ),
        "assessments": typed(
            "assessments",
            {
                "patient_id": ["p1", "p1", "p2", "p3"],
                "assessed_on": [day(0), day(28), day(10), day(20)],
                "instrument": ["PHQ9", "PHQ9", "GAD7", "craving_vas"],
                "score": [12.0, 9.0, 6.0, 40.0],
            },
        ),
    }
    return tables


def features_config(config: Config, **changes: dict) -> object:
    """`config.features` with some groups' settings changed, e.g. bdnf={"enabled": False}."""
    updates = {g: getattr(config.features, g).model_copy(update=u) for g, u in changes.items()}
    return config.features.model_copy(update=updates)
