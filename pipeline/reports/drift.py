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
from datetime import date

import numpy as np
import polars as pl
from scipy.stats import chi2

from features.tables import PLAUSIBLE

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
DEFAULT_RANGES: dict[str, tuple[float, float]] = {  # the data contract's plausible ranges, by feature prefix
    prefix: PLAUSIBLE[column][:2]
    for prefix, column in (("bdnf_", ("bdnf", "bdnf_ng_ml")), ("hrv_rmssd", ("hrv", "rmssd_ms")),
                           ("hrv_sdnn", ("hrv", "sdnn_ms")), ("hrv_mean_hr", ("hrv", "mean_hr_bpm")))
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


def _day_bin_counts(part: pl.DataFrame, name: str, edges: Sequence[float], day_index: np.ndarray,
                    n_days: int) -> list[list[int]]:
    """Present values of `name` per training landmark day (rows) and profile bin (columns)."""
    values = part[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
    present = np.isfinite(values)
    counts = np.zeros((n_days, len(edges) + 1), dtype=np.int64)
    bins = np.searchsorted(np.asarray(edges, dtype=float), values[present], side="left")
    np.add.at(counts, (day_index[present], bins), 1)
    return counts.tolist()


def phase_profiles(frame: pl.DataFrame, feature_names: Sequence[str], bins: int = 10) -> dict:
    """The training profile per recovery phase: `{"by_phase": {phase: {"rows", "patients",
    "features": training_profile(...)}}}`, and with a `day` column also `days` (the phase's
    landmark days), `day_rows` (rows per day) and per feature `day_counts` (present values per
    day and bin), so `drift_table` can weight the training rows to the scored cohort's days.

    Per phase because the training landmark table and a scoring cohort mix phases differently
    (many weekly rows per patient in late phases, one row per patient when scoring): a pooled
    profile flags the phase mix, not a shift. `patients` is the effective sample size, since
    one patient's weekly rows are correlated.
    """
    out = {}
    for (phase,), part in frame.group_by("phase", maintain_order=True):
        if phase is None or part.height == 0:
            continue
        features = training_profile(part, feature_names, bins)
        entry = {
            "rows": part.height,
            "patients": part["patient_id"].n_unique() if "patient_id" in part.columns else part.height,
        }
        if "day" in part.columns and part["day"].null_count() == 0:
            day = part["day"].cast(pl.Int64).to_numpy()
            days, day_index, day_rows = np.unique(day, return_inverse=True, return_counts=True)
            entry |= {"days": days.tolist(), "day_rows": day_rows.tolist()}
            for name, profile in features.items():
                profile["day_counts"] = _day_bin_counts(part, name, profile["edges"], day_index, len(days))
        out[str(phase)] = entry | {"features": features}
    return {"by_phase": out}


def day_weights(profile_days: Sequence[int], scored_days: np.ndarray) -> np.ndarray:
    """The scored cohort's share at each training landmark day, each scored day taken to the first
    landmark on or after it (the phase's last landmark for days beyond it).

    On or after, not nearest: the records a patient has by day d are at most those the next
    landmark sees, and the first landmark of a phase can be special: day 0 is the intake itself,
    before most intake visits are recorded, while a patient scored on days 1-6 has had them.

    >>> day_weights([0, 7], np.array([0, 3, 6, 13])).tolist()
    [0.25, 0.75]
    """
    days = np.asarray(profile_days, dtype=float)
    index = np.clip(np.searchsorted(days, np.asarray(scored_days, dtype=float), side="left"), 0, len(days) - 1)
    return np.bincount(index, minlength=len(days)) / max(len(index), 1)


def _kish(weight_per_row: np.ndarray, rows: np.ndarray) -> float:
    """Kish's effective number of rows when each of `rows[c]` rows has weight `weight_per_row[c]`."""
    total, square = float(np.sum(weight_per_row * rows)), float(np.sum(weight_per_row**2 * rows))
    return total**2 / square if square > 0 else 0.0


def _reference(part: Mapping, entry: Mapping, weights: np.ndarray | None) -> dict:
    """What the scored values are compared with: bin proportions of present values, the missing
    share and the sizes (in patients) of the training rows, as a whole or weighted to `weights`."""
    patients, rows = int(part["patients"]), int(part["rows"])
    if weights is None or "day_counts" not in entry:
        present = patients * (1.0 - entry["missing_fraction"])
        return {"proportions": entry["proportions"], "missing": entry["missing_fraction"],
                "n_all": patients, "n_present": round(present)}
    day_rows = np.asarray(part["day_rows"], dtype=float)
    counts = np.asarray(entry["day_counts"], dtype=float).reshape(len(day_rows), -1)
    per_row = weights / day_rows  # each training row's weight, so each day carries its scored share
    present = counts.sum(axis=1)
    expected_present = float(per_row @ present)
    proportions = (per_row @ counts) / expected_present if expected_present > 0 else np.zeros(0)
    per_patient = patients / rows  # a patient's weekly rows are correlated: sizes stay in patients
    return {"proportions": [float(x) for x in proportions] if entry["proportions"] else [],
            "missing": 1.0 - expected_present, "n_all": min(patients, round(_kish(per_row, day_rows) * per_patient)),
            "n_present": min(patients, round(_kish(per_row, present) * per_patient))}


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
    if n_train <= 0 or n_now <= 0:
        return False
    pooled = (train * n_train + now * n_now) / (n_train + n_now)
    se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n_train + 1 / n_now))
    return abs(now - train) > max(MISSING_SHIFT, 2 * se)


