"""Turn feature rows into the scores a clinic reads: calibrated risk, band and SHAP reasons.

Pure and shared by batch scoring (`relapse score`) and the served MLflow model, so REST and
batch give the same answer. Scales: `risk_30d` is a calibrated probability (0-1);
`*_shap` values are exact TreeSHAP contributions in log-odds of the phase model's raw
(uncalibrated) margin, adding up with `base_value` to `margin`; `*_effect` is the change in
the raw probability from that one contribution: sigmoid(margin) - sigmoid(margin - shap).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import polars as pl

from models.bundle import ModelBundle
from models.explain import effect_on_probability, top_reasons_batch

Describe = Callable[[str, object, Mapping[str, object]], str]
REASON_FIELDS = ("feature", "value", "shap", "effect")


def risk_bands(risk: np.ndarray, bands: Mapping[str, float]) -> np.ndarray:
    """The band each risk falls in: the last band whose lower bound it reaches.

    >>> risk_bands(np.array([0.05, 0.10, 0.4]), {"low": 0.0, "moderate": 0.1, "high": 0.25}).tolist()
    ['low', 'moderate', 'high']
    """
    names = np.array(list(bands), dtype=object)
    bounds = np.array(list(bands.values()), dtype=np.float64)
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
    describe: Describe,
) -> tuple[pl.DataFrame, np.ndarray]:
    """Score `rows` (`phase`, `day` and the bundle's feature columns).

    Returns the output columns (see `output_columns`) in row order, and the full SHAP matrix
    [n, k] for callers that keep every value. Reasons are the largest risk-raising
    contributions, largest first; the protective factor is the most risk-lowering one.
    """
    X = rows.select(bundle.feature_names).cast(pl.Float64).to_numpy()
    out = bundle.predict(X, rows["phase"].to_numpy(), rows["day"].cast(pl.Float64).to_numpy())
    shap, margin = out["shap"], out["margin"]
    raising, protective = top_reasons_batch(shap, max(n_reasons, 1))
    columns: dict[str, object] = {
        "risk_30d": out["risk"],
        "risk_band": risk_bands(out["risk"], bands).astype(str),
    }
    records = rows.select(bundle.feature_names).to_dicts()
    for i in range(n_reasons):
        idx = raising[:, i] if i < raising.shape[1] else np.full(len(rows), -1)
        columns.update(
            _reason_columns(
                f"reason_{i + 1}", f"reason_{i + 1}", idx, X, shap, margin, bundle.feature_names, records, describe
            )
        )
    columns.update(
        _reason_columns(
            "protective",
            "protective_factor",
            protective[:, 0],
            X,
            shap,
            margin,
            bundle.feature_names,
            records,
            describe,
        )
    )
    columns["margin"], columns["base_value"] = margin, out["base"]
    return pl.DataFrame(columns).select(output_columns(n_reasons)), shap


def _reason_columns(
    prefix: str,
    sentence_column: str,
    idx: np.ndarray,
    X: np.ndarray,
    shap: np.ndarray,
    margin: np.ndarray,
    names: Sequence[str],
    records: list[dict],
    describe: Describe,
) -> dict[str, pl.Series]:
    has = idx >= 0
    safe = np.where(has, idx, 0)
    rows = np.arange(len(idx))
    value = np.where(has, X[rows, safe], np.nan)
    contribution = np.where(has, shap[rows, safe], np.nan)
    effect = np.where(has, effect_on_probability(margin, np.nan_to_num(contribution)), np.nan)
    feature = [names[j] if ok else None for j, ok in zip(safe, has, strict=True)]
    sentence = [
        describe(f, None if np.isnan(v) else float(v), records[r]) if f is not None else None
        for r, (f, v) in enumerate(zip(feature, value, strict=True))
    ]
    return {
        sentence_column: pl.Series(sentence, dtype=pl.String),
        f"{prefix}_feature": pl.Series(feature, dtype=pl.String),
        f"{prefix}_value": pl.Series(value).fill_nan(None),
        f"{prefix}_shap": pl.Series(contribution).fill_nan(None),
        f"{prefix}_effect": pl.Series(effect).fill_nan(None),
    }
