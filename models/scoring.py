"""Turn feature rows into the scores a clinic reads: calibrated risk, band and SHAP reasons.

Pure and shared by batch scoring (`relapse score`), the audit and the served MLflow model, so
REST and batch give the same answer. Which contributions become reasons, and their sentences,
follow the reason policy (`features.reasons`: kinds meant for action, one reason per concept,
a minimum effect, nothing from a group the scoring data lacks), computed column-wise.

Scales: `risk_30d` is a calibrated probability (0-1). `reason_i_shap` is the concept's summed
exact TreeSHAP contribution in log-odds of the phase model's raw (uncalibrated) margin;
`reason_i_effect` the change in the raw probability from it, sigmoid(margin) -
sigmoid(margin - shap); `reason_i_feature`/`_value` the column whose sentence is shown. These
are rounded for reading (value 2 decimals, shap 3, effect 4); the full SHAP matrix, which adds up
with `base_value` to `margin`, is returned (and written by `--shap-out`) unrounded.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import polars as pl

from features.reasons import DEFAULT_MIN_EFFECT, Choice, ReasonPolicy, choose, render, representatives
from models.bundle import ModelBundle

REASON_FIELDS = ("feature", "value", "shap", "effect")


def risk_bands(risk: np.ndarray, bands: Mapping[str, float]) -> np.ndarray:
    """The band each risk falls in: the highest band whose lower bound it reaches.

    Bands are ordered by their bounds, not by key order: the bundle stores its metadata as JSON
    with sorted keys, so the served model reads them as high, low, moderate.

    >>> risk_bands(np.array([0.05, 0.10, 0.4]), {"high": 0.25, "low": 0.0, "moderate": 0.1}).tolist()
    ['low', 'moderate', 'high']
    """
    ordered = sorted(bands.items(), key=lambda item: item[1])
    names = np.array([name for name, _ in ordered], dtype=object)
    bounds = np.array([bound for _, bound in ordered], dtype=np.float64)
    return names[np.searchsorted(bounds, risk, side="right") - 1]


def output_columns(n_reasons: int) -> list[str]:
    reasons = [
        f"reason_{i}{'' if f is None else '_' + f}" for i in range(1, n_reasons + 1) for f in (None, *REASON_FIELDS)
    ]
    protective = ["protective_factor", *(f"protective_{f}" for f in REASON_FIELDS)]
    return ["risk_30d", "risk_band", *reasons, *protective, "margin", "base_value"]


def explain_scores(
    bundle: ModelBundle,
    rows: pl.DataFrame,
    n_reasons: int,
    bands: Mapping[str, float],
    policy: ReasonPolicy,
    min_effect: float = DEFAULT_MIN_EFFECT,
    unavailable: Collection[str] = (),
) -> tuple[pl.DataFrame, np.ndarray]:
    """Score `rows` (`phase`, `day` and the bundle's feature columns).

    Returns the output columns (see `output_columns`) in row order, and the full SHAP matrix
    [n, k]. Reasons are the largest risk-raising concepts, largest first; the protective factor
    the most risk-lowering one; `unavailable` names feature groups absent from the data. Rows of
    a phase whose reported risk no feature moves (`PhaseModel.explains`) get no reasons.
    """
    X = rows.select(bundle.feature_names).cast(pl.Float64).to_numpy()
    out = bundle.predict(X, rows["phase"].to_numpy(), rows["day"].cast(pl.Float64).to_numpy())
    shap, margin = out["shap"], out["margin"]
    choice = choose(policy, shap, margin, n_reasons, min_effect, unavailable)
    mute = np.isin(rows["phase"].to_numpy(), [p for p, pm in bundle.phase_models.items() if not pm.explains])
    choice.reasons[mute], choice.protective[mute] = -1, -1  # a risk no feature moves has no reasons
    columns: dict[str, object] = {
        "risk_30d": out["risk"],
        "risk_band": risk_bands(out["risk"], bands).astype(str),
    }
    slots = [choice.reasons[:, i] if i < choice.reasons.shape[1] else np.full(len(rows), -1) for i in range(n_reasons)]
    concepts = np.column_stack([*slots, choice.protective])
    features = representatives(policy, concepts, shap, X)
    names = [*(f"reason_{i + 1}" for i in range(n_reasons)), "protective"]
    for i, prefix in enumerate(names):
        sentence = "protective_factor" if prefix == "protective" else prefix
        columns.update(_reason_columns(prefix, sentence, concepts[:, i], features[:, i], choice, policy, X))
    columns["margin"], columns["base_value"] = margin, out["base"]
    return pl.DataFrame(columns).select(output_columns(n_reasons)), shap


def _reason_columns(
    prefix: str,
    sentence_column: str,
    concept: np.ndarray,
    feature: np.ndarray,
    choice: Choice,
    policy: ReasonPolicy,
    X: np.ndarray,
) -> dict[str, pl.Series]:
    has = concept >= 0
    value, contribution, effect = (np.full(len(concept), np.nan) for _ in range(3))
    if has.any():
        rows = np.flatnonzero(has)
        value[rows] = X[rows, feature[rows]]
        contribution[rows] = choice.concept_shap[rows, concept[rows]]
        effect[rows] = choice.effect[rows, concept[rows]]
    names = pl.Series([*policy.feature_names, None], dtype=pl.String)  # index -1: no feature
    return {
        sentence_column: render(policy, feature, X),
        f"{prefix}_feature": names.gather(np.where(feature >= 0, feature, len(names) - 1)),
        f"{prefix}_value": pl.Series(np.round(value, 2)).fill_nan(None),
        f"{prefix}_shap": pl.Series(np.round(contribution, 3)).fill_nan(None),
        f"{prefix}_effect": pl.Series(np.round(effect, 4)).fill_nan(None),
    }
