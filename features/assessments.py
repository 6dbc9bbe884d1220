"""Questionnaire scores (PHQ-9, GAD-7, PCL-5, craving VAS, …) as of each landmark.

Instruments are those in the training data (fixed in the FeatureSpec; one seen only at
scoring is ignored), each matched by its key (`naming.text_key`: "phq9 " is PHQ9). Per
instrument i, with the assessments dated on or before day t:
- `assess_<i>_latest`: the score on the latest day it was taken (the mean of that day's scores);
- `assess_<i>_age_days`: t minus that day;
- `assess_<i>_change_since_first`: latest minus the score on the first day it was taken.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from features.asof import DAY, PIDX, as_of, drop_prefixed, running_totals
from features.naming import level_columns, matching

STATS = ("latest", "age_days", "change_since_first")
_NOW = "_now_"
_KEY = "_instrument_key"


def instrument_prefixes(instruments: Sequence[str]) -> list[str]:
    """`assess_<slug>` per instrument, unique and in instrument order."""
    return level_columns("assess", instruments)


def feature_names(instruments: Sequence[str]) -> list[str]:
    return [f"{prefix}_{stat}" for prefix in instrument_prefixes(instruments) for stat in STATS]


def assessment_state(assessments: pl.LazyFrame, instruments: Sequence[str]) -> pl.LazyFrame:
    """One row per patient and day: per instrument, the latest and first day mean score so far."""
    aggregates, latest, derived = [], [], []
    targets, key = matching(instruments)
    for k, target in enumerate(targets):
        mine = pl.col(_KEY) == target
        aggregates.append(pl.col("score").filter(mine).mean().alias(f"i{k}_value"))
        derived.append(pl.when(pl.col(f"i{k}_value").is_not_null()).then(pl.col(DAY)).alias(f"i{k}_day"))
        latest += [f"i{k}_value", f"i{k}_day"]
    # each spelling keyed once, not each row: an instrument matches however it is written
    spellings = assessments.select(pl.col("instrument").unique()).with_columns(key(pl.col("instrument")).alias(_KEY))
    known = assessments.join(spellings.filter(pl.col(_KEY).is_in(targets)), on="instrument", maintain_order="left")
    daily = known.group_by(PIDX, DAY).agg(aggregates).with_columns(derived)
    firsts = [
        pl.col(f"i{k}_value").drop_nulls().first().over(PIDX).alias(f"i{k}_first") for k in range(len(instruments))
    ]
    state = daily.sort(PIDX, DAY).with_columns(firsts)
    state = running_totals(state, (), latest=latest)
    # the first score is known only once the instrument has been taken
    return state.with_columns(
        pl.when(pl.col(f"i{k}_day").is_not_null()).then(pl.col(f"i{k}_first")).alias(f"i{k}_first")
        for k in range(len(instruments))
    )


def add_assessment_features(
    landmarks: pl.LazyFrame, assessments: pl.LazyFrame | None, instruments: Sequence[str]
) -> pl.LazyFrame:
    """`landmarks` (sorted by `_pidx`, `day`) plus the per-instrument columns."""
    names = feature_names(instruments)
    if assessments is None or not instruments:
        return landmarks.with_columns(pl.lit(None, dtype=pl.Float64).alias(n) for n in names)
    state = assessment_state(assessments, instruments)
    columns = [f"i{k}_{s}" for k in range(len(instruments)) for s in ("value", "day", "first")]
    frame = as_of(landmarks, state, columns, prefix=_NOW)
    exprs = []
    for k, prefix in enumerate(instrument_prefixes(instruments)):
        value, first = pl.col(f"{_NOW}i{k}_value"), pl.col(f"{_NOW}i{k}_first")
        exprs += [
            value.alias(f"{prefix}_latest"),
            (pl.col(DAY) - pl.col(f"{_NOW}i{k}_day")).cast(pl.Float64).alias(f"{prefix}_age_days"),
            (value - first).alias(f"{prefix}_change_since_first"),
        ]
    return drop_prefixed(frame.with_columns(exprs), (_NOW,))
