"""The `model` config section: cross-validation, calibration, few-event rules and the learners'
hyper-parameters. `pipeline.config` composes it with the other sections and loads it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from features.config import Strict


class XGBoostParams(Strict):
    n_estimators: int = Field(gt=0)
    learning_rate: float = Field(gt=0, le=1)
    max_depth: int = Field(gt=0, le=12)
    min_child_weight: float = Field(ge=0)
    subsample: float = Field(gt=0, le=1)
    colsample_bytree: float = Field(gt=0, le=1)
    reg_lambda: float = Field(ge=0)
    reg_alpha: float = Field(ge=0)
    early_stopping_rounds: int = Field(gt=0)


class LogisticParams(Strict):
    C: float = Field(gt=0)


class ModelConfig(Strict):
    seed: int = Field(ge=0, le=2**32 - 1)  # NumPy's and scikit-learn's seeds are 32-bit
    n_folds: int = Field(ge=2)
    bootstrap_samples: int = Field(ge=0)
    calibration: Literal["isotonic", "platt"]
    censoring_weights: Literal["km", "model"] = "km"
    censoring_truncate_quantile: float = Field(default=0.99, gt=0, le=1)
    min_events: int = Field(ge=1)
    low_epv_warning: float = Field(ge=0)
    validation_fraction: float = Field(gt=0, lt=1)
    workers: int = Field(default=1, ge=1)
    # cv: cross-validated metrics only. temporal: also hold out the `temporal_share` of patients
    # with the latest intakes, train on the rest and report the final models on them.
    validation: Literal["cv", "temporal"] = "cv"
    temporal_share: float = Field(default=0.2, gt=0, lt=1)
    xgboost: XGBoostParams
    logistic: LogisticParams
