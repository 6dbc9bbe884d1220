"""Heart-rate variability (autonomic / stress regulation; low RMSSD = worse) as of each landmark.

Recordings are the `hrv` summaries plus, when `rr_intervals` is present, one summary per raw
recording from `rr_recording_summaries` (recordings with fewer than two kept beats are left out).
A recording's day is the UTC date of `recorded_at`. For each metric m of the spec
(rmssd, sdnn, lf_hf, mean_hr, pnn50 — those the training data had), with the recordings dated
on or before the landmark day t:
- `hrv_<m>_latest`: m of the latest recording that has it (the mean of recordings sharing that
  exact time stamp);
- `hrv_<m>_window_mean`, `hrv_<m>_window_slope_30d`: mean and least-squares slope (per 30 days)
  over the recordings dated t − window_days + 1 … t;
- `hrv_<m>_change_from_baseline` (and `_pct`): window mean minus the patient's baseline, the mean
  of the recordings from days 0 … baseline_days − 1 that are dated on or before t;
and for all recordings:
- `hrv_latest_age_days`: t minus the day of the latest recording;
- `hrv_recordings_per_week`: recordings in the window × 7 / the window's length in treatment,
  min(window_days, t + 1) (wear adherence; 0 when none).
"""

from __future__ import annotations

from collections.abc import Sequence

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
)
from features.config import HrvConfig
from features.hrv_beats import artefact_mask, rr_recording_summaries

# metric name in feature columns -> recording column
METRICS: dict[str, str] = {
    "rmssd": "rmssd_ms",
    "sdnn": "sdnn_ms",
    "lf_hf": "lf_hf",
    "mean_hr": "mean_hr_bpm",
    "pnn50": "pnn50",
}
SUMMARY_METRICS = ("rmssd", "sdnn", "lf_hf", "mean_hr")
BEAT_METRICS = ("rmssd", "sdnn", "mean_hr", "pnn50")
METRIC_FEATURES = (
    "latest",
    "window_mean",
    "window_slope_30d",
    "change_from_baseline",
    "change_from_baseline_pct",
)
COMMON_FEATURES = ("hrv_latest_age_days", "hrv_recordings_per_week")
_NOW, _THEN, _BASE = "_now_", "_then_", "_base_"
_SUMS = ("n", "sx", "sxx", "sy", "sxy")

__all__ = [
    "artefact_mask",
    "rr_recording_summaries",
    "hrv_recordings",
    "add_hrv_features",
    "feature_names",
]


def feature_names(metrics: Sequence[str]) -> list[str]:
    """The HRV columns for the spec's metrics, in output order."""
    return [name for m in metrics for name in metric_features(m)] + list(COMMON_FEATURES)


def metric_features(metric: str) -> tuple[str, ...]:
    """The columns built from one metric's values."""
    return tuple(f"hrv_{metric}_{stat}" for stat in METRIC_FEATURES)


def hrv_recordings(hrv: pl.LazyFrame | None, rr: pl.LazyFrame | None, cfg: HrvConfig) -> pl.LazyFrame | None:
    """Summary recordings and raw-beat recordings as one frame of recordings (None if neither)."""
    columns = ["patient_id", "recorded_at", *METRICS.values()]
    frames = []
    if hrv is not None:
        frames.append(hrv.with_columns(pl.lit(None, dtype=pl.Float64).alias("pnn50")).select(columns))
    if rr is not None:
        beats = rr_recording_summaries(rr, cfg).filter(pl.col("n_kept") >= 2)
        frames.append(beats.with_columns(pl.lit(None, dtype=pl.Float64).alias("lf_hf")).select(columns))
    if not frames:
        return None
    return pl.concat([f.with_columns(pl.col(c).cast(pl.Float64) for c in METRICS.values()) for f in frames])


