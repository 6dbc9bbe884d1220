"""Minimum sample size for developing a binary-outcome prediction model (Riley et al., BMJ
2020;368:m441), per phase, for TRIPOD+AI item 10.

The three criteria for a model with `P` candidate predictor parameters and outcome proportion φ:
(i) expected uniform shrinkage S ≥ 0.9: n = P / ((S − 1) · ln(1 − R²_CS / S));
(ii) optimism in Nagelkerke's R² ≤ δ = 0.05: the same formula with
     S = R²_CS / (R²_CS + δ · max R²_CS);
(iii) the overall risk estimated within ± 0.05: n = (1.96 / 0.05)² · φ (1 − φ).
max R²_CS = 1 − exp(2 · (φ ln φ + (1 − φ) ln(1 − φ))). With no external estimate of the model's
fit, the anticipated R²_CS is the conservative 15 % of max R²_CS that Riley et al. suggest.

Where they apply here: the criteria count independent participants, and landmark rows of one
patient are correlated, so the available n is the phase's analysed patients, not its rows,
and φ is the phase's row-level event proportion (what the phase model predicts). A fallback
(constant-rate) phase estimates one parameter; only criterion (iii) applies to it.
"""

from __future__ import annotations

import math

SHRINKAGE = 0.9
OPTIMISM = 0.05
MARGIN = 0.05
R2_SHARE_OF_MAX = 0.15


def max_r2_cs(prevalence: float) -> float:
    """Largest Cox–Snell R² a model can reach at this outcome proportion."""
    phi = prevalence
    return 1.0 - math.exp(2.0 * (phi * math.log(phi) + (1.0 - phi) * math.log(1.0 - phi)))


def _n_for_shrinkage(parameters: int, r2: float, shrinkage: float) -> int:
    return math.ceil(parameters / ((shrinkage - 1.0) * math.log(1.0 - r2 / shrinkage)))


def riley_minimum_n(parameters: int, prevalence: float, r2_cs: float | None = None) -> dict:
    """Required n under each criterion and overall (the largest); see the module docstring.

    >>> riley_minimum_n(10, 0.5)["criterion_iii"]
    385
    """
    if not 0.0 < prevalence < 1.0:
        raise ValueError(f"outcome proportion must lie strictly between 0 and 1, got {prevalence}")
    r2_max = max_r2_cs(prevalence)
    r2 = R2_SHARE_OF_MAX * r2_max if r2_cs is None else r2_cs
    shrinkage_ii = r2 / (r2 + OPTIMISM * r2_max)
    out = {
        "parameters": parameters,
        "prevalence": prevalence,
        "anticipated_r2_cs": r2,
        "criterion_i": _n_for_shrinkage(parameters, r2, SHRINKAGE) if parameters > 1 else 0,
        "criterion_ii": _n_for_shrinkage(parameters, r2, shrinkage_ii) if parameters > 1 else 0,
        "criterion_iii": math.ceil((1.96 / MARGIN) ** 2 * prevalence * (1.0 - prevalence)),
    }
    out["required_n"] = max(out["criterion_i"], out["criterion_ii"], out["criterion_iii"])
    return out


def phase_sample_sizes(phase_counts: list[dict], n_features: int) -> list[dict]:
    """Per phase: Riley's minimum n against the analysed patients; `met` says which is larger.

    `phase_counts` rows carry phase, rows, patients, events (event rows) and `model`
    (xgboost or constant_rate). A phase without both outcomes gets no requirement (null).
    """
    out = []
    for row in phase_counts:
        rows, events = int(row.get("rows") or 0), int(row.get("events") or 0)
        base = {"phase": row["phase"], "available_patients": int(row.get("patients") or 0)}
        if rows == 0 or events in (0, rows):
            out.append({**base, "required_n": None, "met": None})
            continue
        parameters = 1 if row.get("model") == "constant_rate" else n_features
        need = riley_minimum_n(parameters, events / rows)
        out.append({**base, **need, "met": base["available_patients"] >= need["required_n"]})
    return out
