"""Non-finite numbers and implausible dates, in every column of every table: the cases are
generated from the contract (`features.tables.SPECS`), so a new column is covered by its dtype."""

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from features.tables import EARLIEST_DATE, SPECS
from pipeline.contract import validate
from tests.pipeline.test_contract import tables

FLOATS = [(t, c.name) for t, spec in SPECS.items() for c in spec.columns if c.dtype == pl.Float64]
DATES = [
    (t, c.name)
    for t, spec in SPECS.items()
    for c in spec.columns
    if c.dtype == pl.Date or isinstance(c.dtype, pl.Datetime)
]
TODAY = date(2025, 1, 1)


def _set_first(raw: dict[str, pl.DataFrame], table: str, column: str, value) -> dict[str, pl.DataFrame]:
    """The valid fixture with row 1 of `table.column` replaced by `value` (the column added if absent)."""
    frame = raw[table]
    dtype = SPECS[table].column(column).dtype
    current = frame[column] if column in frame.columns else pl.Series(column, [None] * frame.height, dtype)
    values = current.to_list()
    values[0] = value
    return raw | {table: frame.with_columns(pl.Series(column, values, dtype=current.dtype, strict=False))}


def _only(result, table: str, column: str, text: str):
    found = [p for p in result.problems if p.table == table and p.column == column and text in p.reason]
    assert len(found) == 1, [p.message() for p in result.problems]
    assert found[0].rows == [1]
    assert f"{table}.{column}" in found[0].message() and "row 1" in found[0].message()
    return found[0]


def test_the_cases_cover_every_float_and_date_column():
    assert ("bdnf", "bdnf_ng_ml") in FLOATS and ("hrv", "recorded_at") in DATES
    assert len(FLOATS) == sum(c.dtype == pl.Float64 for s in SPECS.values() for c in s.columns)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(("table", "column"), FLOATS)
def test_every_float_column_refuses_non_finite_values(table, column, value):
    result = validate(_set_first(tables(), table, column, value), today=TODAY)
    _only(result, table, column, "not finite")
    assert len([p for p in result.problems if p.table == table and p.column == column]) == 1  # no range echo


@pytest.mark.parametrize("text", ["NaN", "nan", "inf", "-Infinity", "1e400"])
def test_non_finite_text_in_a_csv_column_is_refused(text):
    raw = tables()
    bdnf = raw["bdnf"].with_columns(pl.col("bdnf_ng_ml").cast(pl.String))
    raw["bdnf"] = bdnf.with_columns(
        pl.when(pl.col("_row") == 1).then(pl.lit(text)).otherwise("bdnf_ng_ml").alias("bdnf_ng_ml")
    )
    _only(validate(raw, today=TODAY), "bdnf", "bdnf_ng_ml", "not finite")


def _as(table: str, column: str, day: date):
    dtype = SPECS[table].column(column).dtype
    return day if dtype == pl.Date else datetime(day.year, day.month, day.day, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "day",
    [TODAY + timedelta(days=1), date(2101, 1, 1), EARLIEST_DATE - timedelta(days=1)],
    ids=["tomorrow", "2101", "1899"],
)
@pytest.mark.parametrize(("table", "column"), DATES)
def test_every_date_column_refuses_implausible_dates(table, column, day):
    raw = tables()
    if column == "relapse_date":  # keep relapse <= follow-up so only the date rule speaks
        raw = _set_first(raw, table, "last_followup_date", _as(table, "last_followup_date", day))
    result = validate(_set_first(raw, table, column, _as(table, column, day)), today=TODAY)
    _only(result, table, column, "plausible range")


def test_the_run_date_itself_and_unicode_patient_ids_are_valid():
    raw = tables()
    ids = {"a": "Zoë-ß-患者-١", "b": "b", "c": "c"}
    raw = {name: f.with_columns(pl.col("patient_id").replace(ids)) for name, f in raw.items()}
    raw = _set_first(raw, "outcomes", "last_followup_date", TODAY)
    raw = _set_first(raw, "outcomes", "relapse_date", TODAY)
    result = validate(raw, today=TODAY)
    assert result.problems == []
    assert "Zoë-ß-患者-١" in result.tables["bdnf"]["patient_id"].to_list()
