"""Pure analyses for the audit report: decision curves and subgroup performance.

Arrays or Polars frames in, Polars frames out; no I/O. Drift (PSI, training profile,
physiological ranges) lives in `pipeline.reports.drift` and the TRIPOD+AI checklist in
`pipeline.reports.tripod`; both are re-exported here so the stage imports one module.

Every rate here is IPCW-weighted: rows censored inside the horizon have no label and are left
out, and the rest carry `ipcw_weight` so drop-out does not bias observed risk.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from models.metrics import auroc, group_metrics
from pipeline.reports.drift import (
    DEFAULT_RANGES,
    drift_table,
    match_ranges,
    out_of_range,
    phase_profiles,
    psi,
    training_profile,
)
from pipeline.reports.tripod import tripod_checklist

__all__ = [
    "DEFAULT_RANGES",
    "decision_curve",
    "drift_table",
    "match_ranges",
    "out_of_range",
    "phase_profiles",
    "psi",
    "subgroup_table",
    "training_profile",
    "tripod_checklist",
]

DEFAULT_THRESHOLDS = np.round(np.arange(0.01, 0.61, 0.01), 6)
MISSING = "missing"
TOO_SMALL = "too small to judge"
FLAG = "flag"
OK = "ok"
AGE_BANDS = ("under 18", "18–24", "25–30", "over 30")
QUINTILES = ("Q1 (most deprived)", "Q2", "Q3", "Q4", "Q5 (least deprived)")


def decision_curve(
    y: Sequence[float],
    p: Sequence[float],
    w: Sequence[float] | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> pl.DataFrame:
    """Net benefit of treating when risk ≥ threshold, against treating everyone and no one.

    Vickers & Elkin's NB = TP/n − FP/n · pt/(1 − pt), with TP, FP and n as sums of the
    IPCW weights `w` (all ones when None).

    >>> decision_curve([1, 0, 0, 1], [0.9, 0.6, 0.2, 0.1], None, [0.5])["net_benefit_model"][0]
    0.0
    """
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=float)
    pt = np.round(np.asarray(thresholds, dtype=float), 6)
    if not (y.shape == p.shape == w.shape):
        raise ValueError(f"y, p and w differ in length: {y.shape}, {p.shape}, {w.shape}")
    if np.any((pt <= 0) | (pt >= 1)):
        raise ValueError("decision-curve thresholds must lie strictly between 0 and 1")
    n = w.sum()
    if n <= 0:
        raise ValueError("decision curve needs a positive total weight")
    treated = p[None, :] >= pt[:, None]  # thresholds × rows
    tp = (treated * (w * y)[None, :]).sum(axis=1) / n
    fp = (treated * (w * (1 - y))[None, :]).sum(axis=1) / n
    odds = pt / (1 - pt)
    prevalence = (w * y).sum() / n
    return pl.DataFrame(
        {
            "threshold": pt,
            "net_benefit_model": tp - fp * odds,
            "net_benefit_treat_all": prevalence - (1 - prevalence) * odds,
            "net_benefit_treat_none": np.zeros_like(pt),
        }
    )


def _present(frame: pl.DataFrame, column: str) -> bool:
    return column in frame.columns and frame[column].null_count() < frame.height


def subgroup_attributes(frame: pl.DataFrame) -> dict[str, pl.Expr]:
    """The subgroup label expressions (String, nulls as "missing") for the columns present.

    Age bands follow the review's high-risk ages: under 18, 18–24 (18 ≤ age < 25), 25–30
    (25 ≤ age ≤ 30), over 30. Deprivation deciles fold into quintiles (decile + 1) // 2,
    Q1 most deprived. Optional attributes appear only when the column has a value.
    """
    attributes = {"all": pl.lit("all")}
    if "age_at_intake" in frame.columns:
        age = pl.col("age_at_intake").cast(pl.Float64).fill_nan(None)
        attributes["age band"] = (
            pl.when(age.is_null())
            .then(pl.lit(MISSING))
            .when(age < 18)
            .then(pl.lit(AGE_BANDS[0]))
            .when(age < 25)
            .then(pl.lit(AGE_BANDS[1]))
            .when(age <= 30)
            .then(pl.lit(AGE_BANDS[2]))
            .otherwise(pl.lit(AGE_BANDS[3]))
        )
    if "sex" in frame.columns:
        attributes["sex"] = pl.col("sex").cast(pl.String).fill_null(MISSING)
    if _present(frame, "polysubstance"):
        poly = pl.col("polysubstance").cast(pl.Boolean)
        attributes["polysubstance"] = (
            pl.when(poly.is_null())
            .then(pl.lit(MISSING))
            .when(poly)
            .then(pl.lit("yes"))
            .otherwise(pl.lit("no"))
        )
    if _present(frame, "deprivation_decile"):
        quintile = (pl.col("deprivation_decile").cast(pl.Int64) + 1) // 2
        attributes["deprivation quintile"] = quintile.replace_strict(
            dict(enumerate(QUINTILES, start=1)), default=MISSING, return_dtype=pl.String
        )
    if _present(frame, "ethnicity"):
        attributes["ethnicity"] = pl.col("ethnicity").cast(pl.String).fill_null(MISSING)
    return attributes


def _group_order(groups: list[str]) -> list[str]:
    """Age bands and quintiles in their natural order, others alphabetical, "missing" last."""
    natural = {g: i for i, g in enumerate(("all", *AGE_BANDS, *QUINTILES, "no", "yes"))}
    return sorted(groups, key=lambda g: (g == MISSING, natural.get(g, len(natural)), g))


def _group_stats(part: pl.DataFrame, limits: dict) -> dict:
    """Patient counts, observed and predicted risk, and the bootstrap metrics of one group."""
    y, p, w = (part[c].to_numpy() for c in ("_y", "_p", "_w"))
    ids = part["_pid"].to_numpy()
    n_patients = int(np.unique(ids).size)
    events = int(np.unique(ids[y == 1]).size)
    total = w.sum()
    row = {
        "n_patients": n_patients,
        "n_event_patients": events,
        "n_rows": int(y.size),
        "mean_predicted": float((w * p).sum() / total) if total > 0 else None,
        "observed": float((w * y).sum() / total) if total > 0 else None,
    }
    judgeable = events >= limits["min_event_patients"] and n_patients - events >= limits["min_event_patients"]
    metrics = group_metrics(y, p, w, ids, limits["n_boot"], limits["seed"]) if judgeable else {}
    for name in ("oe_ratio", "calibration_intercept", "auroc"):
        est, lo, hi = metrics.get(name, (None, None, None))
        row |= {name: _finite_or_none(est), f"{name}_lo": _finite_or_none(lo), f"{name}_hi": _finite_or_none(hi)}
    return row | {"judgeable": judgeable}


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def within_group_auroc(part: pl.DataFrame, attribute: str) -> float | None:
    """The phase's AUROC over pairs of rows in one group of `attribute` only: the groups' AUROCs
    averaged with weights Σw·y × Σw·(1−y), their (weighted) event / non-event pairs.

    A group's own AUROC can only judge pairs inside it, so it is compared with this, not with the
    phase's AUROC: when the attribute itself predicts relapse (polysubstance use does), the
    phase's AUROC also counts the easy pairs across groups, and every group's AUROC lies below
    it, with nothing wrong in any of them. None when no group holds both outcomes."""
    total = weight = 0.0
    for _, group in part.group_by(attribute):
        y, p, w = (group[c].to_numpy() for c in ("_y", "_p", "_w"))
        pairs = float((w * y).sum() * (w * (1 - y)).sum())
        if pairs > 0:
            total += pairs * auroc(y, p, w)
            weight += pairs
    return total / weight if weight > 0 else None


def _flag(row: dict, reference: float | None, limits: dict) -> tuple[str, str]:
    """The flag and a short note saying why: from the intervals, never from absolute gaps.
    `reference`: the phase's AUROC within groups of the row's attribute (`within_group_auroc`)."""
    if not row["judgeable"]:
        need = limits["min_event_patients"]
        return TOO_SMALL, (f"{row['n_event_patients']} event patients, "
                           f"{row['n_patients'] - row['n_event_patients']} without (need {need} of each)")
    notes = []
    lo, hi = row["oe_ratio_lo"], row["oe_ratio_hi"]
    if lo is not None and hi is not None and (lo > 1 or hi < 1):
        side = "more" if lo > 1 else "fewer"
        notes.append(f"{side} events than predicted: O/E {row['oe_ratio']:.2f} ({lo:.2f}–{hi:.2f})")
    if row["attribute"] != "all" and reference is not None and row["auroc_hi"] is not None \
            and row["auroc_hi"] < reference:
        notes.append(f"AUROC {row['auroc']:.3f} ({row['auroc_lo']:.3f}–{row['auroc_hi']:.3f}) "
                     f"below the phase's {reference:.3f} within {row['attribute']} groups")
    return (FLAG, "; ".join(notes)) if notes else (OK, "")


SUBGROUP_SCHEMA = {
    "phase": pl.String, "attribute": pl.String, "level": pl.String,
    "n_patients": pl.Int64, "n_event_patients": pl.Int64, "n_rows": pl.Int64,
    "mean_predicted": pl.Float64, "observed": pl.Float64,
    **{f"{m}{s}": pl.Float64 for m in ("oe_ratio", "calibration_intercept", "auroc") for s in ("", "_lo", "_hi")},
    "flag": pl.String, "note": pl.String,
}


def subgroup_table(
    oof: pl.DataFrame, min_event_patients: int = 10, n_boot: int = 200, seed: int = 0
) -> pl.DataFrame:
    """Per phase and subgroup: patients, event patients, O/E, calibration intercept and AUROC
    with 95% patient-bootstrap intervals, and a flag.

    `oof` holds out-of-fold rows: phase, patient_id, label (0/1; null = censored, left out),
    ipcw_weight, risk (calibrated prediction) and the patient attributes (age_at_intake, sex,
    and optional polysubstance, deprivation_decile, ethnicity). Counts are of patients: a
    patient counts once per group however many weekly rows they have, and an event patient
    has at least one row with label 1. Rates are IPCW-weighted; O/E = observed / predicted
    events. Flag: "too small to judge" when the group has fewer than `min_event_patients`
    patients with an event or without one (no metrics then); "flag" when the O/E interval
    excludes 1 or the AUROC's upper bound lies below the phase's AUROC within the groups of that
    attribute (`within_group_auroc`: pairs inside one group, as a group's own AUROC counts); else
    "ok".
    """
    required = {"phase", "patient_id", "label", "ipcw_weight", "risk"}
    if lacking := sorted(required - set(oof.columns)):
        raise ValueError(f"subgroup_table: out-of-fold frame lacks column(s) {lacking}")
    rows = oof.filter(pl.col("label").is_not_null())
    if rows["ipcw_weight"].null_count():
        raise ValueError("subgroup_table: uncensored rows with a null ipcw_weight")
    attributes = subgroup_attributes(rows)
    labelled = rows.select(
        pl.col("phase").cast(pl.String),
        pl.col("patient_id").cast(pl.String).alias("_pid"),
        pl.col("label").cast(pl.Float64).alias("_y"),
        pl.col("risk").cast(pl.Float64).alias("_p"),
        pl.col("ipcw_weight").cast(pl.Float64).alias("_w"),
        *[expr.alias(name) for name, expr in attributes.items()],
    )
    limits = {"min_event_patients": min_event_patients, "n_boot": n_boot, "seed": seed}
    out = []
    for phase in labelled["phase"].unique(maintain_order=True).to_list():
        part = labelled.filter(pl.col("phase") == phase)
        for attribute in attributes:
            reference = within_group_auroc(part, attribute) if attribute != "all" else None
            for level in _group_order(part[attribute].unique().to_list()):
                row = {"phase": phase, "attribute": attribute, "level": level,
                       **_group_stats(part.filter(pl.col(attribute) == level), limits)}
                row["flag"], row["note"] = _flag(row, reference, limits)
                row.pop("judgeable")
                out.append(row)
    return pl.DataFrame(out, schema=SUBGROUP_SCHEMA) if out else pl.DataFrame(schema=SUBGROUP_SCHEMA)
