"""Assemble per-phase fits into the tables a training run reports: metrics with CIs next to the
logistic baseline and (on simulated data) the oracle, pooled over phases, and MLflow names.

Headline model metrics are those of the cross-fitted calibrated out-of-fold predictions: what a
clinic receives, scored on data neither the booster nor the calibrator saw.

A phase that fell back to a constant event rate (too few event patients) is reported as model
`constant_rate` with `in_sample` true: its one number was fitted on the rows it is scored on, so
its calibration looks perfect by construction and its AUROC/AUPRC are not applicable (null, one
score for every row ranks nothing). Its rows are left out of the pooled metrics, which would
otherwise mix an in-sample constant with out-of-fold predictions.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from models.fits import PhaseFit
from models.metrics import evaluate
from models.parallel import parallel_map

MODEL_LABELS = {"xgboost_calibrated": "xgboost", "constant_rate": "constant_rate", "logistic_baseline": "logistic"}
CONSTANT_RATE = "constant_rate"
NO_MODEL = "no_model"  # a phase without at-risk training rows: not scored (`no_model_for_phase`)
NOT_APPLICABLE = ("auroc", "auprc")  # undefined for one constant score
POOLED = "pooled"


def fallback_phases(fits: Mapping[str, PhaseFit]) -> list[str]:
    """Phases whose model is the constant-rate fallback, in fit order."""
    return [phase for phase, fit in fits.items() if fit.status == "constant"]


def oof_frame(rows: Mapping[str, pl.DataFrame], fits: Mapping[str, PhaseFit]) -> pl.DataFrame:
    """Out-of-fold predictions for every uncensored landmark row, all phases stacked.

    `rows[phase]` holds that phase's rows in the order they were fitted (patient_id, day,
    label, ipcw_weight and any attribute columns to carry along).
    """
    frames = []
    for phase, fit in fits.items():
        baseline = fit.oof_baseline if fit.oof_baseline is not None else fit.oof_model
        frames.append(
            rows[phase].with_columns(
                pl.lit(phase).alias("phase"),
                pl.Series("risk", fit.oof_model, pl.Float64),
                pl.Series("risk_logistic", baseline, pl.Float64),
            )
        )
    return pl.concat(frames, how="diagonal_relaxed")


def _bootstrap(settings: tuple[int, int], arrays: tuple) -> dict[str, tuple[float, float, float]]:
    n_boot, seed = settings
    y, p, w, groups = arrays
    return evaluate(y, p, w, groups, n_boot, seed)


def _rows(phase: str, model: str, metrics: Mapping[str, tuple[float, float, float]]) -> list[dict]:
    in_sample = model == CONSTANT_RATE
    return [
        {"phase": phase, "model": model, "metric": name, "estimate": est, "lo": lo, "hi": hi, "in_sample": in_sample}
        if not (in_sample and name in NOT_APPLICABLE)
        else {"phase": phase, "model": model, "metric": name, "estimate": None, "lo": None, "hi": None,
              "in_sample": True}
        for name, (est, lo, hi) in metrics.items()
    ]


def metrics_table(
    fits: Mapping[str, PhaseFit], oof: pl.DataFrame, n_boot: int, seed: int, oracle_column: str | None = None,
    workers: int = 1,
) -> pl.DataFrame:
    """phase, model (xgboost | constant_rate | logistic | oracle), metric, estimate, lo, hi,
    in_sample; plus pooled rows over the phases that have a fitted model (fallbacks left out).
    The bootstraps not already in the fits run in up to `workers` processes (same results)."""
    rows: list[dict] = []
    pooled_rows = oof.filter(~pl.col("phase").is_in(fallback_phases(fits)))
    for phase, fit in fits.items():
        for key, label in MODEL_LABELS.items():
            if key in fit.metrics:
                rows += _rows(phase, label, fit.metrics[key])
    scored = {"xgboost": "risk", "logistic": "risk_logistic"}
    if oracle_column is not None:
        scored["oracle"] = oracle_column
    tasks = []
    for phase in [*fits, POOLED]:
        part = pooled_rows if phase == POOLED else oof.filter(pl.col("phase") == phase)
        for model, column in scored.items():
            if phase != POOLED and model != "oracle":
                continue  # per-phase model rows come from the fits themselves
            known = part.filter(pl.col(column).is_not_null())
            if known.height == 0 or known["label"].n_unique() < 2:
                continue
            arrays = tuple(known[c].to_numpy() for c in ("label", column, "ipcw_weight", "patient_id"))
            tasks.append((phase, model, arrays))
    results = parallel_map(_bootstrap, [arrays for _, _, arrays in tasks], (n_boot, seed), workers)
    for (phase, model, _), metrics in zip(tasks, results, strict=True):
        rows += _rows(phase, model, metrics)
    return pl.DataFrame(
        rows,
        schema={
            "phase": pl.String,
            "model": pl.String,
            "metric": pl.String,
            "estimate": pl.Float64,
            "lo": pl.Float64,
            "hi": pl.Float64,
            "in_sample": pl.Boolean,
        },
    )


def count_table(fits: Mapping[str, PhaseFit]) -> pl.DataFrame:
    """One row per phase: status (models.training), rows, patients, events, event patients,
    informative predictors, EPV, the fallback rate of a constant phase and the phase's own trees."""
    return pl.DataFrame(
        [
            {
                "phase": p,
                "status": f.status,
                "rows": f.n_rows,
                "patients": f.n_patients,
                "events": f.n_events,
                "event_patients": f.n_event_patients,
                "predictors": f.n_predictors,
                "epv": f.epv,
                "fallback_rate": f.fallback_rate,
                "added_trees": f.added_trees,
                "model": CONSTANT_RATE if f.status == "constant" else NO_MODEL if f.status == "no_data" else "xgboost",
            }
            for p, f in fits.items()
        ],
        schema_overrides={"fallback_rate": pl.Float64, "added_trees": pl.Int64},
    )


def mlflow_metrics(table: pl.DataFrame, counts: pl.DataFrame) -> dict[str, float]:
    """`{metric}_{phase}` for the model (with `_lo`/`_hi`), `logistic_…` and `oracle_…` for the
    others, `auroc_gap_to_oracle_{phase}`, and counts `n_rows_{phase}` etc."""
    out: dict[str, float] = {}
    for r in table.iter_rows(named=True):
        prefix = "" if r["model"] == "xgboost" else f"{r['model']}_"  # constant_rate_… for a fallback
        name = f"{prefix}{r['metric']}_{r['phase']}"
        for suffix, value in (("", r["estimate"]), ("_lo", r["lo"]), ("_hi", r["hi"])):
            if value is not None and np.isfinite(value):
                out[name + suffix] = float(value)
    for phase in table["phase"].unique().to_list():
        if f"auroc_{phase}" in out and f"oracle_auroc_{phase}" in out:
            out[f"auroc_gap_to_oracle_{phase}"] = out[f"oracle_auroc_{phase}"] - out[f"auroc_{phase}"]
    for r in counts.iter_rows(named=True):
        for key in ("rows", "patients", "events", "event_patients", "predictors", "epv", "added_trees"):
            name = f"{key}_{r['phase']}" if key in ("epv", "added_trees") else f"n_{key}_{r['phase']}"
            out[name] = float(r[key])
    return out
