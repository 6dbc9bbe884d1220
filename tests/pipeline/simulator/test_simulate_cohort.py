"""`simulate_cohort`: its arguments, and tables that follow the data contract and the follow-up."""

from __future__ import annotations

import polars as pl
import pytest

from features.tables import ROW, SPECS
from pipeline.contract import validate
from pipeline.simulator import simulate_cohort
from tests.pipeline.simulator.conftest import TABLES, with_day


def test_simulate_cohort_rejects_bad_arguments(config):
    with pytest.raises(ValueError):
        simulate_cohort(0, 1, config)
    with pytest.raises(ValueError):
        simulate_cohort(10, -1, config)


def test_tables_have_exactly_the_contract_columns_and_pass_its_checks(cohort):
    for name in TABLES:
        spec = SPECS[name]
        assert cohort.tables[name].schema == pl.Schema({c.name: c.dtype for c in spec.columns}), name
    raw = {
        k: v.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64)) for k, v in cohort.tables.items()
    }
    assert [p.message() for p in validate(raw, TABLES).problems] == []


def test_records_lie_between_intake_and_last_followup(cohort, followed):
    last = followed.select("patient_id", "last_day")
    for table, col in (
        ("bdnf", "sample_date"),
        ("hrv", "recorded_at"),
        ("rr_intervals", "recorded_at"),
        ("therapy_sessions", "session_date"),
        ("assessments", "assessed_on"),
    ):
        days = with_day(cohort, table, col).join(last, on="patient_id")
        assert days.filter((pl.col("day") < 0) | (pl.col("day") > pl.col("last_day"))).height == 0, table
    assert followed.filter(pl.col("relapse_day") > pl.col("last_day")).height == 0
    assert followed["last_day"].max() <= 729
