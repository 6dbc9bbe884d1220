"""Censoring weights for training, and the per-phase arrays the models are fitted on.

The landmark table carries Kaplan–Meier IPCW weights (features/landmarks.py). With
`model.censoring_weights: model` training uses the censoring-model weights of
models/censoring.py instead; either way both versions are computed and reported side by side
(the weighted observed event rate per phase under each, and on simulated data the mean true
risk of the same rows), so a reader can see how much the choice matters.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from features.spec import FeatureSpec
from models.censoring import censoring_probability, model_weights, weighted_event_rate
from models.config import ModelConfig
from models.fits import PhaseData, with_day

KM, MODEL = "ipcw_weight_km", "ipcw_weight_model"


def with_censoring_weights(
    landmarks: pl.DataFrame, outcomes: pl.DataFrame, spec: FeatureSpec, cfg: ModelConfig, horizon: int
) -> pl.DataFrame:
    """The landmark table with `ipcw_weight_km`, `ipcw_weight_model`, and `ipcw_weight` set to
    the configured one (null on censored rows, as before)."""
    if landmarks.height == 0:
        return landmarks.with_columns(pl.col("ipcw_weight").alias(KM), pl.col("ipcw_weight").alias(MODEL))
    X = with_day(landmarks.select(spec.feature_names).to_numpy().astype(np.float64), landmarks["day"].to_numpy())
    label = landmarks["label"].cast(pl.Float64).to_numpy()
    c = censoring_probability(X, landmarks["censored"].to_numpy(), label, cfg.logistic, cfg.seed)
    relapse = outcomes.select("patient_id", "relapse_date")
    seen = (
        landmarks.select("patient_id", "landmark_date", "label")
        .join(relapse, on="patient_id", how="left", maintain_order="left")
        .select(
            pl.when(pl.col("label") == 1)
            .then((pl.col("relapse_date") - pl.col("landmark_date")).dt.total_days())
            .otherwise(horizon)
        )
        .to_series()
        .to_numpy()
    )
    uncensored = ~landmarks["censored"].to_numpy()
    weights = np.full(landmarks.height, np.nan)
    weights[uncensored] = model_weights(c[uncensored], seen[uncensored], horizon, cfg.censoring_truncate_quantile)
    chosen = MODEL if cfg.censoring_weights == "model" else KM
    return landmarks.with_columns(
        pl.col("ipcw_weight").alias(KM), pl.Series(MODEL, weights).fill_nan(None)
    ).with_columns(pl.col(chosen).alias("ipcw_weight"))


def phase_data(landmarks: pl.DataFrame, spec: FeatureSpec, phase: str) -> tuple[pl.DataFrame, PhaseData]:
    """The phase's uncensored rows and their arrays (features, labels, weights, ids, day)."""
    part = landmarks.filter((pl.col("phase") == phase) & ~pl.col("censored"))
    return part, PhaseData(
        X=part.select(spec.feature_names).to_numpy().astype(np.float64).reshape(part.height, len(spec.feature_names)),
        y=part["label"].to_numpy().astype(np.float64),
        w=part["ipcw_weight"].to_numpy().astype(np.float64),
        groups=part["patient_id"].to_numpy(),
        day=part["day"].to_numpy().astype(np.float64),
    )


def censoring_sensitivity(landmarks: pl.DataFrame, truth: pl.DataFrame | None) -> dict[str, float]:
    """Per phase: the weighted observed event rate under KM and under censoring-model weights,
    and, with the simulator's truth, the mean true risk of the same (uncensored) rows."""
    rows = landmarks.filter(~pl.col("censored"))
    if truth is not None:
        rows = rows.join(truth.select("patient_id", "landmark_date", "true_risk_30d"),
                         on=["patient_id", "landmark_date"], how="left")
    out = {}
    for (phase,), part in rows.group_by("phase", maintain_order=True):
        y = part["label"].to_numpy().astype(np.float64)
        out[f"event_rate_km_{phase}"] = weighted_event_rate(y, part[KM].to_numpy())
        out[f"event_rate_censoring_model_{phase}"] = weighted_event_rate(y, part[MODEL].to_numpy())
        if truth is not None and part["true_risk_30d"].null_count() < part.height:
            out[f"true_risk_mean_{phase}"] = float(part["true_risk_30d"].mean())
    return out
