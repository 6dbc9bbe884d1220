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

from features import hrv
from features.reasons import BEAT_SOURCE
from features.spec import FeatureSpec

# per group: (table, columns of which one must hold a value)
SOURCES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "bdnf": (("bdnf", ("bdnf_ng_ml",)),),
    "hrv": (("hrv", tuple(hrv.METRICS[m] for m in hrv.SUMMARY_METRICS)), ("rr_intervals", ("rr_ms",))),
    "therapy": (("therapy_sessions", ("attended",)),),
    "assessments": (("assessments", ("score",)),),
    BEAT_SOURCE: (("rr_intervals", ("rr_ms",)),),
}
CHECKABLE = tuple(SOURCES)

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


def _why_empty(frame: pl.LazyFrame | pl.DataFrame | None, table: str, columns: tuple[str, ...]) -> str:
    """'' when the table has a value in one of `columns`, else the reason it has none."""
    if frame is None:
        return f"table {table} absent"
    lazy = frame.lazy()
    present = [c for c in columns if c in lazy.collect_schema()]
    if not present:
        return f"table {table} has none of {', '.join(columns)}"
    counts = lazy.select(pl.col(present).count()).collect().row(0)
    return "" if any(counts) else f"table {table}: {', '.join(present)} all empty"
