"""What fitting the recovery phases takes and gives (`models.training` fits them): a phase's rows
(`PhaseData`), what was learned and measured for it (`PhaseFit`, with its status), all phases
with the shared booster (`TrainedPhases`), and the booster's input columns (`with_day`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xgboost

from models.calibration import Calibrator

Metric = tuple[float, float, float]
# Not reported for a phase whose calibration gives every patient one risk: that model ranks no one,
# and the out-of-fold figures would describe the folds' own calibrators (a rate each, anti-correlated
# with the held-out fold's rate: an AUROC of 0.35 and a negative slope, from nothing but noise).
UNRANKED = ("auroc", "auprc", "calibration_slope")
STATUSES = ("phase_model", "shared", "constant", "no_data")


@dataclass
class PhaseData:
    """One phase's uncensored landmark rows: features, 0/1 labels, IPCW weights, patient ids
    and the landmark day (days since intake)."""

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray
    groups: np.ndarray
    day: np.ndarray


@dataclass
class PhaseFit:
    """Everything learned and measured for one phase.

    `n_event_patients` counts distinct patients with an event row, the number of independent
    events, which `min_events` and `epv` use; `n_predictors` counts informative candidate
    predictors (not all-missing, not constant) in the phase's rows. `oof_model` holds
    cross-fitted calibrated out-of-fold risks, `oof_margin` the raw out-of-fold log-odds;
    `metrics` maps model name (xgboost_calibrated, logistic_baseline) to metric to (estimate,
    95% lower, 95% upper): the calibrated risks are what a clinic reads (raw margins are not
    reported, so their intervals are not computed). `booster` is the phase's own booster (None when it
    adds no tree); `added_trees` its number of trees.
    """

    phase: str
    status: str
    n_rows: int
    n_patients: int
    n_events: int
    n_event_patients: int
    n_predictors: int
    epv: float
    oof_model: np.ndarray
    oof_raw: np.ndarray
    oof_baseline: np.ndarray | None
    metrics: dict[str, dict[str, Metric]]
    booster: xgboost.Booster | None
    calibrator: Calibrator | None
    fallback_rate: float | None
    added_trees: int = 0
    fold_added_trees: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class TrainedPhases:
    """The shared booster (None when the pooled data cannot train one), its number of trees,
    and each phase's fit, in phase order."""

    shared: xgboost.Booster | None
    shared_trees: int
    fits: dict[str, PhaseFit]
    warnings: list[str] = field(default_factory=list)


def with_day(X: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The booster's input: the feature columns and then the day since intake."""
    return np.column_stack([np.asarray(X, dtype=np.float64), np.asarray(day, dtype=np.float64)])
