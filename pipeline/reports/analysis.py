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
from sklearn.metrics import roc_auc_score

from pipeline.reports.drift import (
    DEFAULT_RANGES,
    drift_table,
    match_ranges,
    out_of_range,
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
    "psi",
    "subgroup_table",
    "training_profile",
    "tripod_checklist",
]

DEFAULT_THRESHOLDS = np.round(np.arange(0.01, 0.61, 0.01), 6)
MISSING = "missing"
TOO_SMALL = "too small to judge"
FLAG = "flag: large gap"
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


def _group_stats(y: np.ndarray, p: np.ndarray, w: np.ndarray, min_n: int, min_events: int) -> dict:
    n, events = len(y), int(y.sum())
    total = w.sum()
    observed = float((w * y).sum() / total) if total > 0 else None
    predicted = float((w * p).sum() / total) if total > 0 else None
    judgeable = n >= min_n and events >= min_events
    auroc = None
    if judgeable and 0 < events < n:
        auroc = float(roc_auc_score(y, p, sample_weight=w))
    citl = None if observed is None else observed - predicted
    return {
        "n": n,
        "events": events,
        "auroc": auroc,
        "mean_predicted": predicted,
        "observed": observed,
        "calibration_in_the_large": citl,
        "judgeable": judgeable,
    }


def _status(row: dict, phase_auroc: float | None, limits: dict) -> tuple[str, str]:
    """The status and a short note saying why."""
    if not row["judgeable"]:
        short = [f"n {row['n']} < {limits['min_n']}"] if row["n"] < limits["min_n"] else []
        if row["events"] < limits["min_events"]:
            short.append(f"events {row['events']} < {limits['min_events']}")
        return TOO_SMALL, "; ".join(short)
    gap, auroc_gap = limits["gap"], limits["auroc_gap"]
    notes = []
    citl = row["calibration_in_the_large"]
    if citl is not None and abs(citl) > gap:
        notes.append(f"observed − predicted = {citl:+.3f}")
    if (
        row["auroc"] is not None
        and phase_auroc is not None
        and row["auroc"] < phase_auroc - auroc_gap
    ):
        notes.append(f"AUROC {row['auroc']:.3f} vs {phase_auroc:.3f} for the phase")
    return (FLAG, "; ".join(notes)) if notes else (OK, "")


def subgroup_table(
    oof: pl.DataFrame,
    min_n: int = 100,
    min_events: int = 10,
    gap: float = 0.10,
    auroc_gap: float = 0.10,
) -> pl.DataFrame:
    """Per phase and subgroup: n, events, AUROC and calibration-in-the-large, with a status.

    `oof` holds out-of-fold rows: phase, label (0/1; null = censored, left out), ipcw_weight,
    risk (calibrated prediction) and the patient attributes (age_at_intake, sex, and optional
    polysubstance, deprivation_decile, ethnicity). `n` counts landmark rows, not patients.
    AUROC and mean risk are IPCW-weighted; observed is the weighted event rate and
    calibration_in_the_large = observed − mean_predicted. Status: "too small to judge" when
    n < min_n or events < min_events (AUROC then null); "flag: large gap" when
    |calibration_in_the_large| > gap or AUROC is more than `auroc_gap` below the phase's
    overall AUROC; else "ok". Within each (phase, attribute) the groups' n add up to the
    phase's total ("missing" collects nulls).
    """
    required = {"phase", "label", "ipcw_weight", "risk"}
    if lacking := sorted(required - set(oof.columns)):
        raise ValueError(f"subgroup_table: out-of-fold frame lacks column(s) {lacking}")
    rows = oof.filter(pl.col("label").is_not_null())
    if rows["ipcw_weight"].null_count():
        raise ValueError("subgroup_table: uncensored rows with a null ipcw_weight")
    attributes = subgroup_attributes(rows)
    labelled = rows.select(
        pl.col("phase").cast(pl.String),
        pl.col("label").cast(pl.Float64).alias("_y"),
        pl.col("risk").cast(pl.Float64).alias("_p"),
        pl.col("ipcw_weight").cast(pl.Float64).alias("_w"),
        *[expr.alias(name) for name, expr in attributes.items()],
    )
    limits = {"min_n": min_n, "min_events": min_events, "gap": gap, "auroc_gap": auroc_gap}
    out = []
    for phase in labelled["phase"].unique(maintain_order=True).to_list():
        part = labelled.filter(pl.col("phase") == phase)
        phase_auroc = None
        for attribute in attributes:
            for group in _group_order(part[attribute].unique().to_list()):
                sub = part.filter(pl.col(attribute) == group)
                stats = _group_stats(
                    sub["_y"].to_numpy(),
                    sub["_p"].to_numpy(),
                    sub["_w"].to_numpy(),
                    min_n,
                    min_events,
                )
                if attribute == "all":
                    phase_auroc = stats["auroc"]
                status, note = _status(stats, phase_auroc, limits)
                stats.pop("judgeable")
                out.append(
                    {
                        "phase": phase,
                        "attribute": attribute,
                        "group": group,
                        **stats,
                        "status": status,
                        "note": note,
                    }
                )
    schema = {
        "phase": pl.String,
        "attribute": pl.String,
        "group": pl.String,
        "n": pl.Int64,
        "events": pl.Int64,
        "auroc": pl.Float64,
        "mean_predicted": pl.Float64,
        "observed": pl.Float64,
        "calibration_in_the_large": pl.Float64,
        "status": pl.String,
        "note": pl.String,
    }
    return pl.DataFrame(out, schema=schema) if out else pl.DataFrame(schema=schema)
