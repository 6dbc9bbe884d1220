"""Which feature groups a model was trained with are missing from the data it is asked to score.

A group is missing when none of its tables is present with a value in its measurement columns
(the table is absent, empty, or those columns are all null), e.g. scoring without the `bdnf`
table for a model trained with it. Its features are then null for every patient: the model still
scores (it was trained to handle unknowns), but the risk may differ from what full data would
give, so scoring warns, the manifest lists the group, and reasons never cite its features.

`hrv_beats` is reported apart from `hrv`: a model trained with the raw beats (`rr_intervals`,
the only source of pNN50) scored on summaries alone loses the beat-only metric.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from features import assessments, demographic, hrv
from features.naming import matching
from features.reasons import BEAT_SOURCE
from features.spec import FeatureSpec
from features.tables import has_value

# per group: (table, columns of which one must hold a value)
SOURCES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "bdnf": (("bdnf", ("bdnf_ng_ml",)),),
    "hrv": (("hrv", tuple(hrv.METRICS[m] for m in hrv.SUMMARY_METRICS)), ("rr_intervals", ("rr_ms",))),
    "therapy": (("therapy_sessions", ("attended",)),),
    "assessments": (("assessments", ("score",)),),
    BEAT_SOURCE: (("rr_intervals", ("rr_ms",)),),
}
CHECKABLE = tuple(SOURCES)
# the features each optional measurement column (`tables.OPTIONAL_MEASUREMENTS`) is read into, and
# the other source that gives the same values (the beats give the heart rate)
MEASURED_FEATURES: dict[str, tuple[str, ...]] = {
    "hrv.lf_hf": hrv.metric_features("lf_hf"),
    "hrv.mean_hr_bpm": hrv.metric_features("mean_hr"),
    "therapy_sessions.duration_min": ("therapy_minutes_attended",),
}
MEASURED_ELSEWHERE: dict[str, tuple[str, tuple[str, ...]]] = {
    "hrv.mean_hr_bpm": ("rr_intervals", ("rr_ms",)),
}

Tables = Mapping[str, pl.LazyFrame | pl.DataFrame]


def expected_groups(spec: FeatureSpec) -> tuple[str, ...]:
    """The groups (and `hrv_beats`) whose data the model was trained with."""
    groups = [g for g in spec.groups_used if g in SOURCES]
    if "hrv" in groups and set(spec.hrv_metrics) - set(hrv.SUMMARY_METRICS):
        groups.append(BEAT_SOURCE)
    return tuple(groups)


def missing_groups(spec: FeatureSpec, tables: Tables) -> dict[str, str]:
    """Group → why it is missing, for each group the model expects that the tables cannot feed."""
    out = {}
    for group in expected_groups(spec):
        reasons = [_why_empty(tables.get(table), table, columns) for table, columns in SOURCES[group]]
        if all(reasons):
            out[group] = "; ".join(r for r in reasons if r)
    return out


def unread_inputs(spec: FeatureSpec, tables: Tables) -> dict[str, tuple[str, tuple[str, ...]]]:
    """What the model reads that `tables` lack, short of a whole missing group: input → (why,
    the feature columns it leaves unknown for every patient). Two kinds:
    - `patients.<column>`: an optional column that held values in training, absent or empty here
      (a header spelled `Deprivation_Decile`, a dropped column);
    - `assessments.instrument <name>`: an instrument of the model that no assessment here names
      (matched by `naming.text_key`), with the instruments here that the model does not know;
    - `<table>.<column>`: an optional measurement column of a record table here (`hrv.lf_hf`,
      `therapy_sessions.duration_min`) that held values in training, absent or empty here; the
      heart rate counts as read while beat recordings give it.
    Scoring warns of each, the manifest lists them, and reasons never cite their features."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    if "demographic" in spec.groups_used and spec.patient_columns:
        patients = tables["patients"].lazy()
        schema = patients.collect_schema()
        have = [c for c in spec.patient_columns if c in schema]  # raw values: blank text counts as none
        counts = {}
        if have:
            counts = patients.select(has_value(c, schema[c]).sum() for c in have).collect().row(0, named=True)
        sources = demographic.feature_sources(spec.categorical_levels, spec.extra, spec.extra_numeric)
        for column in spec.patient_columns:
            why = "column absent" if column not in counts else "no value in any row" if not counts[column] else ""
            if why:
                out[f"patients.{column}"] = (why, tuple(sources[column]))
    if "assessments" in spec.groups_used and spec.instruments:
        out |= _unread_instruments(spec.instruments, tables.get("assessments"))
    for name in spec.measured_columns:
        if (why := _unread_measurement(name, tables)) and (
                features := tuple(f for f in MEASURED_FEATURES[name] if f in spec.feature_names)):
            out[name] = (why, features)
    return out


def _unread_measurement(name: str, tables: Tables) -> str:
    """Why the optional measurement column `name` ("table.column") gives no value here, or ''
    (also when its table has no records: a missing group, not a column left out)."""
    table, column = name.split(".")
    frame, elsewhere = tables.get(table), MEASURED_ELSEWHERE.get(name)
    if frame is None or (elsewhere is not None and not _why_empty(tables.get(elsewhere[0]), *elsewhere)):
        return ""
    lazy = frame.lazy()
    schema = lazy.collect_schema()
    if column not in schema:
        return "column absent" if lazy.select(pl.len()).collect().item() else ""
    rows, values = lazy.select(pl.len(), has_value(column, schema[column]).sum()).collect().row(0)  # raw: blank text
    return "no value in any row" if rows and not values else ""


def _unread_instruments(
    instruments: tuple[str, ...], frame: pl.LazyFrame | pl.DataFrame | None
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The model's instruments no assessment in `frame` names (see `unread_inputs`); nothing when
    the table, its `instrument` column or its scores are missing (a missing group, or the
    contract's error)."""
    if frame is None or "instrument" not in frame.lazy().collect_schema():
        return {}
    if _why_empty(frame, "assessments", ("score",)):
        return {}
    known, key = matching(instruments)
    spellings = frame.lazy().group_by("instrument").len()  # each spelling keyed once, not each row
    here = (spellings.group_by(key(pl.col("instrument")).alias("key"))
            .agg(pl.col("instrument").cast(pl.String).min(), pl.col("len").sum())
            .sort("len", "key", descending=[True, False]).collect())
    unknown = here.filter(~pl.col("key").is_in(known) & pl.col("key").is_not_null())
    others = ", ".join(f"{r['instrument']!r} ({r['len']:,} rows)" for r in unknown.head(3).iter_rows(named=True))
    why = "no assessment names it" + (f"; instruments here the model does not know: {others}" if others else "")
    seen, names, per = set(here["key"].drop_nulls()), assessments.feature_names(instruments), len(assessments.STATS)
    return {f"assessments.instrument {instrument}": (why, tuple(names[per * k:per * (k + 1)]))
            for k, (instrument, target) in enumerate(zip(instruments, known, strict=True)) if target not in seen}


def _why_empty(frame: pl.LazyFrame | pl.DataFrame | None, table: str, columns: tuple[str, ...]) -> str:
    """'' when the table has a value in one of `columns`, else the reason it has none."""
    if frame is None:
        return f"table {table} absent"
    lazy = frame.lazy()
    present = [c for c in columns if c in lazy.collect_schema()]
    if not present:
        return f"table {table} has none of {', '.join(columns)}"
    rows, *counts = lazy.select(pl.len(), pl.col(present).count()).collect().row(0)
    if not rows:
        return f"table {table} has no rows"
    return "" if any(counts) else f"table {table}: {', '.join(present)} all empty"
