"""Pure analyses of a model scored on a labelled cohort it was not trained on (external or
temporal validation): metrics per phase and pooled with patient-bootstrap CIs, calibration
curves with bootstrap bands, decision curves and subgroups. Frames in, frames and figures out.

`rows` holds one uncensored landmark row per patient and landmark: patient_id, phase, label
(0/1), ipcw_weight, risk (the model's final risk) and optional patient attributes.

A constant-rate phase of the model (`constant`: status `constant`, one fallback rate) is reported
as in training: its AUROC and AUPRC are not applicable (null; one score ranks no one), and it is
left out of the pooled rows, where its constant would only tell the phases apart.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from models.evaluation import NOT_APPLICABLE
from models.metrics import counts, evaluate, percentile_interval
from pipeline.artifacts import evaluation_figure_names
from pipeline.reports.analysis import decision_curve, subgroup_table
from pipeline.reports.figures import calibration_figure, decision_curve_figure

POOLED = "pooled"
METRIC_SCHEMA = {"phase": pl.String, "metric": pl.String, "estimate": pl.Float64, "lo": pl.Float64, "hi": pl.Float64}
CURVE_BINS = 10


@dataclass
class ValidationResult:
    metrics: pl.DataFrame  # phase, metric, estimate, lo, hi (phases then pooled)
    counts: pl.DataFrame  # phase, rows, patients, events, event_patients
    calibration: pl.DataFrame  # phase, bin, predicted, observed, lo, hi, n
    decision_curves: pl.DataFrame  # phase, threshold, net_benefit_model, _treat_all, _treat_none
    subgroups: pl.DataFrame
    figures: dict[str, Figure] = field(default_factory=dict)


def _parts(rows: pl.DataFrame, phases: Sequence[str], constant: Collection[str] = ()) -> dict[str, pl.DataFrame]:
    """Each phase's rows (phases without rows left out) and, as `pooled`, the rows of the phases
    that are not `constant` (none: no pooled part)."""
    parts = {p: f for p in phases if (f := rows.filter(pl.col("phase") == p)).height}
    ranked = [f for p, f in parts.items() if p not in constant]
    return parts | ({POOLED: pl.concat(ranked)} if ranked else {})


def _arrays(part: pl.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(part[c].to_numpy() for c in ("label", "risk", "ipcw_weight", "patient_id"))


def validation_metrics(rows: pl.DataFrame, phases: Sequence[str], n_boot: int, seed: int,
                       constant: Collection[str] = ()) -> pl.DataFrame:
    """AUROC, AUPRC, Brier, calibration intercept and slope, ECE and O/E per phase and pooled,
    each with a 95% patient-bootstrap interval (`models.metrics.evaluate`). Where the model gives
    every row one risk (a constant phase, or one whose calibration is flat) it ranks no one: its
    AUROC, AUPRC and slope are not applicable (null), not 0.500 (0.500-0.500)."""
    out = []
    for phase, part in _parts(rows, phases, constant).items():
        y, p, w, g = _arrays(part)
        one_risk = phase in constant or np.unique(p).size == 1
        for metric, (est, lo, hi) in evaluate(y, p, w, g, n_boot, seed).items():
            if one_risk and metric in (*NOT_APPLICABLE, "calibration_slope"):
                est = lo = hi = None
            out.append({"phase": phase, "metric": metric, "estimate": est, "lo": lo, "hi": hi})
    return pl.DataFrame(out, schema=METRIC_SCHEMA)


def count_rows(rows: pl.DataFrame, phases: Sequence[str], constant: Collection[str] = ()) -> pl.DataFrame:
    out = [{"phase": phase, **counts(part["label"].to_numpy(), part["patient_id"].to_numpy())}
           for phase, part in _parts(rows, phases, constant).items()]
    return pl.DataFrame(out, schema={"phase": pl.String, "rows": pl.Int64, "patients": pl.Int64,
                                     "events": pl.Int64, "event_patients": pl.Int64})


def calibration_curve(y, p, w, groups, n_boot: int, seed: int, bins: int = CURVE_BINS) -> pl.DataFrame:
    """Equal-frequency bins of predicted risk (edges fixed on the full sample): weighted mean
    predicted and observed rate, with a 95% band of the observed rate from resampling whole
    patients (`n_boot` resamples; NaN bounds when fewer than 2)."""
    y, p, w = (np.asarray(a, dtype=np.float64) for a in (y, p, w))
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)[1:-1])) if p.size else np.empty(0)
    index = np.searchsorted(edges, p, side="left")
    _, patient = np.unique(np.asarray(groups), return_inverse=True)
    n_patients = int(patient.max()) + 1 if patient.size else 0
    rng = np.random.default_rng(seed)
    draws = np.stack([np.bincount(rng.integers(n_patients, size=n_patients), minlength=n_patients)
                      for _ in range(n_boot)]) if n_boot else np.empty((0, n_patients))
    rows = []
    for b in np.unique(index):
        m = index == b
        weight = np.bincount(patient[m], weights=w[m], minlength=n_patients)
        events = np.bincount(patient[m], weights=w[m] * y[m], minlength=n_patients)
        total = draws @ weight
        with np.errstate(invalid="ignore", divide="ignore"):
            observed = np.where(total > 0, (draws @ events) / total, np.nan)  # no patient of the bin drawn: none
        lo, hi = percentile_interval(observed, n_boot)
        rows.append({"bin": int(b), "predicted": float((w[m] * p[m]).sum() / w[m].sum()),
                     "observed": float(events.sum() / weight.sum()), "lo": float(lo), "hi": float(hi),
                     "n": int(m.sum())})
    return pl.DataFrame(rows, schema={"bin": pl.Int64, "predicted": pl.Float64, "observed": pl.Float64,
                                      "lo": pl.Float64, "hi": pl.Float64, "n": pl.Int64})


def validation_result(
    rows: pl.DataFrame, phases: Sequence[str], n_boot: int, seed: int, label: str = "external",
    constant: Collection[str] = (),
) -> ValidationResult:
    """Everything an evaluation run reports, computed from the scored labelled rows."""
    curves, decisions, figures = [], [], {}
    for phase, part in _parts(rows, phases, constant).items():
        y, p, w, g = _arrays(part)
        curve = calibration_curve(y, p, w, g, n_boot, seed).with_columns(pl.lit(phase).alias("phase"))
        decision = decision_curve(y, p, w).with_columns(pl.lit(phase).alias("phase"))
        curves.append(curve)
        decisions.append(decision)
        calibration_name, decision_name = evaluation_figure_names(phase)
        figures[calibration_name] = calibration_figure(curve, p, f"{label} calibration: {phase}")
        figures[decision_name] = decision_curve_figure(decision, f"{label} decision curve: {phase}")
    return ValidationResult(
        metrics=validation_metrics(rows, phases, n_boot, seed, constant),
        counts=count_rows(rows, phases, constant),
        calibration=pl.concat(curves).select("phase", pl.exclude("phase")),
        decision_curves=pl.concat(decisions).select("phase", pl.exclude("phase")),
        subgroups=subgroup_table(rows, n_boot=n_boot, seed=seed),
        figures=figures,
    )


def metric_names(metrics: pl.DataFrame, counts_table: pl.DataFrame, prefix: str = "") -> dict[str, float]:
    """MLflow metric names as training's: `{metric}_{phase}` with `_lo`/`_hi`, and counts
    `n_rows_{phase}`, `n_patients_{phase}`, `n_events_{phase}`; an optional prefix on each."""
    out: dict[str, float] = {}
    for r in metrics.iter_rows(named=True):
        for suffix, value in (("", r["estimate"]), ("_lo", r["lo"]), ("_hi", r["hi"])):
            if value is not None and np.isfinite(value):
                out[f"{prefix}{r['metric']}_{r['phase']}{suffix}"] = float(value)
    for r in counts_table.iter_rows(named=True):
        for key in ("rows", "patients", "events"):
            out[f"{prefix}n_{key}_{r['phase']}"] = float(r[key])
    return out


def summary(metrics: pl.DataFrame) -> dict[str, Mapping[str, Any]]:
    """{phase: {metric: [estimate, lo, hi]}}: the metrics as JSON for the report."""
    out: dict[str, dict[str, Any]] = {}
    for r in metrics.iter_rows(named=True):
        out.setdefault(r["phase"], {})[r["metric"]] = [r["estimate"], r["lo"], r["hi"]]
    return out