def hrv_state(recordings: pl.LazyFrame, metrics: Sequence[str]) -> pl.LazyFrame:
    """One row per patient and recording time: running sums, forward-filled latest values.

    Recordings sharing one exact time stamp are one instant: their latest value is their mean.
    """
    aggregates = [pl.len().cast(pl.Int64).alias("n_rec")]
    for m in metrics:
        value = pl.col(METRICS[m])
        aggregates += [value.count().cast(pl.Int64).alias(f"{m}_n"), value.sum().alias(f"{m}_sy")]
    instants = recordings.group_by(PIDX, DAY, "recorded_at").agg(aggregates)
    derived = [pl.col(DAY).alias("last_day")]
    for m in metrics:
        n, sy = pl.col(f"{m}_n"), pl.col(f"{m}_sy")
        derived += [
            (n * pl.col(DAY)).alias(f"{m}_sx"),
            (n * pl.col(DAY) * pl.col(DAY)).alias(f"{m}_sxx"),
            (sy * pl.col(DAY)).alias(f"{m}_sxy"),
            pl.when(n > 0).then(sy / n).alias(f"{m}_latest"),
        ]
    totals = ["n_rec", *(f"{m}_{s}" for m in metrics for s in _SUMS)]
    return running_totals(
        instants.with_columns(derived),
        totals,
        latest=[f"{m}_latest" for m in metrics],
        order=["recorded_at"],
    )


def baseline_state(recordings: pl.LazyFrame, metrics: Sequence[str], baseline_days: int) -> pl.LazyFrame:
    """Running count and sum per metric of the recordings on days 0 … baseline_days − 1."""
    aggregates = []
    for m in metrics:
        value = pl.col(METRICS[m])
        aggregates += [value.count().cast(pl.Int64).alias(f"{m}_bn"), value.sum().alias(f"{m}_bsy")]
    daily = recordings.filter(pl.col(DAY) < baseline_days).group_by(PIDX, DAY).agg(aggregates)
    return running_totals(daily, [f"{m}_{s}" for m in metrics for s in ("bn", "bsy")])


def add_hrv_features(
    landmarks: pl.LazyFrame, recordings: pl.LazyFrame | None, metrics: Sequence[str], cfg: HrvConfig
) -> pl.LazyFrame:
    """`landmarks` (sorted by `_pidx`, `day`) with the HRV columns; all null without recordings."""
    names = feature_names(metrics)
    if recordings is None:
        return landmarks.with_columns(pl.lit(None, dtype=pl.Float64).alias(n) for n in names)
    recordings = recordings.cache()  # read by the running state and the baseline: build once
    state = hrv_state(recordings, metrics)
    sums = ["n_rec", *(f"{m}_{s}" for m in metrics for s in _SUMS)]
    frame = as_of(landmarks, state, [*sums, "last_day", *(f"{m}_latest" for m in metrics)], prefix=_NOW)
    frame = as_of(frame, state, sums, prefix=_THEN, lag_days=cfg.window_days)
    baseline = baseline_state(recordings, metrics, cfg.baseline_days)
    frame = as_of(frame, baseline, [f"{m}_{s}" for m in metrics for s in ("bn", "bsy")], prefix=_BASE)
    exprs = []
    for m in metrics:
        exprs += _metric_features(m)
    days_in_window = pl.min_horizontal(pl.lit(cfg.window_days, dtype=pl.Int64), pl.col(DAY) + 1)
    exprs += [
        (pl.col(DAY) - pl.col(_NOW + "last_day")).cast(pl.Float64).alias("hrv_latest_age_days"),
        pl.when(days_in_window >= 1)
        .then(7.0 * in_window("n_rec", _NOW, _THEN) / days_in_window)
        .alias("hrv_recordings_per_week"),
    ]
    return drop_prefixed(frame.with_columns(exprs), (_NOW, _THEN, _BASE))


def _metric_features(m: str) -> list[pl.Expr]:
    def window(s: str) -> pl.Expr:
        return in_window(f"{m}_{s}", _NOW, _THEN)

    window_mean = safe_ratio(window("sy"), window("n"))
    baseline = safe_ratio(pl.col(_BASE + f"{m}_bsy"), pl.col(_BASE + f"{m}_bn"))
    change = window_mean - baseline
    return [
        pl.col(_NOW + f"{m}_latest").alias(f"hrv_{m}_latest"),
        window_mean.alias(f"hrv_{m}_window_mean"),
        slope_per_30_days(*(window(s) for s in ("n", "sx", "sy", "sxx", "sxy"))).alias(f"hrv_{m}_window_slope_30d"),
        change.alias(f"hrv_{m}_change_from_baseline"),
        (100.0 * safe_ratio(change, baseline)).alias(f"hrv_{m}_change_from_baseline_pct"),
    ]
