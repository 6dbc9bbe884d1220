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
from scipy.stats import chi2

PSI_EPSILON = 1e-4
STABLE, MODERATE, MAJOR = "stable", "moderate shift", "major shift"
NO_FLAG, MINOR_FLAG, MAJOR_FLAG = "none", "minor", "major"
PSI_MINOR, PSI_MAJOR = 0.10, 0.25
MISSING_SHIFT = 0.10
DRIFT_MIN_N = 100
DRIFT_SCHEMA = {
    "phase": pl.String, "feature": pl.String, "psi": pl.Float64, "psi_noise": pl.Float64,
    "missing_share_train": pl.Float64, "missing_share_scored": pl.Float64, "n_train": pl.Int64,
    "n_scored": pl.Int64, "missing_shift": pl.Boolean, "flag": pl.String, "note": pl.String,
}

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


def phase_profiles(frame: pl.DataFrame, feature_names: Sequence[str], bins: int = 10) -> dict:
    """The training profile per recovery phase: `{"by_phase": {phase: {"rows", "patients",
    "features": training_profile(...)}}}`.

    Per phase because the training landmark table and a scoring cohort mix phases differently
    (many weekly rows per patient in late phases, one row per patient when scoring): a pooled
    profile flags the phase mix, not a shift. `patients` is the effective sample size, since
    one patient's weekly rows are correlated.
    """
    out = {}
    for (phase,), part in frame.group_by("phase", maintain_order=True):
        if phase is None or part.height == 0:
            continue
        out[str(phase)] = {
            "rows": part.height,
            "patients": part["patient_id"].n_unique() if "patient_id" in part.columns else part.height,
            "features": training_profile(part, feature_names, bins),
        }
    return {"by_phase": out}


def psi_noise(n_bins: int, n_expected: int, n_actual: int) -> float:
    """The PSI two samples of these sizes from one distribution exceed 5 % of the time.

    n·PSI between two samples of one distribution is close to a chi-square with (bins − 1)
    degrees of freedom scaled by the harmonic sample size, so PSI ≈ χ²₀.₉₅(bins − 1) ·
    (1/n_expected + 1/n_actual). A PSI below threshold + this allowance is indistinguishable
    from sampling noise (a PSI of 3 on 12 values says nothing).
    """
    if n_expected <= 0 or n_actual <= 0:
        return math.inf
    return float(chi2.ppf(0.95, max(n_bins - 1, 1)) * (1.0 / n_expected + 1.0 / n_actual))


def _value_flag(value: float, noise: float) -> str:
    excess = value - noise
    return MAJOR_FLAG if excess >= PSI_MAJOR else MINOR_FLAG if excess >= PSI_MINOR else NO_FLAG


def _missing_shift(train: float, now: float, n_train: int, n_now: int) -> bool:
    """A change in the missing share beyond 0.10 and beyond twice its standard error."""
    pooled = (train * n_train + now * n_now) / (n_train + n_now)
    se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n_train + 1 / n_now))
    return abs(now - train) > max(MISSING_SHIFT, 2 * se)


def _feature_row(phase: str, name: str, entry: Mapping, n_train: int, values: np.ndarray, n_now: int,
                 min_n: int) -> dict:
    missing_now = 1.0 - values.size / n_now
    row = {"phase": phase, "feature": name, "psi": None, "psi_noise": None,
           "missing_share_train": entry["missing_fraction"], "missing_share_scored": missing_now,
           "n_train": round(n_train * (1.0 - entry["missing_fraction"])), "n_scored": int(values.size),
           "missing_shift": _missing_shift(entry["missing_fraction"], missing_now, n_train, n_now),
           "flag": NO_FLAG, "note": ""}
    if not entry["proportions"]:
        return {**row, "note": "no training values"}
    if min(row["n_train"], row["n_scored"]) < min_n:
        return {**row, "note": f"too few values to judge (training {row['n_train']}, scored {row['n_scored']}; "
                               f"minimum {min_n})"}
    value = psi(entry["edges"], entry["proportions"], values)
    noise = psi_noise(len(entry["proportions"]), row["n_train"], row["n_scored"])
    return {**row, "psi": value, "psi_noise": noise, "flag": _value_flag(value, noise)}


def drift_table(profile: Mapping, frame: pl.DataFrame, min_n: int = DRIFT_MIN_N) -> pl.DataFrame:
    """Per phase and feature: PSI of the scored values against that phase's training profile,
    missingness on both sides, and a flag, most severe first.

    `profile` is `phase_profiles(...)`; `frame` holds the scored rows with a `phase` column
    (rows without a phase, e.g. excluded patients, are left out). Value shift and missingness
    are kept apart: PSI is over present values only, and `missing_shift` says whether the
    missing share moved (by > 0.10 and > 2 standard errors). `flag` (none / minor / major) is
    from PSI beyond its sampling noise (`psi_noise`): minor when PSI − noise ≥ 0.10, major
    when ≥ 0.25. Both sides need `min_n` present values (training counted in patients), else
    flag none with a note; a feature absent from `frame` is noted, not flagged.
    """
    rows = []
    for phase, part in profile.get("by_phase", {}).items():
        scored = frame.filter(pl.col("phase") == phase) if "phase" in frame.columns else frame.clear()
        n_train = int(part["patients"])
        for name, entry in part["features"].items():
            if scored.height == 0 or name not in scored.columns:
                note = "no scored patients in this phase" if scored.height == 0 else "absent from the scored data"
                rows.append({"phase": phase, "feature": name, "psi": None, "psi_noise": None,
                             "missing_share_train": entry["missing_fraction"], "missing_share_scored": None,
                             "n_train": None, "n_scored": 0, "missing_shift": False, "flag": NO_FLAG, "note": note})
                continue
            rows.append(_feature_row(phase, name, entry, n_train, _finite(scored[name]), scored.height, min_n))
    table = pl.DataFrame(rows, schema=DRIFT_SCHEMA)
    severity = pl.col("flag").replace_strict({MAJOR_FLAG: 0, MINOR_FLAG: 1, NO_FLAG: 2}, return_dtype=pl.Int8)
    return table.sort(
        [severity, pl.col("missing_shift"), pl.col("psi").fill_null(-1.0)],
        descending=[False, True, True],
        maintain_order=True,
    )


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
