"""Fit one recovery phase: cross-validated XGBoost and logistic baseline, a calibrator, the
final booster, and metrics with patient-bootstrap intervals. Pure: arrays in, `PhaseFit` out.

Procedure (the same inside every CV fold and for the final model, so the out-of-fold metrics
assess exactly the procedure that produced the shipped booster):
1. hold out `validation_fraction` of the patients, train with early stopping on their log-loss
   and note the best round;
2. refit on all the given rows with that many rounds (no early stopping).
Calibration is cross-fitted for evaluation: fold k's raw predictions are calibrated by a
calibrator fitted on the other folds' out-of-fold predictions, so calibrated metrics are not
scored on the data the calibrator learned from. The shipped calibrator is fitted on all
out-of-fold predictions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import xgboost

from models.baseline import make_logistic
from models.calibration import Calibrator
from models.config import ModelConfig
from models.explain import margin
from models.folds import grouped_folds, grouped_validation_split
from models.link import sigmoid
from models.metrics import counts, evaluate
from models.parallel import parallel_map
from models.phase_model import ConstantRisk, make_classifier

Metric = tuple[float, float, float]


@dataclass
class PhaseFit:
    """Everything learned and measured for one phase.

    `n_events` counts rows with label 1; `n_event_patients` counts distinct patients with such a
    row, the number of independent events, which `min_events` and `epv` use. `oof_model` holds
    cross-fitted calibrated out-of-fold predictions; `metrics` maps model name
    (xgboost_raw, xgboost_calibrated, logistic_baseline, or constant_rate for a fallback)
    to metric name to (estimate, 95% lower, 95% upper).
    """

    phase: str
    n_rows: int
    n_patients: int
    n_events: int
    n_event_patients: int
    epv: float
    oof_model: np.ndarray
    oof_raw: np.ndarray
    oof_baseline: np.ndarray | None
    metrics: dict[str, dict[str, Metric]]
    booster: xgboost.Booster | None
    calibrator: Calibrator | None
    fallback: ConstantRisk | None
    fallback_rate: float | None
    best_iteration: int | None
    fold_best_iterations: list[int] = field(default_factory=list)
    folds: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)


def _validate(X, y, w, groups, feature_names) -> tuple[np.ndarray, ...]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    groups = np.asarray(groups)
    if X.ndim != 2 or X.shape[1] != len(feature_names):
        raise ValueError(f"X must be 2-D with {len(feature_names)} columns (feature_names)")
    n = X.shape[0]
    if n == 0:
        raise ValueError("no rows to fit")
    if y.shape != (n,) or w.shape != (n,) or groups.shape != (n,):
        raise ValueError("y, w and groups must have one value per row of X")
    if np.isinf(X).any():
        raise ValueError("X contains infinite values; use NaN for unknown")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must be 0/1 (censored rows are removed before fitting)")
    if not (np.isfinite(w).all() and (w > 0).all()):
        raise ValueError("weights must be finite and positive")
    return X, y, w, groups


def _fallback_reason(c: dict[str, int], cfg: ModelConfig) -> str | None:
    non_event_patients = c["patients"] - c["event_patients"]
    if c["events"] == 0 or c["events"] == c["rows"]:
        return "only one outcome class"
    if c["event_patients"] < cfg.min_events:
        return f"{c['event_patients']} patients with an event (< min_events {cfg.min_events})"
    if c["patients"] < cfg.n_folds or min(c["event_patients"], non_event_patients) < 2:
        return f"too few patients for {cfg.n_folds}-fold patient-grouped cross-validation"
    return None


def _fit_booster(X, y, w, groups, cfg: ModelConfig) -> tuple[xgboost.Booster, int]:
    """Early-stop on a patient-grouped validation split, then refit all rows with best+1 rounds."""
    val = grouped_validation_split(groups, cfg.validation_fraction, cfg.seed, events=y)
    stopper = make_classifier(cfg.xgboost, cfg.seed, early_stopping=True)
    stopper.fit(X[~val], y[~val], sample_weight=w[~val], eval_set=[(X[val], y[val])],
                sample_weight_eval_set=[w[val]], verbose=False)
    best = int(stopper.best_iteration)
    final = make_classifier(cfg.xgboost, cfg.seed, early_stopping=False, n_estimators=best + 1)
    final.fit(X, y, sample_weight=w)
    return final.get_booster(), best


FINAL = -1  # the task that fits the shipped booster on every row, beside the folds' tasks


def _fold_task(shared: tuple, k: int) -> tuple:
    """Fold k's out-of-fold XGBoost and logistic predictions and best round, or, for FINAL, the
    booster fitted on every row and its best round. Module-level so worker processes can run it."""
    X, y, w, groups, folds, cfg = shared
    if k == FINAL:
        return _fit_booster(X, y, w, groups, cfg)
    test, train = folds == k, folds != k
    booster, best = _fit_booster(X[train], y[train], w[train], groups[train], cfg)
    baseline = make_logistic(cfg.logistic, cfg.seed)
    baseline.fit(X[train], y[train], logisticregression__sample_weight=w[train])
    return sigmoid(margin(booster, X[test])), baseline.predict_proba(X[test])[:, 1], best


def _cross_fitted_calibration(oof_raw, y, w, folds, method) -> np.ndarray:
    calibrated = np.empty_like(oof_raw)
    for k in np.unique(folds):
        test = folds == k
        cal = Calibrator(method).fit(oof_raw[~test], y[~test], sample_weight=w[~test])
        calibrated[test] = cal.predict(oof_raw[test])
    return calibrated


def _fallback_fit(X, y, w, groups, c, cfg: ModelConfig, phase: str, reason: str) -> PhaseFit:
    """ConstantRisk at the weighted event rate. Its metrics are in-sample: one fitted number,
    and leave-fold-out rates would anti-correlate with the labels (AUROC < 0.5) by artefact."""
    model = ConstantRisk().fit(X, y, sample_weight=w)
    oof = model.predict_proba(X)[:, 1]
    warning = (f"phase '{phase}': {reason}; no model is trained and every row gets the "
               f"observed event rate {model.rate_:.4f}")
    return PhaseFit(
        phase=phase, n_rows=c["rows"], n_patients=c["patients"], n_events=c["events"],
        n_event_patients=c["event_patients"], epv=c["event_patients"] / X.shape[1],
        oof_model=oof, oof_raw=oof.copy(), oof_baseline=None,
        metrics={"constant_rate": evaluate(y, oof, w, groups, cfg.bootstrap_samples, cfg.seed)},
        booster=None, calibrator=None, fallback=model, fallback_rate=model.rate_,
        best_iteration=None, warnings=[warning],
    )


def fit_phase(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    groups: np.ndarray,
    feature_names: list[str],
    cfg: ModelConfig,
    phase: str,
    on_fold: Callable[[int, int], None] | None = None,
) -> PhaseFit:
    """Cross-validate, calibrate and fit the model for one phase (see the module docstring).

    X: float features (NaN = unknown); y: 0/1 labels; w: IPCW weights (> 0); groups: patient
    ids. Few events give a `ConstantRisk` fallback and a warning, never an exception.
    `on_fold(done, total)`, when given, is called after each of the `n_folds` CV fits and the
    final fit (total = n_folds + 1; a fallback calls it once with 1, 1), for progress reports;
    with `cfg.workers` > 1 the fits run side by side and `done` counts those finished so far.
    """
    report = on_fold or (lambda done, total: None)
    X, y, w, groups = _validate(X, y, w, groups, feature_names)
    c = counts(y, groups)
    reason = _fallback_reason(c, cfg)
    if reason is not None:
        report(1, 1)
        return _fallback_fit(X, y, w, groups, c, cfg, phase, reason)
    epv = c["event_patients"] / X.shape[1]
    warnings = []
    if epv < cfg.low_epv_warning:
        warnings.append(
            f"phase '{phase}': {c['event_patients']} patients with an event for {X.shape[1]} "
            f"candidate predictors (EPV {epv:.2f} < {cfg.low_epv_warning:g}); estimates may "
            "be unstable")
    folds = grouped_folds(groups, cfg.n_folds, cfg.seed, events=y)
    oof_raw, oof_baseline = np.empty(y.shape), np.empty(y.shape)
    # the final fit first: the largest task starts first, so the workers finish together
    total = cfg.n_folds + 1
    done = parallel_map(_fold_task, [FINAL, *range(cfg.n_folds)], (X, y, w, groups, folds, cfg), cfg.workers,
                        on_done=lambda n: report(n, total))
    booster, best = done[0]
    fold_best = []
    for k, (raw, baseline, fold_best_iteration) in enumerate(done[1:]):
        oof_raw[folds == k], oof_baseline[folds == k] = raw, baseline
        fold_best.append(fold_best_iteration)
    oof_model = _cross_fitted_calibration(oof_raw, y, w, folds, cfg.calibration)

    def ev(p: np.ndarray) -> dict[str, Metric]:
        return evaluate(y, p, w, groups, cfg.bootstrap_samples, cfg.seed)

    return PhaseFit(
        phase=phase, n_rows=c["rows"], n_patients=c["patients"], n_events=c["events"],
        n_event_patients=c["event_patients"], epv=epv,
        oof_model=oof_model, oof_raw=oof_raw, oof_baseline=oof_baseline,
        metrics={"xgboost_raw": ev(oof_raw), "xgboost_calibrated": ev(oof_model),
                 "logistic_baseline": ev(oof_baseline)},
        booster=booster, calibrator=Calibrator(cfg.calibration).fit(oof_raw, y, w),
        fallback=None, fallback_rate=None, best_iteration=best,
        fold_best_iterations=fold_best, folds=folds, warnings=warnings,
    )
