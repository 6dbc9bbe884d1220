"""Days since intake (one helper for Date and UTC Datetime) and phases."""

from datetime import UTC, date, datetime, timedelta, timezone

import polars as pl
import pytest

from features.config import Phase
from features.time import days_since, last_day, phase_expr, phase_start_expr

PHASES = [
    Phase(name="acute", start_day=0, end_day=13),
    Phase(name="early", start_day=14, end_day=89),
]


def test_days_since_dates():
    frame = pl.DataFrame({"d": [date(2024, 1, 1), date(2024, 3, 1), date(2023, 12, 31)], "i": [date(2024, 1, 1)] * 3})
    out = frame.select(days_since(pl.col("d"), pl.col("i")).alias("day"))["day"]
    assert out.dtype == pl.Int64
    assert out.to_list() == [0, 60, -1]


def test_datetimes_count_by_their_utc_date():
    plus_two = timezone(timedelta(hours=2))
    frame = pl.DataFrame(
        {
            "at": [
                datetime(2024, 1, 3, 23, 59, 59, tzinfo=UTC),
                datetime(2024, 1, 3, 0, 0, tzinfo=UTC),
                datetime(2024, 1, 4, 1, 0, tzinfo=plus_two),  # 23:00 UTC on the 3rd
            ],
            "i": [date(2024, 1, 1)] * 3,
        },
        schema_overrides={"at": pl.Datetime("us", "UTC")},
    )
    assert frame.select(days_since(pl.col("at"), pl.col("i")))["at"].to_list() == [2, 2, 2]


def test_naive_datetimes_are_taken_as_utc():
    frame = pl.DataFrame({"at": [datetime(1969, 12, 31, 23, 0)], "i": [date(1969, 12, 30)]})
    assert frame.select(days_since(pl.col("at"), pl.col("i")))["at"].item() == 1


@pytest.mark.parametrize(
    ("d", "phase", "start"),
    [
        (-1, None, None),
        (0, "acute", 0),
        (13, "acute", 0),
        (14, "early", 14),
        (89, "early", 14),
        (90, None, None),
    ],
)
def test_phase_of_a_day(d, phase, start):
    out = pl.select(phase_expr(pl.lit(d), PHASES).alias("p"), phase_start_expr(pl.lit(d), PHASES).alias("s"))
    assert out.row(0) == (phase, start)


def test_last_day():
    assert last_day(PHASES) == 89
