"""The as-of machinery every time-varying builder shares.

Records are reduced to one row per patient and day holding running totals (counts, sums,
sums of day·value, …) and forward-filled "latest" values. A backward `join_asof` then hands
each landmark the state of the last record day on or before it, so a feature at day t sees
exactly the records dated on or before t — never a later one — in O(records + landmarks).
Trailing-window statistics are differences of two running totals: the state at t minus the
state at t − window (records dated t − window + 1 … t).

Patients are keyed by `_pidx`, a dense integer given by `patient_index` in patient_id order,
so the joins and windows are integer-keyed and the output comes out sorted by patient and day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl
import polars.selectors as cs

from features.time import days_since

PIDX = "_pidx"
DAY = "day"
_KEY = "_asof_day"


def patient_index(patients: pl.LazyFrame) -> pl.LazyFrame:
    """Patients sorted by patient_id with a dense integer key `_pidx` (0, 1, 2, …)."""
    return patients.sort("patient_id").with_row_index(PIDX)


def with_record_day(records: pl.LazyFrame, index: pl.LazyFrame, date_column: str) -> pl.LazyFrame:
    """Records of known patients with `_pidx` and `day`, the days since intake of their date."""
    keys = index.select(PIDX, "patient_id", "intake_date")
    return (
        records.join(keys, on="patient_id", how="inner")
        .with_columns(days_since(pl.col(date_column), pl.col("intake_date")).alias(DAY))
        .drop("intake_date")
    )


def running_totals(
    daily: pl.LazyFrame,
    totals: Iterable[str],
    latest: Iterable[str] = (),
    order: Sequence[str] = (),
) -> pl.LazyFrame:
    """Per patient, in time order: cumulative sums of `totals`, forward-filled `latest` columns.

    `daily` holds one row per (`_pidx`, `day`, *`order`*); totals are null-free sums. When a day has
    several rows (`order` breaks the tie), `as_of` takes the day's last row: the whole day.
    Integer totals run over the whole frame and restart at each patient's first row by
    subtracting the total before it (exact in Int64, and much faster than a window per patient);
    float totals are summed per patient, so no rounding carries over from other patients.
    """
    totals, latest = list(totals), list(latest)
    ordered = daily.sort(PIDX, DAY, *order)
    schema = ordered.collect_schema()
    first_row = (pl.col(PIDX) != pl.col(PIDX).shift(1)).fill_null(True)
    exprs = []
    for c in totals:
        if schema[c].is_integer():
            running = pl.col(c).cum_sum()
            exprs.append(running - pl.when(first_row).then(running - pl.col(c)).forward_fill())
        else:
            exprs.append(pl.col(c).cum_sum().over(PIDX))
    exprs += [pl.col(c).forward_fill().over(PIDX) for c in latest]
    return ordered.with_columns(exprs) if exprs else ordered


def as_of(
    landmarks: pl.LazyFrame,
    state: pl.LazyFrame,
    columns: Sequence[str],
    *,
    prefix: str,
    lag_days: int = 0,
) -> pl.LazyFrame:
    """Attach, as `prefix + column`, the state of the last day on or before `day - lag_days`.

    `landmarks` must be sorted by (`_pidx`, `day`) and `state` by (`_pidx`, `day`); a landmark
    with no record day on or before it gets nulls.
    """
    right = state.select(PIDX, pl.col(DAY).alias(_KEY), *[pl.col(c).alias(prefix + c) for c in columns])
    left = landmarks.with_columns((pl.col(DAY) - lag_days).alias(_KEY))
    return left.join_asof(right, on=_KEY, by=PIDX, strategy="backward", check_sortedness=False).drop(_KEY)


def total(prefix: str, column: str) -> pl.Expr:
    """A running total at a landmark; no record yet means a total of zero."""
    return pl.col(prefix + column).fill_null(0)


def in_window(column: str, now: str = "_now_", before: str = "_then_") -> pl.Expr:
    """The part of a running total that falls in the trailing window (state now − state then)."""
    return total(now, column) - total(before, column)


def safe_ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """numerator / denominator, null where the denominator is zero or null."""
    return pl.when(denominator != 0).then(numerator / denominator).otherwise(None)


def slope_per_30_days(n: pl.Expr, sx: pl.Expr, sy: pl.Expr, sxx: pl.Expr, sxy: pl.Expr) -> pl.Expr:
    """Least-squares slope of value on day, in value units per 30 days, from sums.

    `n`, `sx` = Σday and `sxx` = Σday² are integers, so the denominator n·Σx² − (Σx)² is exact;
    the slope is null with fewer than two values or when they all share one day.
    """
    denominator = n * sxx - sx * sx
    numerator = n.cast(pl.Float64) * sxy - sx.cast(pl.Float64) * sy
    return pl.when((n >= 2) & (denominator > 0)).then(30.0 * numerator / denominator.cast(pl.Float64))


def drop_prefixed(frame: pl.LazyFrame, prefixes: Sequence[str]) -> pl.LazyFrame:
    """Drop the intermediate state columns a builder attached."""
    return frame.drop(cs.starts_with(*prefixes))
