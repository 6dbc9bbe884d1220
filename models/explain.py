"""Exact TreeSHAP explanations in log-odds, and the reasons shown to clinicians.

For a booster, `contributions` gives one value per feature and row plus a base value such that
base + sum(shap) equals the model's margin (log-odds) for that row.
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np
import xgboost

from models.link import sigmoid
from models.treeshap import ShallowTreeExplainer, UnsupportedBooster

ADDITIVITY_TOLERANCE = 1e-4

# booster -> (its boosted rounds when the entry was made, its explainer or None if unsupported).
# Weak keys: an entry lives exactly as long as its booster, and (unlike an attribute set on the
# booster) never travels with a pickled booster; an id() key could be reused by a new booster.
_EXPLAINERS: weakref.WeakKeyDictionary[xgboost.Booster, tuple[int, ShallowTreeExplainer | None]] = (
    weakref.WeakKeyDictionary()
)


def _dmatrix(X: np.ndarray, base_margin: np.ndarray | None = None) -> xgboost.DMatrix:
    return xgboost.DMatrix(np.asarray(X, dtype=np.float32), missing=np.nan, base_margin=base_margin)


def shallow_explainer(booster: xgboost.Booster) -> ShallowTreeExplainer | None:
    """The booster's table-based TreeSHAP explainer, built on first use and reused after; None
    when its trees are too deep (or otherwise not covered) and `pred_contribs` must be used.

    The entry is rebuilt if the booster gains rounds. A booster is otherwise assumed not to be
    changed in place once explained (`load_model` into the same object is not detected; this
    project always loads into a fresh `Booster`).
    """
    rounds = booster.num_boosted_rounds()
    cached = _EXPLAINERS.get(booster)
    if cached is not None and cached[0] == rounds:
        return cached[1]
    try:
        explainer = ShallowTreeExplainer.from_booster(booster, verify=True)
    except UnsupportedBooster as exc:
        if exc.unexpected:
            warnings.warn(f"TreeSHAP tables disagree with XGBoost; using pred_contribs: {exc}", stacklevel=2)
        explainer = None
    except (KeyError, IndexError, TypeError, ValueError) as exc:  # a model JSON this code does not know
        warnings.warn(f"could not tabulate the booster for TreeSHAP; using pred_contribs: {exc!r}", stacklevel=2)
        explainer = None
    _EXPLAINERS[booster] = (rounds, explainer)
    return explainer


def contributions(
    booster: xgboost.Booster, X: np.ndarray, base_margin: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(shap [n, k], base [n]): exact TreeSHAP values in log-odds for each row of X.

    The values of XGBoost's `pred_contribs` (whose last column is base), computed by look-up
    tables in float64 when every tree is shallow enough (`models.treeshap`: 1.3-2x the cost of a
    plain prediction, against ~16x for pred_contribs; benchmarks/bench_shap.py) and by XGBoost
    otherwise; the two agree to XGBoost's float32 rounding. `base_margin` [n], if given,
    replaces the booster's base margin; it shifts base only.
    """
    explainer = shallow_explainer(booster)
    if explainer is not None:
        return explainer.shap_values(X, base_margin)
    out = booster.predict(_dmatrix(X, base_margin), pred_contribs=True)
    return out[:, :-1].astype(np.float64), out[:, -1].astype(np.float64)


def margin(booster: xgboost.Booster, X: np.ndarray) -> np.ndarray:
    """The model's log-odds for each row of X.

    Predicted in place from the float32 array (NaN missing), without building a `DMatrix`: the
    same trees on the same float32 values, so the same margins, bit for bit, at about half the
    cost (the `DMatrix` copy was most of it).
    """
    X32 = np.asarray(X, dtype=np.float32)
    out = booster.inplace_predict(X32, predict_type="margin", missing=np.nan)
    return np.asarray(out, dtype=np.float64).reshape(X32.shape[0])  # (0, 0) for no rows otherwise


def check_additivity(
    shap_values: np.ndarray, base: np.ndarray, margins: np.ndarray,
    tolerance: float = ADDITIVITY_TOLERANCE,
) -> None:
    """Raise ValueError unless base + sum(shap) equals the margin within `tolerance`."""
    gap = np.abs(shap_values.sum(axis=1) + base - margins)
    if gap.size and gap.max() > tolerance:
        raise ValueError(
            f"SHAP values do not add up to the margin: largest gap {gap.max():.2e} "
            f"(row {int(gap.argmax())}) exceeds {tolerance:.0e}"
        )


def effect_on_probability(margin: np.ndarray, shap_value: np.ndarray) -> np.ndarray:
    """Change in (raw) probability due to one feature: sigmoid(margin) - sigmoid(margin - shap).

    That is the predicted probability minus what it would be with this feature's contribution
    removed and every other contribution held, so it is positive for a risk-raising feature.
    Broadcasts: pass margin[:, None] with an [n, k] shap matrix for all features at once.

    >>> round(float(effect_on_probability(0.0, 0.0)), 6)
    0.0
    """
    margin = np.asarray(margin, dtype=np.float64)
    return sigmoid(margin) - sigmoid(margin - np.asarray(shap_value, dtype=np.float64))


def top_reasons(shap_row: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature indices of the up-to-k largest positive contributions (risk-raising, largest
    first) and up-to-k most negative ones (protective, most negative first). Zeros are neither.

    >>> top_reasons(np.array([0.2, -0.5, 0.0, 0.7, -0.1]), 2)
    (array([3, 0]), array([1, 4]))
    """
    shap_row = np.asarray(shap_row, dtype=np.float64)
    order = np.argsort(-shap_row, kind="stable")
    raising = order[shap_row[order] > 0][:k]
    order = np.argsort(shap_row, kind="stable")
    protective = order[shap_row[order] < 0][:k]
    return raising, protective


def top_reasons_batch(shap_values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`top_reasons` for every row at once: two [n, k] index arrays, -1 where a row has fewer
    than k contributions of that sign."""
    shap_values = np.asarray(shap_values, dtype=np.float64)
    k = min(k, shap_values.shape[1])
    results = []
    for sign in (1.0, -1.0):
        signed = sign * shap_values
        order = np.argsort(-signed, axis=1, kind="stable")[:, :k]
        picked = np.take_along_axis(signed, order, axis=1)
        results.append(np.where(picked > 0, order, -1))
    return results[0], results[1]
