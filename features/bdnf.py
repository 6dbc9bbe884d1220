"""Serum BDNF (neuroplasticity marker; low and falling = worse) as of each landmark.

With the samples dated on or before the landmark day t:
- `bdnf_latest`: the value on the latest sample day (the mean when that day has several
  samples), `bdnf_latest_age_days`: t minus that day;
- `bdnf_first`: the value on the first sample day (the intake value), and the change since it,
  absolute and in % of it;
- `bdnf_slope_30d`: least-squares slope of value on day over the samples dated
  t − slope_window_days + 1 … t, in ng/mL per 30 days (null with fewer than two sample days);
- `bdnf_n_samples`: how many samples (0 when none yet).
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
    slope_per_30_days,
    total,
)
from features.config import BdnfConfig

FEATURES = (
    "bdnf_latest",
    "bdnf_latest_age_days",
    "bdnf_first",
    "bdnf_change_since_first",
    "bdnf_change_since_first_pct",
    "bdnf_slope_30d",
    "bdnf_n_samples",
)
_SUMS = ("n", "sx", "sxx", "sy", "sxy")
_NOW, _THEN = "_now_", "_then_"


def bdnf_state(samples: pl.LazyFrame) -> pl.LazyFrame:
    """One row per patient and sample day: running sums and that day's (mean) value."""
    daily = samples.group_by(PIDX, DAY).agg(pl.len().cast(pl.Int64).alias("n"), pl.col("bdnf_ng_ml").sum().alias("sy"))
    daily = daily.with_columns(
        (pl.col("n") * pl.col(DAY)).alias("sx"),
        (pl.col("n") * pl.col(DAY) * pl.col(DAY)).alias("sxx"),
        (pl.col("sy") * pl.col(DAY)).alias("sxy"),
        (pl.col("sy") / pl.col("n")).alias("value"),
        pl.col(DAY).alias("last_day"),
    )
    state = running_totals(daily, _SUMS)
    return state.with_columns(pl.col("value").first().over(PIDX).alias("first"))


def add_bdnf_features(landmarks: pl.LazyFrame, samples: pl.LazyFrame | None, cfg: BdnfConfig) -> pl.LazyFrame:
    """`landmarks` (sorted by `_pidx`, `day`) with the BDNF columns; all null without samples."""
    if samples is None:
        return landmarks.with_columns(pl.lit(None, dtype=pl.Float64).alias(name) for name in FEATURES)
    state = bdnf_state(samples)
    frame = as_of(landmarks, state, [*_SUMS, "value", "last_day", "first"], prefix=_NOW)
    frame = as_of(frame, state, _SUMS, prefix=_THEN, lag_days=cfg.slope_window_days)
    latest, first = pl.col(_NOW + "value"), pl.col(_NOW + "first")
    change = latest - first
    frame = frame.with_columns(
        latest.alias("bdnf_latest"),
        (pl.col(DAY) - pl.col(_NOW + "last_day")).cast(pl.Float64).alias("bdnf_latest_age_days"),
        first.alias("bdnf_first"),
        change.alias("bdnf_change_since_first"),
        (100.0 * safe_ratio(change, first)).alias("bdnf_change_since_first_pct"),
        slope_per_30_days(*(in_window(c, _NOW, _THEN) for c in ("n", "sx", "sy", "sxx", "sxy"))).alias(
            "bdnf_slope_30d"
        ),
        total(_NOW, "n").cast(pl.Float64).alias("bdnf_n_samples"),
    )
    return drop_prefixed(frame, (_NOW, _THEN))
