"""Challenger against champion on the same labelled rows: the evidence `relapse promote` reads.

Pure: one frame of paired rows in (phase, patient_id, label, ipcw_weight, risk_challenger,
risk_champion), a per-phase table and a verdict out. Per phase, the paired patient bootstrap
(`models.metrics.paired_differences`) gives challenger − champion differences in AUROC and in
|calibration intercept| with 95% intervals. The challenger is refused when, in any phase with
at least `min_event_patients` patients with an event, it is worse beyond the interval: the whole
AUROC-difference interval below 0, or the whole |intercept|-difference interval above 0. Phases
with fewer event patients are reported but cannot refuse: their intervals say too little.
Pooled AUROC is never the criterion: it mostly measures the phase mix.

No evidence is not evidence of "no worse": the challenger is also refused when no phase has
enough event patients to be judged, and when a judged phase's interval cannot be computed (no
bootstrap resamples, or every resample undefined). Either would otherwise promote unexamined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from models.metrics import paired_differences

COLUMNS = ("phase", "patient_id", "label", "ipcw_weight", "risk_challenger", "risk_champion")


@dataclass(frozen=True)
class Comparison:
    table: pl.DataFrame  # one row per phase and metric: difference, lo, hi, event patients, judged, worse
    reasons: list[str]  # why the challenger is refused; empty when it may be promoted

    @property
    def refused(self) -> bool:
        return bool(self.reasons)


def _reason(phase: str, metric: str, est: float, lo: float, hi: float) -> str:
    if metric == "auroc":
        return (f"phase '{phase}': AUROC {-est:.3f} lower than the champion's "
                f"(95% CI of the difference {lo:+.3f} to {hi:+.3f})")
    return (f"phase '{phase}': calibration intercept {est:.3f} further from 0 than the champion's "
            f"(95% CI of the difference {lo:+.3f} to {hi:+.3f})")


def compare(rows: pl.DataFrame, n_boot: int, seed: int, min_event_patients: int) -> Comparison:
    """Paired per-phase comparison of the two risk columns on the same rows (see the module docstring)."""
    if lacking := sorted(set(COLUMNS) - set(rows.columns)):
        raise ValueError(f"comparison rows lack column(s) {lacking}")
    labelled = rows.filter(pl.col("label").is_not_null())
    out, reasons = [], []
    for phase in labelled["phase"].unique(maintain_order=True).to_list():
        part = labelled.filter(pl.col("phase") == phase)
        y = part["label"].cast(pl.Float64).to_numpy()
        ids = part["patient_id"].to_numpy()
        event_patients = int(np.unique(ids[y == 1]).size)
        judged = event_patients >= min_event_patients and event_patients < np.unique(ids).size
        diffs = paired_differences(
            y, part["risk_challenger"].to_numpy(), part["risk_champion"].to_numpy(),
            part["ipcw_weight"].to_numpy(), ids, n_boot, seed, names=("auroc", "calibration_intercept"),
        )
        for metric, (est, lo, hi) in diffs.items():
            worse = judged and bool(hi < 0 if metric == "auroc" else lo > 0)
            if worse:
                reasons.append(_reason(phase, metric, est, lo, hi))
            elif judged and not (np.isfinite(lo) and np.isfinite(hi)):
                reasons.append(f"phase '{phase}': no interval for the {metric.replace('_', ' ')} difference "
                               f"({n_boot} bootstrap resample(s)), so it cannot be shown not to be worse")
            out.append({"phase": phase, "metric": metric, "difference": est, "lo": lo, "hi": hi,
                        "rows": part.height, "patients": int(np.unique(ids).size),
                        "event_patients": event_patients, "judged": judged, "worse": worse})
    if not any(row["judged"] for row in out):
        reasons.append(f"no phase has at least {min_event_patients} patients with an event (and some without) "
                       "on these rows, so no phase could be judged")
    schema = {"phase": pl.String, "metric": pl.String, "difference": pl.Float64, "lo": pl.Float64,
              "hi": pl.Float64, "rows": pl.Int64, "patients": pl.Int64, "event_patients": pl.Int64,
              "judged": pl.Boolean, "worse": pl.Boolean}
    return Comparison(pl.DataFrame(out, schema=schema), reasons)
