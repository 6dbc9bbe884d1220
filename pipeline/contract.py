"""The checks that enforce the input data contract (`features.tables`) on raw tables.

Pure: frames in, typed frames and problems out. `pipeline.io` reads the files.

Every raw table carries `_row`, the 1-based data row in its file, so each problem can name the
offending rows and a quarantine can account for every input row. Time stamps (`recorded_at`)
are UTC: naive values are taken as UTC, and a record's date is its UTC calendar date.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from datetime import UTC, date, datetime

import polars as pl

from features.naming import slug, text_key
from features.tables import EARLIEST_DATE, ROW, SPECS, Column, TableSpec
from pipeline.coercion import blank_as_null, coerce
from pipeline.problems import Problem, Validated


def _problem(table: str, column: str, reason: str, bad: pl.DataFrame, show: list[str]) -> Problem:
    # the patient first wherever the table names one: the row number alone sends a reader to the file
    cols = [ROW, *dict.fromkeys(c for c in ["patient_id", *show] if c in bad.columns and c != ROW)]
    return Problem(
        table,
        column,
        reason,
        rows=bad[ROW].to_list(),
        examples=bad.select(cols).head(3).to_dicts(),
    )


def _spelt_otherwise(orphans: pl.DataFrame, patients: pl.DataFrame) -> str:
    """A hint when an unknown id is a patients id written with other characters (Unicode form,
    case, invisible characters), which print alike: both spelt out in code points."""
    keyed = patients.select(pl.col("patient_id").cast(pl.String), text_key(pl.col("patient_id").cast(pl.String))
                            .alias("_key")).unique("_key", keep="first")
    found = (orphans.select(pl.col("patient_id").cast(pl.String).alias("_here"),
                            text_key(pl.col("patient_id").cast(pl.String)).alias("_key"))
             .join(keyed, on="_key", how="inner", maintain_order="left"))
    if not found.height:
        return ""
    here, there = found.row(0, named=True)["_here"], found.row(0, named=True)["patient_id"]
    return (f" (e.g. {ascii(here)} here is {ascii(there)} in patients, written with other characters: ids are "
            "compared exactly; write them alike)")


def look_alike_column(name: str, spec: TableSpec, columns: Iterable[str]) -> str | None:
    """A column of the file, not one of the contract's, that is most likely `name` spelt another
    way: the same but for case, spaces and punctuation (`Age_At_Intake `, `deprivation decile`),
    or a near typo (`deprivaton_decile`); None when there is none."""
    known = {c.name for c in spec.columns} | {ROW}
    others = {slug(c): c for c in columns if c not in known}
    if slug(name) in others:
        return others[slug(name)]
    close = difflib.get_close_matches(name, list(others), n=1, cutoff=0.85)
    return others[close[0]] if close else None


def _type_and_rule_checks(
    spec: TableSpec, raw: pl.DataFrame, today: date
) -> tuple[pl.DataFrame, list[Problem]]:
    problems: list[Problem] = []
    missing = [c.name for c in spec.columns if c.required and c.name not in raw.columns]
    for name in missing:
        found = look_alike_column(name, spec, raw.columns)
        hint = f" (the file has {found!r}: column names are matched exactly)" if found else ""
        problems.append(Problem(spec.name, name, f"required column is missing{hint}", fatal=True))
    if missing:
        return raw, problems

    casts = {}
    for c in spec.columns:
        if c.name not in raw.columns:
            casts[c.name] = pl.lit(None, dtype=c.dtype).alias(c.name)
            continue
        casts[c.name] = coerce(c.name, raw.schema[c.name], c.dtype).alias(c.name)
        try:
            raw.head(1).select(casts[c.name])  # a type no cast can take (a list, a struct) raises here
        except pl.exceptions.PolarsError:
            reason = f"has type {raw.schema[c.name]}, expected {c.dtype}"
            problems.append(Problem(spec.name, c.name, reason, fatal=True))
    if problems:  # only such types so far: nothing else can be checked on these columns
        return raw, problems
    typed = raw.with_columns(casts.values())

    for c in spec.columns:
        if c.name not in raw.columns:
            continue
        present = raw[c.name].is_not_null()
        unparsed = typed[c.name].is_null() & present
        if unparsed.any():
            shown = raw.filter(unparsed)
            problems.append(_problem(spec.name, c.name, f"are not a valid {c.dtype}", shown, [c.name]))
        if not c.nullable:
            empty = typed.filter(~present)
            if empty.height:
                problems.append(_problem(spec.name, c.name, "are empty", empty, [c.name]))
        problems += _value_checks(spec.name, c, typed, today)
    known = {ROW, *(c.name for c in spec.columns)}
    extras = [x for x in raw.columns if x not in known]
    return typed.select([ROW, *(c.name for c in spec.columns), *extras]), problems


def _value_checks(table: str, c: Column, typed: pl.DataFrame, today: date) -> list[Problem]:
    """The value rules of one typed column, each a problem naming its rows.

    Generated from the column's spec, so a new column is covered by its dtype alone: every
    Float64 refuses NaN and ±inf (Polars orders NaN above every number, so a range rule alone
    would let it through); every date refuses values before `EARLIEST_DATE` or after `today`
    (the run's date: a record cannot come from the future); then the spec's range or levels.
    """
    value, show = pl.col(c.name), ["patient_id", c.name]
    checks: list[tuple[pl.Expr, str]] = []
    finite = pl.lit(True)
    if c.dtype == pl.Float64:
        finite = value.is_finite()
        checks.append((~finite, "are not finite numbers (NaN or ±inf)"))
    if c.dtype == pl.Date or isinstance(c.dtype, pl.Datetime):
        day = value.dt.date() if isinstance(c.dtype, pl.Datetime) else value
        checks.append(
            (
                (day < EARLIEST_DATE) | (day > today),
                f"are dated outside the plausible range {EARLIEST_DATE} to {today} (the run date)",
            )
        )
    rule = range_rule(c)
    if rule is not None:
        checks.append((finite & ~rule, rule_text(c)))
    problems = []
    for bad_rows, reason in checks:
        bad = typed.filter(value.is_not_null() & bad_rows)
        if bad.height:
            if c.allowed is not None and reason == rule_text(c):  # name every wrong level, not the first rows'
                levels = bad[c.name].cast(pl.String).unique(maintain_order=True)
                shown = ", ".join(repr(v) for v in levels.head(_LEVELS_SHOWN))
                more = f" and {len(levels) - _LEVELS_SHOWN} more" if len(levels) > _LEVELS_SHOWN else ""
                reason = f"{reason} (values here: {shown}{more})"
            problems.append(_problem(table, c.name, reason, bad, show))
    return problems


_LEVELS_SHOWN = 5


def range_rule(c: Column) -> pl.Expr | None:
    value = pl.col(c.name)
    if c.allowed is not None:
        return value.is_in(c.allowed)
    rule = None
    if c.min is not None:
        rule = value > c.min if c.min_exclusive else value >= c.min
    if c.max is not None:
        upper = value <= c.max
        rule = upper if rule is None else rule & upper
    return rule


def rule_text(c: Column) -> str:
    if c.allowed is not None:
        return f"are not one of {', '.join(c.allowed)}"
    parts = []
    if c.min is not None:
        parts.append(f"{'>' if c.min_exclusive else '>='} {c.min:g}")
    if c.max is not None:
        parts.append(f"<= {c.max:g}")
    return "are outside the allowed range (" + " and ".join(parts) + ")"


_KNOWN = "_known_patient"


def _cross_table_checks(tables: dict[str, pl.DataFrame]) -> list[Problem]:
    problems: list[Problem] = []
    for name, frame in tables.items():
        spec = SPECS[name]
        if spec.one_per_patient:
            dup = frame.filter(pl.col("patient_id").is_duplicated())
            if dup.height:
                problems.append(
                    _problem(name, "patient_id", "repeat a patient_id that must be unique", dup, ["patient_id"])
                )
    patients = tables.get("patients")
    if patients is None:
        return problems
    intake = patients.unique("patient_id", keep="first").select(
        "patient_id", "intake_date", pl.lit(True).alias(_KNOWN)
    )
    outcomes = tables.get("outcomes")
    if outcomes is not None:  # a patient with no outcomes row has an unknown relapse: never "no relapse"
        lacking = patients.filter(pl.col("patient_id").is_not_null()).join(
            outcomes.select("patient_id").drop_nulls().unique(), on="patient_id", how="anti")
        if lacking.height:
            problems.append(_problem("patients", "patient_id", "have no outcomes row: their relapse and follow-up "
                                     "are unknown (scored, they would count as never relapsed)", lacking,
                                     ["patient_id"]))
    padded = patients.filter(pl.col("patient_id") != pl.col("patient_id").str.strip_chars())["patient_id"]
    unknown = "name a patient_id that is not in patients"
    if len(padded):
        unknown += f" (ids are compared exactly; patients has ids with spaces around them, e.g. {padded[0]!r})"
    for name, frame in tables.items():
        if name == "patients":
            continue
        spec = SPECS[name]
        date_cols = [spec.date_column] if spec.date_column else ["relapse_date", "last_followup_date"]
        # one join, in file order, answers both: unknown patient (no match) and dated before intake
        keys = frame.select(ROW, "patient_id", *date_cols)
        joined = keys.join(intake, on="patient_id", how="left", maintain_order="left")
        orphans = joined.filter(pl.col(_KNOWN).is_null() & pl.col("patient_id").is_not_null())  # null: "empty"
        if orphans.height:
            problems.append(
                _problem(name, "patient_id", unknown + _spelt_otherwise(orphans, patients), orphans, ["patient_id"])
            )
        for col in date_cols:
            day = pl.col(col).dt.date() if isinstance(joined.schema[col], pl.Datetime) else pl.col(col)
            early = joined.filter(day < pl.col("intake_date"))
            if early.height:
                problems.append(
                    _problem(
                        name,
                        col,
                        "are dated before the patient's intake_date",
                        early,
                        ["patient_id", col, "intake_date"],
                    )
                )
    outcomes = tables.get("outcomes")
    if outcomes is not None:
        late = outcomes.filter(pl.col("relapse_date") > pl.col("last_followup_date"))
        if late.height:
            problems.append(
                _problem(
                    "outcomes",
                    "relapse_date",
                    "have a relapse after last_followup_date",
                    late,
                    ["patient_id", "relapse_date", "last_followup_date"],
                )
            )
    return problems


def validate(
    raw: dict[str, pl.DataFrame], required: Iterable[str] = ("patients",), today: date | None = None
) -> Validated:
    """Type, range and cross-table checks over raw tables (each with a `_row` column).

    Rows with any problem are left out of the returned tables; rows whose patient was
    rejected are rejected too, and so is a patient whose outcomes row was (their relapse is
    unknown). A record with no value in any column (a blank line in a CSV, a spreadsheet's
    trailing empty rows; blank text counts as no value) carries nothing to check or keep: it is
    skipped and its row listed in `empty_rows`. So every input row is kept,
    named in a problem, or listed empty. `today` (default: the current UTC date) is the latest
    plausible record date.
    """
    today = today or datetime.now(UTC).date()
    problems = [Problem(name, "", "required table is missing", fatal=True) for name in required if name not in raw]
    # A blank patient id outside patients needs no pass of its own: patients has none (a blank
    # one is an empty value there), so it is named as "not in patients".
    raw, empty = _skip_empty_records(
        {name: blank_as_null(frame, skip=() if name == "patients" else ("patient_id",)) for name, frame in raw.items()}
    )
    typed: dict[str, pl.DataFrame] = {}
    for name, frame in raw.items():
        checked, found = _type_and_rule_checks(SPECS[name], frame, today)
        problems += found
        if not any(p.fatal for p in found):
            typed[name] = checked
    problems += _cross_table_checks(typed)
    kept = _drop_rows(typed, problems)
    if "patients" in kept and "outcomes" in kept and kept["outcomes"].height < typed["outcomes"].height:
        # without its outcomes row a patient's relapse is unknown: scored, they would count as never relapsed
        lost = typed["outcomes"].join(kept["outcomes"].select(ROW), on=ROW, how="anti").select("patient_id")
        unknown = kept["patients"].join(lost.drop_nulls().unique(), on="patient_id", how="semi")
        if unknown.height:
            problems.append(_problem("patients", "patient_id", "belong to a patient whose outcomes row was rejected",
                                     unknown, ["patient_id"]))
            kept = _drop_rows(typed, problems)
    if "patients" in kept and kept["patients"].height < typed["patients"].height:  # a patients row was rejected
        ids = kept["patients"].select("patient_id")
        for name, frame in kept.items():
            if name == "patients":
                continue
            lost = frame.join(ids, on="patient_id", how="anti").join(
                typed["patients"].select("patient_id").unique(), on="patient_id", how="semi"
            )
            if lost.height:
                problems.append(
                    _problem(
                        name, "patient_id", "belong to a patient whose patients row was rejected", lost, ["patient_id"]
                    )
                )
        kept = _drop_rows(typed, problems)
    return Validated(kept, problems, empty)


def _skip_empty_records(raw: dict[str, pl.DataFrame]) -> tuple[dict[str, pl.DataFrame], dict[str, list[int]]]:
    """Each table without its records of no value, and their rows. Blank text is no value: the
    tables come through `blank_as_null`, a child table's patient_id aside (see `validate`), so
    only the records with nothing but a patient_id have theirs looked at."""
    kept, empty = {}, {}
    for name, frame in raw.items():
        if frame.width < 2:
            kept[name] = frame
            continue
        id_only = frame.filter(pl.all_horizontal(pl.exclude(ROW, "patient_id").is_null()))
        no_value = blank_as_null(id_only).filter(pl.all_horizontal(pl.exclude(ROW).is_null()))[ROW]
        kept[name] = frame
        if len(no_value):
            kept[name], empty[name] = frame.filter(~pl.col(ROW).is_in(no_value.implode())), no_value.to_list()
    return kept, empty


def _drop_rows(typed: dict[str, pl.DataFrame], problems: list[Problem]) -> dict[str, pl.DataFrame]:
    out = {}
    for name, frame in typed.items():
        bad = [r for p in problems if p.table == name for r in p.rows]
        out[name] = frame.filter(~pl.col(ROW).is_in(bad)) if bad else frame
    return out


def summarise(tables: dict[str, pl.DataFrame]) -> list[dict]:
    """Per table: rows, patients, date range (of outcomes: the last follow-up dates) and missing
    values per column (for `validate`)."""
    out = []
    for name, frame in tables.items():
        spec = SPECS[name]
        column = spec.date_column or ("last_followup_date" if name == "outcomes" else None)
        dates = None if column is None else frame[column]
        dates = dates.dt.date() if dates is not None and dates.dtype != pl.Date else dates
        missing = {c: n for c, n in frame.drop(ROW).null_count().row(0, named=True).items() if n}
        out.append(
            {
                "table": name,
                "rows": frame.height,
                "patients": frame["patient_id"].n_unique(),
                "first_date": dates.min() if dates is not None else None,
                "last_date": dates.max() if dates is not None else None,
                "missing": missing,
            }
        )
    return out
