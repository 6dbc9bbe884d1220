"""The scoring cohort against the training profile: PSI drift and physiological ranges.

Pure: frames and plain dicts in, frames and plain (JSON-serialisable) dicts out. NaN and null
both count as missing.

A profile bins each feature at the training quantiles. `edges` are the inner cut points, so
`k` cut points give `k + 1` right-closed bins, the first and last open-ended:
(−∞, e₀], (e₀, e₁], …, (e_{k−1}, +∞). Ties (counts, 0/1 flags) merge repeated cut points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

PSI_EPSILON = 1e-4
STABLE, MODERATE, MAJOR = "stable", "moderate shift", "major shift"

# Physiological plausibility by feature-name prefix (lo, hi inclusive), in the features' units.
# A prefix applies to level features only: names containing a DERIVED_TOKENS word (slopes,
# changes, ratios, counts, days, flags...) are skipped, since their scale is not the
# measurement's. Pass exact feature names instead to be precise: exact keys always win.
DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "bdnf_": (1.0, 100.0),  # serum BDNF, ng/mL
    "hrv_rmssd": (2.0, 250.0),  # RMSSD, ms
    "hrv_sdnn": (5.0, 300.0),  # SDNN, ms
    "hrv_mean_hr": (30.0, 200.0),  # mean heart rate, beats per minute
}
DERIVED_TOKENS = frozenset(
    "slope change pct percent trend delta diff days day since count n num per ratio z zscore "
    "sd std cv log missing flag is has any below above low high available measured frac "
    "fraction rel relative rank".split()
)


def _finite(series: pl.Series) -> np.ndarray:
    values = series.cast(pl.Float64).drop_nulls().to_numpy()
    return values[np.isfinite(values)]


def _bin_counts(edges: Sequence[float], values: np.ndarray) -> np.ndarray:
    """Counts in the right-closed bins (−∞, e₀], (e₀, e₁], …, (e_last, +∞)."""
    index = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    return np.bincount(index, minlength=len(edges) + 1)


def psi(expected_edges: Sequence[float], expected_props: Sequence[float], actual_values) -> float:
    """Population stability index of `actual_values` against the training bins.

    PSI = Σ (a − e) · ln(a / e) over bins, with both proportions floored at 1e-4 so empty bins
    stay finite. Missing values are left out (the drift table reports them apart); NaN when no
    value remains.

    >>> psi([0.0], [0.5, 0.5], [-1.0, 1.0])
    0.0
    """
    expected = np.asarray(expected_props, dtype=float)
    if len(expected) != len(expected_edges) + 1:
        raise ValueError(f"{len(expected_edges)} edges need {len(expected_edges) + 1} proportions")
    values = np.asarray(actual_values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan
    actual = _bin_counts(expected_edges, values) / values.size
    e, a = np.maximum(expected, PSI_EPSILON), np.maximum(actual, PSI_EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_status(value: float) -> str:
    """stable below 0.1, moderate shift below 0.25, else major shift (the usual PSI rule)."""
    return STABLE if value < 0.1 else MODERATE if value < 0.25 else MAJOR


def training_profile(frame: pl.DataFrame, feature_names: Sequence[str], bins: int = 10) -> dict:
    """Per feature: quantile cut points, bin proportions, missing fraction, min and max.

    JSON-serialisable; the train stage logs it and the audit compares scores against it.
    """
    if frame.height == 0:
        raise ValueError("training_profile needs at least one row")
    quantiles = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    profile = {}
    for name in feature_names:
        values = _finite(frame[name])
        entry = {"edges": [], "proportions": [], "min": None, "max": None}
        if values.size:
            edges = np.unique(np.quantile(values, quantiles))
            entry = {
                "edges": [float(x) for x in edges],
                "proportions": [float(x) for x in _bin_counts(edges, values) / values.size],
                "min": float(values.min()),
                "max": float(values.max()),
            }
        profile[name] = {**entry, "missing_fraction": 1.0 - values.size / frame.height}
    return profile


def drift_table(profile: Mapping[str, Mapping], frame: pl.DataFrame) -> pl.DataFrame:
    """PSI and missingness of each profiled feature in the scoring cohort `frame`.

    Status: "stable" (PSI < 0.1), "moderate shift" (< 0.25), "major shift"; "absent now" when
    the column is missing from `frame`, "no values now" / "no training values" when a side is
    empty (PSI null then).
    """
    rows = []
    for name, entry in profile.items():
        row = {
            "feature": name,
            "psi": None,
            "missing_fraction_train": entry["missing_fraction"],
            "missing_fraction_now": None,
        }
        if name not in frame.columns:
            rows.append({**row, "status": "absent now"})
            continue
        values = _finite(frame[name])
        row["missing_fraction_now"] = 1.0 - values.size / frame.height if frame.height else None
        if not entry["proportions"]:
            rows.append({**row, "status": "no training values"})
            continue
        value = psi(entry["edges"], entry["proportions"], values)
        if math.isnan(value):
            rows.append({**row, "status": "no values now"})
            continue
        rows.append({**row, "psi": value, "status": psi_status(value)})
    schema = {
        "feature": pl.String,
        "psi": pl.Float64,
        "missing_fraction_train": pl.Float64,
        "missing_fraction_now": pl.Float64,
        "status": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def _is_level_feature(name: str, prefix: str) -> bool:
    return not (set(name[len(prefix) :].strip("_").split("_")) & DERIVED_TOKENS)


def match_ranges(
    columns: Sequence[str], ranges: Mapping[str, tuple[float, float]] = DEFAULT_RANGES
) -> dict[str, tuple[float, float]]:
    """The (lo, hi) range of each column: an exact key wins, else the longest matching prefix.

    >>> match_ranges(["bdnf_last_ng_ml", "bdnf_change_pct", "hrv_rmssd_mean_28d", "age"])
    {'bdnf_last_ng_ml': (1.0, 100.0), 'hrv_rmssd_mean_28d': (2.0, 250.0)}
    """
    matched = {}
    for column in columns:
        if column in ranges:
            matched[column] = tuple(ranges[column])
            continue
        prefixes = [k for k in ranges if column.startswith(k) and _is_level_feature(column, k)]
        if prefixes:
            matched[column] = tuple(ranges[max(prefixes, key=len)])
    return matched


def out_of_range(
    frame: pl.DataFrame, ranges: Mapping[str, tuple[float, float]] = DEFAULT_RANGES
) -> pl.DataFrame:
    """Per matched feature: how many present values fall below lo or above hi (inclusive range)."""
    rows = []
    for name, (lo, hi) in match_ranges(frame.columns, ranges).items():
        values = _finite(frame[name])
        below, above = int((values < lo).sum()), int((values > hi).sum())
        rows.append(
            {
                "feature": name,
                "lo": float(lo),
                "hi": float(hi),
                "n_values": int(values.size),
                "n_below": below,
                "n_above": above,
                "n_out": below + above,
                "fraction_out": (below + above) / values.size if values.size else None,
            }
        )
    schema = {
        "feature": pl.String,
        "lo": pl.Float64,
        "hi": pl.Float64,
        "n_values": pl.Int64,
        "n_below": pl.Int64,
        "n_above": pl.Int64,
        "n_out": pl.Int64,
        "fraction_out": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)
