"""The landmark table (training) and the scoring table: the frames docs/ARCHITECTURE.md fixes.

Both are lazy plans the caller collects once. Features are as of the row's date: only records
dated on or before it count (records on that day do). The columns after the keys are exactly
`spec.feature_names`, all Float64; a group the spec uses whose table is absent now gives nulls,
a table whose group the spec does not use is ignored. Nothing is imputed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import polars as pl

from features.asof import DAY, PIDX, patient_index, with_record_day
from features.assessments import add_assessment_features
from features.bdnf import add_bdnf_features
from features.config import FeaturesConfig, LandmarkConfig, Phase
from features.demographic import demographic_features
from features.hrv import add_hrv_features, hrv_recordings
from features.landmarks import LANDMARK_KEYS, Cohort, landmark_rows
from features.spec import FeatureSpec, check_config
from features.tables import SPECS
from features.therapy import PHASE_START, add_therapy_features
from features.time import days_since, last_day, phase_expr, phase_start_expr

SCORING_KEYS = ("patient_id", "as_of", "day", "phase", "exclusion")
EXCLUSIONS = ("not_yet_in_treatment", "relapsed", "past_last_phase")

Tables = Mapping[str, pl.LazyFrame | pl.DataFrame]


def landmark_table(
    tables: Tables,
    phases: Sequence[Phase],
    landmarks: LandmarkConfig,
    features: FeaturesConfig,
    spec: FeatureSpec,
    cohort: Cohort | None = None,
) -> pl.LazyFrame:
    """One row per patient per at-risk landmark: keys, label, censored, IPCW weight, features.

    Needs `patients` and `outcomes`; sorted by patient_id and day. When `tables` hold one shard
    of a cohort, `cohort` holds the whole cohort's censoring curve and end of follow-up
    (`landmarks.cohort_terms`), the only inputs of a row that depend on other patients; see
    `features.shards`.
    """
    check_config(spec, features)
    lazy = _lazy(tables, spec.extra)
    if "outcomes" not in lazy:
        raise ValueError("the outcomes table is required to build the landmark table")
    people = _people(lazy, spec)
    rows = landmark_rows(people, lazy["outcomes"], phases, landmarks, cohort)
    rows = _add_time_varying(rows, lazy, people, phases, features, spec)
    return rows.select(*LANDMARK_KEYS, *spec.feature_names)


def scoring_table(
    tables: Tables,
    phases: Sequence[Phase],
    features: FeaturesConfig,
    spec: FeatureSpec,
    as_of: date,
    only_at_risk: bool = False,
) -> pl.LazyFrame:
    """One row per patient as of `as_of`: keys, exclusion reason (or null) and features.

    Exclusions, first that applies: `not_yet_in_treatment` (intake after as_of), `relapsed`
    (outcomes present and a relapse on or before as_of), `past_last_phase` (day beyond the last
    phase). Follow-up is not known at scoring, so it excludes no one.

    Records dated after `as_of` are dropped before any feature is built (`records_up_to`): no
    feature of a row can see them, so the frame is the same, and the work is that of the records
    the row can see. With `only_at_risk` (batch scoring) an excluded patient's records are dropped
    too, and its feature columns are null: every row is still there, with its exclusion, and an
    at-risk row's features are unchanged (each is built from the patient's own records only).
    """
    check_config(spec, features)
    lazy = records_up_to(_lazy(tables, spec.extra), as_of)
    people = _people(lazy, spec)
    day = days_since(pl.lit(as_of, dtype=pl.Date), pl.col("intake_date"))
    rows = people.with_columns(pl.lit(as_of, dtype=pl.Date).alias("as_of"), day.alias(DAY))
    rows = rows.with_columns(phase_expr(pl.col(DAY), phases).alias("phase"))
    relapsed = pl.lit(False)
    if "outcomes" in lazy:
        relapses = lazy["outcomes"].select("patient_id", "relapse_date")
        rows = rows.join(relapses, on="patient_id", how="left", maintain_order="left")
        relapsed = (pl.col("relapse_date") <= as_of).fill_null(False)
    exclusion = (
        pl.when(pl.col(DAY) < 0)
        .then(pl.lit("not_yet_in_treatment"))
        .when(relapsed)
        .then(pl.lit("relapsed"))
        .when(pl.col(DAY) > last_day(phases))
        .then(pl.lit("past_last_phase"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    rows = rows.with_columns(exclusion.alias("exclusion"))
    if only_at_risk:
        lazy = _of_patients(lazy, rows.filter(pl.col("exclusion").is_null()).select("patient_id"))
    rows = _add_time_varying(rows, lazy, people, phases, features, spec)
    out = rows.select(*SCORING_KEYS, *spec.feature_names)
    if only_at_risk:
        at_risk = pl.col("exclusion").is_null()
        out = out.with_columns(pl.when(at_risk).then(pl.col(n)).alias(n) for n in spec.feature_names)
    return out


def _of_patients(tables: dict[str, pl.LazyFrame], patients: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """The record tables restricted to `patients` (rows in their order: beats stay in file order)."""
    return {
        name: frame.join(patients, on="patient_id", how="semi", maintain_order="left")
        if name in RECORD_DATES
        else frame
        for name, frame in tables.items()
    }


def records_up_to(tables: dict[str, pl.LazyFrame], as_of: date) -> dict[str, pl.LazyFrame]:
    """The record tables without the records dated after `as_of` (by UTC date, as `days_since`
    counts them); `patients` and `outcomes` are kept whole, and so is a record with no date.

    A raw-beat recording (`rr_intervals`) is kept or dropped whole, by the date of its first
    time stamp, the `recorded_at` its summary takes, so no recording loses beats.

    Exact for the scoring table: every feature at day t is built from the records dated on or
    before t, by running totals in time order whose state at t (and at t − window) does not
    depend on later records; "first" values (BDNF, questionnaires, a modality's first attended
    session) are first in time, so never a later one.
    """
    limit = (as_of - date(1970, 1, 1)).days
    out = {}
    for name, frame in tables.items():
        column = RECORD_DATES.get(name)
        if column is None:
            out[name] = frame
            continue
        when = pl.col(column)
        if name == "rr_intervals":
            when = when.min().over("patient_id", "recording_id")
        out[name] = frame.filter((when.dt.epoch("d") <= limit).fill_null(True))
    return out


# the tables whose rows are dated records, and the column dating them (patients and outcomes are not)
RECORD_DATES = {t: s.date_column for t, s in SPECS.items() if s.date_column and not s.one_per_patient}


def _lazy(tables: Tables, extra: Sequence[str]) -> dict[str, pl.LazyFrame]:
    """Lazy frames of the contract's columns, every optional one present (null where the data
    had none), and of the patients' `extra` columns. Nothing else is read: an export's own
    columns, whatever their names (`_pidx`, `day`), never meet the builders' working columns (an
    extra may not be named like them: `demographic.fit_levels`)."""
    if "patients" not in tables:
        raise ValueError("the patients table is required to build features")
    out = {}
    for name, frame in tables.items():
        lazy = frame.lazy()
        if name in SPECS:
            have = lazy.collect_schema()
            columns = [pl.col(c.name) if c.name in have else pl.lit(None, dtype=c.dtype).alias(c.name)
                       for c in SPECS[name].columns]
            if name == "patients":
                columns += [pl.col(c) for c in extra if c in have]
            lazy = lazy.select(columns)
        out[name] = lazy
    return out


def _people(tables: dict[str, pl.LazyFrame], spec: FeatureSpec) -> pl.LazyFrame:
    """Patients keyed by `_pidx`, with the demographic columns when the spec uses them."""
    people = patient_index(tables["patients"])
    keep = [PIDX, "patient_id", "intake_date"]
    if "demographic" in spec.groups_used:
        people = demographic_features(people, spec.categorical_levels, spec.extra, spec.extra_numeric)
        keep += [n for n in spec.feature_names if n in people.collect_schema()]
    return people.select(keep)


def _add_time_varying(
    rows: pl.LazyFrame,
    tables: dict[str, pl.LazyFrame],
    people: pl.LazyFrame,
    phases: Sequence[Phase],
    features: FeaturesConfig,
    spec: FeatureSpec,
) -> pl.LazyFrame:
    """`rows` (sorted by patient, day) with the BDNF, HRV, therapy and assessment columns."""
    used = set(spec.groups_used)

    def records(table: str, date_column: str) -> pl.LazyFrame | None:
        frame = tables.get(table)
        return None if frame is None else with_record_day(frame, people, date_column)

    if "bdnf" in used:
        rows = add_bdnf_features(rows, records("bdnf", "sample_date"), features.bdnf)
    if "hrv" in used:
        recordings = hrv_recordings(tables.get("hrv"), tables.get("rr_intervals"), features.hrv)
        dated = None if recordings is None else with_record_day(recordings, people, "recorded_at")
        rows = add_hrv_features(rows, dated, spec.hrv_metrics, features.hrv)
    if "therapy" in used:
        rows = rows.with_columns(phase_start_expr(pl.col(DAY), phases).alias(PHASE_START))
        sessions = records("therapy_sessions", "session_date")
        rows = add_therapy_features(rows, sessions, features.therapy)
    if "assessments" in used:
        tests = records("assessments", "assessed_on")
        rows = add_assessment_features(rows, tests, spec.instruments)
    return rows