def _feature_row(phase: str, name: str, entry: Mapping, reference: Mapping, values: np.ndarray, n_now: int,
                 min_n: int) -> dict:
    missing_now = 1.0 - values.size / n_now
    row = {"phase": phase, "feature": name, "psi": None, "psi_noise": None,
           "missing_share_train": reference["missing"], "missing_share_scored": missing_now,
           "n_train": reference["n_present"], "n_scored": int(values.size),
           "missing_shift": _missing_shift(reference["missing"], missing_now, reference["n_all"], n_now),
           "flag": NO_FLAG, "note": ""}
    if not reference["proportions"]:
        return {**row, "note": "no training values" + (" at these days" if entry["proportions"] else "")}
    if min(row["n_train"], row["n_scored"]) < min_n:
        return {**row, "note": f"too few values to judge (training {row['n_train']}, scored {row['n_scored']}; "
                               f"minimum {min_n})"}
    value = psi(entry["edges"], reference["proportions"], values)
    noise = psi_noise(len(reference["proportions"]), row["n_train"], row["n_scored"])
    return {**row, "psi": value, "psi_noise": noise, "flag": _value_flag(value, noise)}


def _phase_rows(phase: str, part: Mapping, scored: pl.DataFrame, min_n: int) -> list[dict]:
    weights = None
    if scored.height and "day" in scored.columns and part.get("days") and scored["day"].null_count() == 0:
        weights = day_weights(part["days"], scored["day"].to_numpy())
    rows = []
    for name, entry in part["features"].items():
        if scored.height == 0 or name not in scored.columns:
            note = "no scored patients in this phase" if scored.height == 0 else "absent from the scored data"
            rows.append({"phase": phase, "feature": name, "psi": None, "psi_noise": None,
                         "missing_share_train": entry["missing_fraction"], "missing_share_scored": None,
                         "n_train": None, "n_scored": 0, "missing_shift": False, "flag": NO_FLAG, "note": note})
            continue
        reference = _reference(part, entry, weights)
        rows.append(_feature_row(phase, name, entry, reference, _finite(scored[name]), scored.height, min_n))
    return rows


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

    Weighted to the scored days: with a `day` column in `frame` and `days` in the profile, each
    training landmark day counts as much as the share of scored patients it stands for
    (`day_weights`), and
    `missing_share_train` and `n_train` (Kish's effective size, in patients) are of those
    weighted rows. A phase's training rows cover all its days, while a cohort scored on one
    calendar date sits wherever its intakes put it: in maintenance, patients who started in the
    last two years are at days 365–609, not 365–729; in the acute phase, half the training rows
    are the day-0 landmark, where nothing has been recorded yet. Measurement ages (days since
    the last BDNF, HRV, session, questionnaire) grow with the day, so the unweighted profile
    flags where in the phase the cohort is, not a change in the patients. A genuine shift or
    missingness change at the same days is still flagged.
    """
    rows = []
    for phase, part in profile.get("by_phase", {}).items():
        scored = frame.filter(pl.col("phase") == phase) if "phase" in frame.columns else frame.clear()
        rows.extend(_phase_rows(phase, part, scored, min_n))
    table = pl.DataFrame(rows, schema=DRIFT_SCHEMA)
    severity = pl.col("flag").replace_strict({MAJOR_FLAG: 0, MINOR_FLAG: 1, NO_FLAG: 2}, return_dtype=pl.Int8)
    return table.sort(
        [severity, pl.col("missing_shift"), pl.col("psi").fill_null(-1.0)],
        descending=[False, True, True],
        maintain_order=True,
    )


def under_follow_up(scored: pl.DataFrame, outcomes: pl.DataFrame | None, as_of: date) -> pl.DataFrame:
    """The scored rows of patients still followed on `as_of` (`last_followup_date >= as_of`: the
    rule `relapse score` counts `scored_past_last_followup` by, so a registry scored on its extract
    date, where those in care were last seen that day, is compared), or every row when the
    outcomes are not known.

    A training landmark row exists only while follow-up continues, so the profile holds no
    patient after drop-out; scoring on a calendar date cannot know who has left, and their
    records only grow older. Those patients are counted apart by the audit, not compared.
    """
    if outcomes is None or "last_followup_date" not in outcomes.columns:
        return scored
    followed = outcomes.select("patient_id", "last_followup_date")
    return (
        scored.join(followed, on="patient_id", how="left")
        .filter(pl.col("last_followup_date").is_null() | (pl.col("last_followup_date") >= as_of))
        .drop("last_followup_date")
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
