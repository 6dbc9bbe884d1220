"""Time on the treatment clock: days since intake and the recovery phase of a day.

Every feature counts time in whole days since `intake_date` (day 0), computed by
`days_since` and nowhere else. A `Datetime` counts by its UTC calendar date, so a recording at
23:30 UTC on the landmark day belongs to that day whatever the clinic's local time zone.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from features.config import Phase


def days_since(date_expr: pl.Expr, intake_expr: pl.Expr) -> pl.Expr:
    """Whole days from intake to a record's date (Int64); a `Datetime` counts by its UTC date.

    Works on `Date` and on `Datetime` (naive values are taken as UTC) alike, because both are
    counted in days since the Unix epoch, floored.

    >>> from datetime import date, datetime, timezone
    >>> frame = pl.DataFrame({
    ...     "intake": [date(2024, 1, 1)] * 2,
    ...     "at": [datetime(2024, 1, 3, 23, 59, tzinfo=timezone.utc),
    ...            datetime(2024, 1, 1, 0, 0, tzinfo=timezone.utc)],
    ... })
    >>> frame.select(days_since(pl.col("at"), pl.col("intake")).alias("day"))["day"].to_list()
    [2, 0]
    """
    return date_expr.dt.epoch("d").cast(pl.Int64) - intake_expr.dt.epoch("d").cast(pl.Int64)


def phase_expr(day_expr: pl.Expr, phases: Sequence[Phase]) -> pl.Expr:
    """The name of the phase containing the day (String), null before day 0 or after the last.

    >>> from features.config import Phase
    >>> phases = [Phase(name="acute", start_day=0, end_day=13),
    ...           Phase(name="early", start_day=14, end_day=89)]
    >>> pl.select(phase_expr(pl.Series([-1, 0, 13, 14, 90]), phases).alias("p"))["p"].to_list()
    [None, 'acute', 'acute', 'early', None]
    """
    return _by_phase(day_expr, phases, lambda p: pl.lit(p.name, dtype=pl.String), pl.String)


def phase_start_expr(day_expr: pl.Expr, phases: Sequence[Phase]) -> pl.Expr:
    """The first day of the phase containing the day (Int64), null outside every phase."""
    return _by_phase(day_expr, phases, lambda p: pl.lit(p.start_day, dtype=pl.Int64), pl.Int64)


def _by_phase(day_expr: pl.Expr, phases: Sequence[Phase], value, dtype: pl.DataType) -> pl.Expr:
    expr: pl.Expr = pl.lit(None, dtype=dtype)
    for phase in reversed(list(phases)):
        inside = (day_expr >= phase.start_day) & (day_expr <= phase.end_day)
        expr = pl.when(inside).then(value(phase)).otherwise(expr)
    return expr


def last_day(phases: Sequence[Phase]) -> int:
    """The last day covered by any phase: landmarks and scoring stop there."""
    return max(p.end_day for p in phases)


def date_plus_days(date_expr: pl.Expr, days_expr: pl.Expr) -> pl.Expr:
    """`date_expr` moved by a whole number of days (the inverse of `days_since`)."""
    return date_expr + pl.duration(days=days_expr)

