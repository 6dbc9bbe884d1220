"""How a raw value reads: blank text is no value, and a value becomes its contract type only
when no information would be lost.

Pure Polars expressions, used by the contract checks (`pipeline.contract`) and by the readers
that must tell a table with records from one with none (`pipeline.io`, `pipeline.shard_files`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import polars as pl

from features.tables import ROW, has_value


def has_values(schema: Mapping[str, pl.DataType]) -> pl.Expr:
    """True for a record with a value in some column other than `_row` (blank text is none)."""
    checks = [has_value(name, dtype) for name, dtype in schema.items() if name != ROW]
    return pl.any_horizontal(checks) if checks else pl.lit(False)


def blank_as_null(frame: pl.DataFrame, skip: Collection[str] = ()) -> pl.DataFrame:
    """Text values that are empty or only whitespace made missing, as an empty CSV field is;
    the columns in `skip` are left as they are.

    A Parquet export or a spreadsheet may write "" or "  " where nothing was recorded; taken
    as a value it would be a patient id, a category or a subgroup of its own."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String and name not in skip]
    if not text or frame.height == 0:
        return frame
    # Whitespace is ASCII at or below the space, or not ASCII. A column whose smallest value
    # starts above the space and whose largest starts within ASCII holds no blank value: two
    # cheap passes (min, max) spare the pass over every value's text in the common case.
    bounds = frame.select(*(pl.col(n).min().alias(f"{i}lo") for i, n in enumerate(text)),
                          *(pl.col(n).max().alias(f"{i}hi") for i, n in enumerate(text))).row(0, named=True)
    suspect = [n for i, n in enumerate(text)
               if bounds[f"{i}lo"] is not None and not (bounds[f"{i}lo"][:1] > " " and bounds[f"{i}hi"][:1] < "\x80")]
    return frame.with_columns(pl.when(has_value(n, pl.String)).then(pl.col(n)).alias(n) for n in suspect)


_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_DATE_TIMES = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M")  # with or without seconds


def coerce(name: str, source: pl.DataType, target: pl.DataType) -> pl.Expr:
    """Cast a raw column to its contract type without raising; failures become null, so they are
    reported with their rows. Nothing is cast that would change a value: a date is a whole
    ISO date (or date-time, taken on the day written), an integer column takes only whole
    numbers, a boolean column only true/false/yes/no/1/0, and numbers are never taken as dates.
    An instant with an offset (text ending in Z or +05:00, or a time-zone-aware timestamp) is
    dated in UTC, as `recorded_at` is, so one instant has one date in every table (its local date
    could be the day after); a naive date-time is taken on the day written."""
    col = pl.col(name)
    if source == target:
        return col
    if source == pl.String:
        text = col.str.strip_chars()  # blank values are already missing (`blank_as_null`)
        if target == pl.Date:
            aware, naive = _date_times(text)
            return pl.coalesce(text.str.to_date("%Y-%m-%d", strict=False), aware.dt.date(), naive.dt.date())
        if isinstance(target, pl.Datetime):
            aware, naive = _date_times(text)
            day = text.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us"))
            return pl.coalesce(aware, pl.coalesce(naive, day).dt.replace_time_zone("UTC"))
        if target == pl.Boolean:
            low = text.str.to_lowercase()
            return pl.when(low.is_in(_TRUE)).then(True).when(low.is_in(_FALSE)).then(False).otherwise(None)
        if target.is_integer():  # "3" and "3.0" (as a Parquet 3.0 is), never "3.5"
            number = text.cast(pl.Float64, strict=False)
            whole = pl.when(number == number.floor()).then(number).cast(target, strict=False)
            return pl.coalesce(text.cast(target, strict=False), whole)
        return text.cast(target, strict=False)
    if source.is_numeric() and (target.is_temporal() or target == pl.Boolean or target.is_integer()):
        if target == pl.Boolean:
            return pl.when(col == 1).then(True).when(col == 0).then(False).otherwise(None)
        if target.is_integer():
            whole = pl.when(col == col.floor()).then(col) if source.is_float() else col
            return whole.cast(target, strict=False)
        return pl.lit(None, dtype=target)
    if target == pl.Date and isinstance(source, pl.Datetime):  # an aware instant is dated in UTC
        return (col if source.time_zone is None else col.dt.convert_time_zone("UTC")).dt.date()
    if isinstance(target, pl.Datetime):
        if isinstance(source, pl.Datetime):
            moved = col.dt.replace_time_zone("UTC") if source.time_zone is None else col.dt.convert_time_zone("UTC")
            return moved.dt.cast_time_unit("us")
        if source == pl.Date:
            return col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return col.cast(target, strict=False)


def _date_times(text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """ISO 8601 date-times in text (a space or T before the time, seconds optional): those with an
    offset (or Z) as UTC instants, and those without one as naive date-times (null where not)."""
    iso = text.str.replace(" ", "T", literal=True).str.replace(r"Z$", "+00:00")
    aware = pl.coalesce(iso.str.to_datetime(f"{f}%z", strict=False, time_unit="us", time_zone="UTC")
                        for f in _DATE_TIMES)
    naive = pl.coalesce(iso.str.to_datetime(f, strict=False, time_unit="us") for f in _DATE_TIMES)
    return aware, naive
