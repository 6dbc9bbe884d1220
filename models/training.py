"""Fit every recovery phase at once: a shared booster that borrows strength across phases, phase
boosters that continue from it, per-phase calibrators, a logistic baseline, and metrics with
patient-bootstrap intervals. Pure: arrays in, `TrainedPhases` out.

Procedure (the same inside every cross-validation fold and for the shipped model, so the
out-of-fold metrics assess exactly what ships; folds group all of a patient's rows, in every
phase, on one side):
1. the shared booster (models/boosting.py) on all phases' rows, the day since intake as an
   extra column, early-stopped on held-out patients, then refitted on all rows;
2. for each phase with at least `min_events` patients with an event, a phase booster from the
   shared margin, early-stopped on the phase's held-out patients (it may add no tree), its
   regularisation raised when events per informative predictor fall below `low_epv_warning`;
   the phase keeps its own trees only if they lowered its out-of-fold log-loss against the
   shared booster alone across the cross-validation folds;
3. a Platt (or isotonic) calibrator per phase on the out-of-fold predictions; a phase with
   fewer than `min_events` patients with an event has the pooled calibrator (all phases).

Phase status, reported everywhere a phase is:
- `phase_model`: shared booster plus the phase's own trees;
- `shared`: the shared booster alone (few events, one outcome class, or no added tree helped);
- `constant`: the pooled data cannot train a booster, so the weighted event rate is used;
- `no_data`: no at-risk row in training; such a phase cannot be scored (`no_model_for_phase`).
Calibrated metrics are cross-fitted: fold k is calibrated by a calibrator fitted on the other
folds' out-of-fold predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from models.baseline import baseline_risks
from models.boosting import fit_continuation, fit_shared, informative_columns, shrunk_params, weighted_logloss
from models.calibration import Calibrator
from models.config import ModelConfig
from models.explain import margin
from models.fits import UNRANKED, Metric, PhaseData, PhaseFit, TrainedPhases, with_day
from models.folds import grouped_folds
from models.link import sigmoid
from models.metrics import counts, evaluate
from models.parallel import parallel_map


def _validate(d: PhaseData, n_features: int) -> PhaseData:
    X = np.asarray(d.X, dtype=np.float64).reshape(-1, n_features)
    y, w = np.asarray(d.y, dtype=np.float64), np.asarray(d.w, dtype=np.float64)
    groups, day = np.asarray(d.groups), np.asarray(d.day, dtype=np.float64)
    n = X.shape[0]
    if y.shape != (n,) or w.shape != (n,) or groups.shape != (n,) or day.shape != (n,):
        raise ValueError("y, w, groups and day must have one value per row of X")
    if np.isinf(X).any():
        raise ValueError("X contains infinite values; use NaN for unknown")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must be 0/1 (censored rows are removed before fitting)")
    if not (np.isfinite(w).all() and (w > 0).all()):
        raise ValueError("weights must be finite and positive")
    return PhaseData(X, y, w, groups, day)


def _cannot_cross_validate(c: dict[str, int], cfg: ModelConfig) -> str | None:
    """Why these rows cannot train a cross-validated booster, or None when they can."""
    if c["rows"] == 0:
        return "no at-risk rows"
    if c["events"] == 0 or c["events"] == c["rows"]:
        return "only one outcome class"
    if c["event_patients"] < cfg.min_events:
        return f"{c['event_patients']} patients with an event (< min_events {cfg.min_events})"
    if c["patients"] < cfg.n_folds:
        return f"{c['patients']} patient(s): too few for {cfg.n_folds}-fold patient-grouped cross-validation"
    if min(c["event_patients"], c["patients"] - c["event_patients"]) < 2:
        which = "with" if c["event_patients"] < 2 else "without"
        n = c["event_patients"] if which == "with" else c["patients"] - c["event_patients"]
        return f"{n} patient(s) {which} an event: too few to cross-validate (at least 2 are needed)"
    return None


def _stack(data: Mapping[str, PhaseData]) -> tuple[np.ndarray, ...]:
    names = list(data)
    parts = [data[p] for p in names]
    index = np.concatenate([np.full(d.y.size, i) for i, d in enumerate(parts)]).astype(int)
    X = np.vstack([with_day(d.X, d.day) for d in parts])
    return (X, *(np.concatenate([getattr(d, a) for d in parts]) for a in ("y", "w", "groups")), index)


def fit_phases(data: Mapping[str, PhaseData], feature_names: list[str], cfg: ModelConfig,
               on_fold: Callable[[int, int], None] | None = None) -> TrainedPhases:
    """Cross-validate, calibrate and fit every phase (see the module docstring). Never raises for
    a valid but thin cohort: phases without rows, with one class or few events get a status.

    `on_fold(done, total)`, when given, is called after each of the `n_folds` CV fits and the
    final fit of the shared booster (total = n_folds + 1; when no booster can be trained, once
    with 1, 1). With `cfg.workers` > 1 the folds and the final fit run side by side in worker
    processes (models/parallel.py), then the phases are finished side by side; results are
    identical for any worker count, since every fit draws its randomness from `cfg.seed` alone.
    """
    report = on_fold or (lambda done, total: None)
    k = len(feature_names)
    data = {p: _validate(d, k) for p, d in data.items()}
    X, y, w, groups, index = _stack(data)
    reason = _cannot_cross_validate(counts(y, groups), cfg)
    if reason is not None:
        report(1, 1)
        return _constant_only(data, cfg, f"all phases together: {reason}")
    plan = _plan(data, cfg)
    folds = grouped_folds(groups, cfg.n_folds, cfg.seed, events=y)
    total = cfg.n_folds + 1
    stacked = _Stacked(X, y, w, groups, index, folds, plan, k, cfg)
    done = parallel_map(_fold_task, [*range(cfg.n_folds), FINAL], stacked, cfg.workers,
                        on_done=lambda n: report(n, total))
    shared, shared_trees = done[-1]
    oof_margin, oof_shared, oof_base = np.empty(y.size), np.empty(y.size), np.empty(y.size)
    fold_trees: dict[str, list[int]] = {p: [] for p in data}
    for f, fold in enumerate(done[:-1]):
        test = folds == f
        oof_shared[test], oof_margin[test], oof_base[test] = fold.shared, fold.margin, fold.baseline
        for phase, trees in fold.trees.items():
            fold_trees[phase].append(trees)
    grow = _keep_own_trees(plan, index, y, w, oof_shared, oof_margin)
    pooled = Calibrator(cfg.calibration).fit(sigmoid(oof_margin), y, w)
    pooled_oof = _cross_fitted(sigmoid(oof_margin), y, w, folds, cfg.calibration, pooled)
    tasks = []
    for i, phase in enumerate(data):
        rows = index == i
        tasks.append(_PhaseTask(phase, data[phase], plan[phase], grow[phase], oof_margin[rows], oof_base[rows],
                                folds[rows], fold_trees[phase], pooled_oof[rows]))
    finished = parallel_map(_finish_task, tasks, (shared, pooled, cfg), cfg.workers)
    fits = {task.phase: fit for task, fit in zip(tasks, finished, strict=True)}
    return TrainedPhases(shared, shared_trees, fits)


FINAL = -1  # the task that fits the shipped shared booster on every row, beside the folds' tasks


@dataclass(frozen=True)
class _Stacked:
    """Every phase's rows stacked (features with the day column), their phase index, folds and
    plan: what each fold task reads (sent to a worker process once)."""

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray
    groups: np.ndarray
    index: np.ndarray
    folds: np.ndarray
    plan: dict
    n_features: int
    cfg: ModelConfig


@dataclass(frozen=True)
class _Fold:
    """One fold's out-of-fold margins (shared booster alone, and with each phase's own trees),
    logistic-baseline risks for its test rows, and each phase's number of own trees."""

    shared: np.ndarray
    margin: np.ndarray
    baseline: np.ndarray
    trees: dict[str, int]


