"""Therapy engagement as of each landmark.

Modalities: CBT, MBI and EMDR each on their own (the review's three mechanisms); CM, MI,
group, family and other pooled as `other`. A session dated on or before the landmark day t
counts as scheduled; `attended` says whether it took place. The window is the last
`window_days` days, t − window_days + 1 … t. Columns:
- `therapy_sessions_{scheduled,attended}` and `therapy_attendance_rate`, since intake;
- the same in the window (`_window`), the rate null when nothing was scheduled;
- `therapy_<modality>_{scheduled,attended}[_window]` per modality group;
- `therapy_days_since_attended`: t minus the last attended session's day (null if none yet);
- `therapy_<cbt|mbi|emdr>_started_in_phase`: 1 when the modality's first attended session falls
  in the current phase (on or after the phase's first day, on or before t), else 0 — the
  review's phase alignment;
- `therapy_minutes_attended`: total duration of attended sessions; null when any attended
  session has no duration (an unknown is not taken as zero).
"""

from __future__ import annotations

import polars as pl

from features.asof import (
    DAY,
    PIDX,
    as_of,
    drop_prefixed,
    in_window,
    running_totals,
    safe_ratio,
    total,
)
from features.config import TherapyConfig

MODALITY_GROUPS: dict[str, tuple[str, ...]] = {
    "cbt": ("CBT",),
    "mbi": ("MBI",),
    "emdr": ("EMDR",),
    "other": ("CM", "MI", "group", "family", "other"),
}
STARTED = ("cbt", "mbi", "emdr")
PHASE_START = "_phase_start"
_NOW, _THEN = "_now_", "_then_"

FEATURES: tuple[str, ...] = (
    "therapy_sessions_scheduled",
    "therapy_sessions_attended",
    "therapy_attendance_rate",
    "therapy_sessions_scheduled_window",
    "therapy_sessions_attended_window",
    "therapy_attendance_rate_window",
    *(
        f"therapy_{g}_{s}"
        for g in MODALITY_GROUPS
        for s in ("scheduled", "attended", "scheduled_window", "attended_window")
    ),
    "therapy_days_since_attended",
    *(f"therapy_{g}_started_in_phase" for g in STARTED),
    "therapy_minutes_attended",
)


def therapy_state(sessions: pl.LazyFrame) -> pl.LazyFrame:
    """One row per patient and session day: running counts per modality group and minutes."""
    attended = pl.col("attended")
    aggregates = [
        (attended & pl.col("duration_min").is_null()).sum().cast(pl.Int64).alias("undated_minutes"),
        pl.col("duration_min").filter(attended).sum().alias("minutes"),
        attended.any().alias("any_attended"),
    ]
    for group, modalities in MODALITY_GROUPS.items():
        mine = pl.col("modality").is_in(modalities)
        aggregates += [
            mine.sum().cast(pl.Int64).alias(f"{group}_scheduled"),
            (mine & attended).sum().cast(pl.Int64).alias(f"{group}_attended"),
        ]
    daily = (
        sessions.group_by(PIDX, DAY)
        .agg(aggregates)
        .with_columns(pl.when(pl.col("any_attended")).then(pl.col(DAY)).alias("last_attended_day"))
    )
    totals = [
        "undated_minutes",
        "minutes",
        *(f"{g}_{s}" for g in MODALITY_GROUPS for s in ("scheduled", "attended")),
    ]
    state = running_totals(daily, totals, latest=["last_attended_day"])
    first_attended = [
        pl.when(pl.col(f"{g}_attended") > 0)
        .then(pl.when(pl.col(f"{g}_attended") > 0).then(pl.col(DAY)).min().over(PIDX))
        .alias(f"{g}_first_attended")
        for g in STARTED
    ]
    return state.with_columns(first_attended)


def add_therapy_features(landmarks: pl.LazyFrame, sessions: pl.LazyFrame | None, cfg: TherapyConfig) -> pl.LazyFrame:
    """`landmarks` (sorted by `_pidx`, `day`, with `_phase_start`) plus the therapy columns."""
    if sessions is None:
        return landmarks.with_columns(pl.lit(None, dtype=pl.Float64).alias(name) for name in FEATURES)
    counts = [f"{g}_{s}" for g in MODALITY_GROUPS for s in ("scheduled", "attended")]
    state = therapy_state(sessions)
    now_cols = [
        *counts,
        "undated_minutes",
        "minutes",
        "last_attended_day",
        *(f"{g}_first_attended" for g in STARTED),
    ]
    frame = as_of(landmarks, state, now_cols, prefix=_NOW)
    frame = as_of(frame, state, counts, prefix=_THEN, lag_days=cfg.window_days)

    def overall(kind: str) -> pl.Expr:
        return pl.sum_horizontal(total(_NOW, f"{g}_{kind}") for g in MODALITY_GROUPS)

    def windowed(kind: str) -> pl.Expr:
        return pl.sum_horizontal(in_window(f"{g}_{kind}", _NOW, _THEN) for g in MODALITY_GROUPS)

    exprs = [
        overall("scheduled").alias("therapy_sessions_scheduled"),
        overall("attended").alias("therapy_sessions_attended"),
        safe_ratio(overall("attended"), overall("scheduled")).alias("therapy_attendance_rate"),
        windowed("scheduled").alias("therapy_sessions_scheduled_window"),
        windowed("attended").alias("therapy_sessions_attended_window"),
        safe_ratio(windowed("attended"), windowed("scheduled")).alias("therapy_attendance_rate_window"),
    ]
    for g in MODALITY_GROUPS:
        exprs += [
            total(_NOW, f"{g}_scheduled").alias(f"therapy_{g}_scheduled"),
            total(_NOW, f"{g}_attended").alias(f"therapy_{g}_attended"),
            in_window(f"{g}_scheduled", _NOW, _THEN).alias(f"therapy_{g}_scheduled_window"),
            in_window(f"{g}_attended", _NOW, _THEN).alias(f"therapy_{g}_attended_window"),
        ]
    exprs.append((pl.col(DAY) - pl.col(_NOW + "last_attended_day")).alias("therapy_days_since_attended"))
    for g in STARTED:
        first = pl.col(_NOW + f"{g}_first_attended")
        started = (first.is_not_null() & (first >= pl.col(PHASE_START))).fill_null(False)
        exprs.append(pl.when(pl.col(PHASE_START).is_not_null()).then(started).alias(f"therapy_{g}_started_in_phase"))
    exprs.append(
        pl.when(total(_NOW, "undated_minutes") == 0).then(total(_NOW, "minutes")).alias("therapy_minutes_attended")
    )
    frame = frame.with_columns(exprs).with_columns(pl.col(FEATURES).cast(pl.Float64))
    return drop_prefixed(frame, (_NOW, _THEN))