def _fold_task(s: _Stacked, f: int):
    """Fold f's `_Fold`, or for FINAL the shared booster fitted on every row and its trees.
    Module-level, so worker processes can run it; its randomness comes from cfg.seed alone."""
    cfg = s.cfg
    if f == FINAL:
        return fit_shared(s.X, s.y, s.w, s.groups, cfg.xgboost, cfg.seed, cfg.validation_fraction)
    train, test = s.folds != f, s.folds == f
    shared, _ = fit_shared(s.X[train], s.y[train], s.w[train], s.groups[train], cfg.xgboost, cfg.seed,
                           cfg.validation_fraction)
    X_test, test_index = s.X[test], s.index[test]
    shared_margin = margin(shared, X_test)
    out, baseline, trees = shared_margin.copy(), np.empty(shared_margin.size), {}
    for i, phase in enumerate(s.plan):
        tr, te = train & (s.index == i), test_index == i
        if not te.any():
            continue
        if s.plan[phase] is not None:
            booster, trees[phase] = _continue(shared, s.X[tr], s.y[tr], s.w[tr], s.groups[tr], s.plan[phase], cfg)
            if booster is not None:
                out[te] += margin(booster, X_test[te])
        baseline[te] = baseline_risks(s.X[tr, :s.n_features], s.y[tr], s.w[tr], X_test[te, :s.n_features],
                                      cfg.logistic, cfg.seed)
    return _Fold(shared_margin, out, baseline, trees)


@dataclass(frozen=True)
class _PhaseTask:
    phase: str
    d: PhaseData
    params: object
    grow: bool
    oof_margin: np.ndarray
    oof_base: np.ndarray
    folds: np.ndarray
    fold_trees: list[int]
    pooled_oof: np.ndarray


def _finish_task(shared_args: tuple, t: _PhaseTask) -> PhaseFit:
    shared, pooled, cfg = shared_args
    return _finish_phase(t.phase, t.d, shared, t.params, t.grow, t.oof_margin, t.oof_base, t.folds, t.fold_trees,
                         pooled, t.pooled_oof, cfg)


def _keep_own_trees(plan, index, y, w, oof_shared, oof_margin) -> dict[str, bool]:
    """Per phase, whether its own trees lowered the out-of-fold weighted log-loss against the
    shared booster alone (the choice is itself cross-validated: every fold grew its own trees
    without seeing its test patients). Where they did not, the phase's out-of-fold margins go
    back to the shared ones (in place) and the shipped phase grows no trees."""
    keep = {}
    for i, phase in enumerate(plan):
        rows = index == i
        keep[phase] = plan[phase] is not None and rows.any() and \
            weighted_logloss(y[rows], oof_margin[rows], w[rows]) < weighted_logloss(y[rows], oof_shared[rows], w[rows])
        if not keep[phase]:
            oof_margin[rows] = oof_shared[rows]
    return keep


def _plan(data: Mapping[str, PhaseData], cfg: ModelConfig):
    """Per phase, the XGBoost parameters of its own booster, or None when it borrows only."""
    plan = {}
    for phase, d in data.items():
        c = counts(d.y, d.groups)
        if _cannot_cross_validate(c, cfg) is not None:
            plan[phase] = None
            continue
        n_pred = max(int(informative_columns(d.X).sum()), 1)
        plan[phase] = shrunk_params(cfg.xgboost, c["event_patients"] / n_pred, cfg.low_epv_warning)
    return plan


def _continue(shared, X, y, w, groups, params, cfg: ModelConfig):
    return fit_continuation(X, y, w, groups, margin(shared, X), params, cfg.seed, cfg.validation_fraction)


def _cross_fitted(oof_raw, y, w, folds, method, fallback: Calibrator) -> np.ndarray:
    out = np.empty_like(oof_raw)
    for f in np.unique(folds):
        test = folds == f
        train_y = y[~test]
        cal = fallback if train_y.size == 0 or train_y.min() == train_y.max() else \
            Calibrator(method).fit(oof_raw[~test], train_y, sample_weight=w[~test])
        out[test] = cal.predict(oof_raw[test])
    return out


def _finish_phase(phase, d: PhaseData, shared, params, grow, oof_margin, oof_base, folds, fold_trees, pooled,
                  pooled_oof, cfg: ModelConfig) -> PhaseFit:
    """The shipped phase booster and calibrator, cross-fitted metrics and the phase's status.

    A phase that borrows uses the pooled calibrator; its calibrated out-of-fold risks are the
    pooled cross-fitted ones (fold k calibrated on the other folds of all phases)."""
    c = counts(d.y, d.groups)
    n_pred = int(informative_columns(d.X).sum())
    epv = c["event_patients"] / max(n_pred, 1)
    common = dict(phase=phase, n_rows=c["rows"], n_patients=c["patients"], n_events=c["events"],
                  n_event_patients=c["event_patients"], n_predictors=n_pred, epv=epv)
    if c["rows"] == 0:
        return PhaseFit(**common, status="no_data", oof_model=oof_margin, oof_raw=oof_margin, oof_baseline=None,
                        metrics={}, booster=None, calibrator=None, fallback_rate=None,
                        warnings=[f"phase '{phase}': no at-risk rows in training; it has no model and "
                                  "patients in it are not scored (no_model_for_phase)"])
    booster, trees = (None, 0)
    if params is not None and grow:
        booster, trees = _continue(shared, with_day(d.X, d.day), d.y, d.w, d.groups, params, cfg)
    oof_raw = sigmoid(oof_margin)
    own = params is not None
    calibrator = Calibrator(cfg.calibration).fit(oof_raw, d.y, d.w) if own else pooled
    oof_model = _cross_fitted(oof_raw, d.y, d.w, folds, cfg.calibration, pooled) if own else pooled_oof
    warnings = _phase_warnings(phase, c, n_pred, epv, own, cfg)
    if calibrator.flat:
        warnings.append(f"phase '{phase}': its out-of-fold risks rank patients no better than chance, so its "
                        "calibration gives every patient one risk; scores there carry no reasons")
    if own and not grow:
        warnings.append(f"phase '{phase}': its own trees did not lower the out-of-fold log-loss of the shared "
                        "booster; it uses the shared booster alone (with its own calibrator)")
    elif own and booster is None:
        warnings.append(f"phase '{phase}': fitted on all its rows, no tree of its own lowered the log-loss of its "
                        "held-out patients; it uses the shared booster alone (with its own calibrator)")
    metrics = {}
    if 0 < c["events"] < c["rows"]:
        def ev(p):
            return evaluate(d.y, p, d.w, d.groups, cfg.bootstrap_samples, cfg.seed)
        metrics = {"xgboost_calibrated": ev(oof_model), "logistic_baseline": ev(oof_base)}
        if calibrator.flat:  # the shipped model gives every patient one risk: it ranks no one
            metrics["xgboost_calibrated"] |= dict.fromkeys(UNRANKED, (np.nan, np.nan, np.nan))
        warnings += _chance_warning(phase, metrics["xgboost_calibrated"]["auroc"])
    return PhaseFit(**common, status="phase_model" if booster is not None else "shared", oof_model=oof_model,
                    oof_raw=oof_raw, oof_baseline=oof_base, metrics=metrics, booster=booster,
                    calibrator=calibrator, fallback_rate=None, added_trees=trees, fold_added_trees=fold_trees,
                    warnings=warnings)


def _chance_warning(phase: str, auroc: Metric) -> list[str]:
    """A warning when the phase's out-of-fold AUROC interval reaches down to chance (0.5)."""
    estimate, lo, hi = auroc
    if not (lo <= 0.5):  # also no warning without an interval (NaN)
        return []
    return [f"phase '{phase}': out-of-fold AUROC {estimate:.3f} (95% CI {lo:.3f}-{hi:.3f}) reaches 0.5: in this phase "
            "the model may rank patients no better than chance; read its risks as a rate, not as a ranking"]


def _phase_warnings(phase, c, n_pred, epv, own, cfg: ModelConfig) -> list[str]:
    out = []
    if not own:
        why = _cannot_cross_validate(c, cfg)
        out.append(f"phase '{phase}': {why}; it borrows strength: the shared booster alone, with the "
                   "pooled calibrator")
    elif epv < cfg.low_epv_warning:
        out.append(f"phase '{phase}': {c['event_patients']} patients with an event for {n_pred} informative "
                   f"candidate predictors (EPV {epv:.2f} < {cfg.low_epv_warning:g}); its own trees are "
                   "regularised more strongly")
    return out


def _constant_only(data: Mapping[str, PhaseData], cfg: ModelConfig, reason: str) -> TrainedPhases:
    """No booster can be trained on the pooled rows: each phase with rows gets its weighted event
    rate (metrics in-sample: one fitted number), an empty phase gets `no_data`. A phase with
    fewer than `min_events` patients with an event borrows the pooled rate of all phases' rows, as
    it would borrow the shared booster: one patient followed into a late phase without an event
    would otherwise give every patient there a risk of 0 (shown as 0.001)."""
    fits = {}
    stacked = [d for d in data.values() if d.y.size]
    pooled = float(np.average(np.concatenate([d.y for d in stacked]), weights=np.concatenate([d.w for d in stacked]))
                   ) if stacked else float("nan")
    for phase, d in data.items():
        c = counts(d.y, d.groups)
        n_pred = int(informative_columns(d.X).sum())
        common = dict(phase=phase, n_rows=c["rows"], n_patients=c["patients"], n_events=c["events"],
                      n_event_patients=c["event_patients"], n_predictors=n_pred,
                      epv=c["event_patients"] / max(n_pred, 1), oof_baseline=None, booster=None, calibrator=None)
        if c["rows"] == 0:
            fits[phase] = PhaseFit(**common, status="no_data", oof_model=np.empty(0), oof_raw=np.empty(0),
                                   metrics={}, fallback_rate=None,
                                   warnings=[f"phase '{phase}': no at-risk rows in training; not scored"])
            continue
        own = c["event_patients"] >= cfg.min_events
        rate = float(np.average(d.y, weights=d.w)) if own else pooled
        source = (f"its observed event rate, {rate:.4f}" if own else
                  f"the event rate of all phases, {rate:.4f} (its own {c['event_patients']} patient(s) with an "
                  f"event are fewer than min_events, {cfg.min_events})")
        oof = np.full(c["rows"], rate)
        metrics = {}
        if 0 < c["events"] < c["rows"]:
            metrics = {"constant_rate": evaluate(d.y, oof, d.w, d.groups, cfg.bootstrap_samples, cfg.seed)}
        fits[phase] = PhaseFit(**common, status="constant", oof_model=oof, oof_raw=oof.copy(), metrics=metrics,
                               fallback_rate=rate, warnings=[f"phase '{phase}': {reason}; every row gets {source}"])
    return TrainedPhases(None, 0, fits, warnings=[reason])


__all__ = ["fit_phases"]
