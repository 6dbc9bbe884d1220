"""A straightforward pandas implementation of the landmark table: the reference for the benchmark.

Written independently of `features/` from the documented definitions, the obvious way: for a
chunk of patients, join every landmark to every record of its patient, keep the records dated on
or before the landmark, and group by (patient, landmark). It shares only the FeatureSpec (which
columns, levels and instruments) and the config with the Polars version, so the benchmark's
equality check tests the Polars as-of machinery against plain definitions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.config import FeaturesConfig, LandmarkConfig, Phase
from features.naming import level_columns
from features.spec import FeatureSpec

HRV_COLUMNS = {"rmssd": "rmssd_ms", "sdnn": "sdnn_ms", "lf_hf": "lf_hf", "mean_hr": "mean_hr_bpm", "pnn50": "pnn50"}
MODALITY_GROUP = {"CBT": "cbt", "MBI": "mbi", "EMDR": "emdr"}
KEYS = ["pid", "t"]


def _day(values: pd.Series, intake: pd.Series) -> pd.Series:
    """Whole days from intake to the record's (UTC) calendar date."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    values = pd.to_datetime(values).dt.normalize()
    return (values - pd.to_datetime(intake)).dt.days


def landmark_grid(patients: pd.DataFrame, outcomes: pd.DataFrame, phases, landmarks: LandmarkConfig) -> pd.DataFrame:
    """One row per at-risk landmark, with label, censored and IPCW weight."""
    p = patients[["patient_id", "intake_date"]].merge(outcomes, on="patient_id")
    p = p.sort_values("patient_id").reset_index(drop=True)
    relapse = _day(p["relapse_date"], p["intake_date"])
    follow = _day(p["last_followup_date"], p["intake_date"])
    end = max(ph.end_day for ph in phases)
    stop = np.minimum(np.minimum(end + 1, follow.to_numpy()), relapse.fillna(np.inf).to_numpy())
    counts = np.where(stop > 0, np.ceil(stop / landmarks.spacing_days), 0).astype(int)
    idx = np.repeat(np.arange(len(p)), counts)
    within = np.arange(idx.size) - np.repeat(np.cumsum(counts) - counts, counts)
    grid = pd.DataFrame({"pid": idx, "t": within * landmarks.spacing_days})
    grid["patient_id"] = p["patient_id"].to_numpy()[idx]
    grid["intake_date"] = pd.to_datetime(p["intake_date"]).to_numpy()[idx]
    r, f, t, h = relapse.to_numpy()[idx], follow.to_numpy()[idx], grid["t"].to_numpy(), landmarks.horizon_days
    label = np.where(r <= t + h, 1.0, np.where(f >= t + h, 0.0, np.nan))
    grid["label"] = label
    grid["censored"] = np.isnan(label)
    survival = _censoring_km(relapse.to_numpy(), follow.to_numpy(), end + h)
    seen_through = np.where(label == 1, r, t + h).astype(int)
    with np.errstate(divide="ignore", invalid="ignore"):  # censored rows: discarded below
        weight = survival[t] / survival[seen_through - 1]
    grid["ipcw_weight"] = np.where(np.isnan(label), np.nan, weight)
    grid["landmark_date"] = grid["intake_date"] + pd.to_timedelta(grid["t"], unit="D")
    grid["phase"] = None
    for ph in phases:
        grid.loc[(grid["t"] >= ph.start_day) & (grid["t"] <= ph.end_day), "phase"] = ph.name
    return grid


def _censoring_km(relapse: np.ndarray, follow: np.ndarray, upto: int) -> np.ndarray:
    """G(u) = P(C > u) on days 0..upto; relapses on a day leave before that day's censorings."""
    observed = np.where(np.isnan(relapse), follow, relapse)
    censored = np.isnan(relapse)
    survival = np.ones(upto + 1)
    g = 1.0
    for u in range(upto + 1):
        c = np.sum(censored & (observed == u))
        if c:
            at_risk = np.sum(observed >= u) - np.sum(~censored & (observed == u))
            g *= 1 - c / at_risk
        survival[u] = g
    return survival


def demographic_columns(patients: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    out = pd.DataFrame({"patient_id": patients["patient_id"]})
    numeric = ["age_at_intake", "deprivation_decile", "ketamine_years", "prior_treatments"]

    def one_hot(column: str) -> None:
        levels = spec.categorical_levels[column]
        values = patients[column].astype("object")
        for level, name in zip(levels, level_columns(column, levels), strict=True):
            out[name] = np.where(values.isna(), np.nan, (values == level).astype(float))

    for c in numeric:
        out[c] = patients[c].astype(float)
    for c in ("polysubstance", "trauma_history"):
        out[c] = patients[c].astype(float)
    for c in ("sex", "ethnicity", "housing"):
        one_hot(c)
    for c in spec.extra:
        if c in spec.extra_numeric:
            out[c] = pd.to_numeric(patients[c].replace("", np.nan)).astype(float)
        else:
            one_hot(c)
    return out


def _per_landmark(grid: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Every (landmark, record) pair of a patient with the record dated on or before the landmark."""
    pairs = grid[KEYS].merge(records, on="pid")
    return pairs[pairs["day"] <= pairs["t"]]


def _slope(frame: pd.DataFrame, value: str) -> pd.Series:
    """Least-squares slope of value on day per (pid, t), per 30 days; NaN with < 2 distinct days."""
    frame = frame[frame[value].notna()]
    g = frame.groupby(KEYS)
    dx = frame["day"] - g["day"].transform("mean")
    dy = frame[value] - g[value].transform("mean")
    parts = pd.DataFrame({"sxy": dx * dy, "sxx": dx * dx, "pid": frame["pid"], "t": frame["t"]})
    sums = parts.groupby(KEYS)[["sxy", "sxx"]].sum()
    return (30 * sums["sxy"] / sums["sxx"]).where(sums["sxx"] > 0)


def _value_on_extreme_day(frame: pd.DataFrame, value: str, which: str, time: str = "day") -> pd.Series:
    """Mean of `value` at the latest (or first) `time` per (pid, t), among rows that have it."""
    frame = frame[frame[value].notna()]
    extreme = frame.groupby(KEYS)[time].transform(which)
    return frame[frame[time] == extreme].groupby(KEYS)[value].mean()


def bdnf_columns(grid: pd.DataFrame, samples: pd.DataFrame, window: int) -> pd.DataFrame:
    m = _per_landmark(grid, samples)
    g = m.groupby(KEYS)
    out = pd.DataFrame(index=pd.MultiIndex.from_frame(grid[KEYS]))
    out["bdnf_latest"] = _value_on_extreme_day(m, "bdnf_ng_ml", "max")
    out["bdnf_latest_age_days"] = out.index.get_level_values("t") - g["day"].max().reindex(out.index)
    out["bdnf_first"] = _value_on_extreme_day(m, "bdnf_ng_ml", "min")
    out["bdnf_change_since_first"] = out["bdnf_latest"] - out["bdnf_first"]
    out["bdnf_change_since_first_pct"] = 100 * out["bdnf_change_since_first"] / out["bdnf_first"]
    out["bdnf_slope_30d"] = _slope(m[m["day"] > m["t"] - window], "bdnf_ng_ml")
    out["bdnf_n_samples"] = g.size().reindex(out.index).fillna(0).astype(float)
    return out


def artefact_free(rr: np.ndarray, lo: float, hi: float, change: float) -> np.ndarray:
    keep = np.zeros(rr.size, dtype=bool)
    reference = None
    for i, value in enumerate(rr):
        if lo <= value <= hi and (reference is None or abs(value - reference) <= change * reference):
            keep[i] = True
            reference = value
    return keep


def rr_summaries(rr: pd.DataFrame, cfg) -> pd.DataFrame:
    rows = []
    for (pid, _recording), beats in rr.groupby(["patient_id", "recording_id"], sort=True):
        values = beats["rr_ms"].to_numpy()
        kept = values[artefact_free(values, cfg.rr_min_ms, cfg.rr_max_ms, cfg.rr_max_change)]
        if kept.size < 2:
            continue
        d = np.diff(kept)
        rows.append(
            {
                "patient_id": pid,
                "recorded_at": beats["recorded_at"].min(),
                "rmssd_ms": np.sqrt(np.mean(d * d)),
                "sdnn_ms": np.std(kept, ddof=1),
                "pnn50": 100 * np.sum(np.abs(d) > 50) / kept.size,
                "mean_hr_bpm": 60_000 / kept.mean(),
            }
        )
    return pd.DataFrame(rows)


def hrv_columns(grid: pd.DataFrame, recordings: pd.DataFrame, metrics: Sequence[str], cfg) -> pd.DataFrame:
    m = _per_landmark(grid, recordings)
    out = pd.DataFrame(index=pd.MultiIndex.from_frame(grid[KEYS]))
    window = m[m["day"] > m["t"] - cfg.window_days]
    baseline = m[m["day"] < cfg.baseline_days]
    for name in metrics:
        col = HRV_COLUMNS[name]
        out[f"hrv_{name}_latest"] = _value_on_extreme_day(m, col, "max", time="recorded_at")
        mean = window.groupby(KEYS)[col].mean()
        out[f"hrv_{name}_window_mean"] = mean
        out[f"hrv_{name}_window_slope_30d"] = _slope(window, col)
        base = baseline.groupby(KEYS)[col].mean().reindex(out.index)
        change = out[f"hrv_{name}_window_mean"] - base
        out[f"hrv_{name}_change_from_baseline"] = change
        out[f"hrv_{name}_change_from_baseline_pct"] = (100 * change / base).where(base != 0)
    t = out.index.get_level_values("t").to_numpy()
    out["hrv_latest_age_days"] = t - m.groupby(KEYS)["day"].max().reindex(out.index)
    n = window.groupby(KEYS).size().reindex(out.index).fillna(0).to_numpy()
    out["hrv_recordings_per_week"] = 7 * n / np.minimum(cfg.window_days, t + 1)
    return out


def therapy_columns(grid: pd.DataFrame, sessions: pd.DataFrame, window: int, phases) -> pd.DataFrame:
    m = _per_landmark(grid, sessions)
    m = m.assign(
        group=m["modality"].map(MODALITY_GROUP).fillna("other"),
        inwin=m["day"] > m["t"] - window,
        att=m["attended"].astype(bool),
    )
    out = pd.DataFrame(index=pd.MultiIndex.from_frame(grid[KEYS]))

    def count(mask: pd.Series) -> pd.Series:
        return m[mask].groupby(KEYS).size().reindex(out.index).fillna(0).astype(float)

    everything = pd.Series(True, index=m.index)
    out["therapy_sessions_scheduled"] = count(everything)
    out["therapy_sessions_attended"] = count(m["att"])
    out["therapy_attendance_rate"] = out["therapy_sessions_attended"] / out["therapy_sessions_scheduled"]
    out["therapy_sessions_scheduled_window"] = count(m["inwin"])
    out["therapy_sessions_attended_window"] = count(m["inwin"] & m["att"])
    out["therapy_attendance_rate_window"] = (
        out["therapy_sessions_attended_window"] / out["therapy_sessions_scheduled_window"]
    )
    for g in ("cbt", "mbi", "emdr", "other"):
        mine = m["group"] == g
        out[f"therapy_{g}_scheduled"] = count(mine)
        out[f"therapy_{g}_attended"] = count(mine & m["att"])
        out[f"therapy_{g}_scheduled_window"] = count(mine & m["inwin"])
        out[f"therapy_{g}_attended_window"] = count(mine & m["inwin"] & m["att"])
    t = out.index.get_level_values("t").to_numpy()
    out["therapy_days_since_attended"] = t - m[m["att"]].groupby(KEYS)["day"].max().reindex(out.index)
    start = np.full(t.size, np.nan)
    for ph in phases:
        start[(t >= ph.start_day) & (t <= ph.end_day)] = ph.start_day
    for g in ("cbt", "mbi", "emdr"):
        first = m[m["att"] & (m["group"] == g)].groupby(KEYS)["day"].min().reindex(out.index).to_numpy()
        started = np.where(np.isnan(first), 0.0, (first >= start).astype(float))
        out[f"therapy_{g}_started_in_phase"] = np.where(np.isnan(start), np.nan, started)
    attended = m[m["att"]]
    minutes = attended.groupby(KEYS)["duration_min"].sum().reindex(out.index).fillna(0.0)
    unknown = attended["duration_min"].isna().groupby([attended["pid"], attended["t"]]).any()
    out["therapy_minutes_attended"] = minutes.where(~unknown.reindex(out.index).fillna(False).astype(bool))
    return out


def assessment_columns(grid: pd.DataFrame, tests: pd.DataFrame, instruments: Sequence[str]) -> pd.DataFrame:
    m = _per_landmark(grid, tests)
    out = pd.DataFrame(index=pd.MultiIndex.from_frame(grid[KEYS]))
    for instrument, prefix in zip(instruments, level_columns("assess", instruments), strict=True):
        mine = m[m["instrument"] == instrument]
        latest = _value_on_extreme_day(mine, "score", "max")
        out[f"{prefix}_latest"] = latest
        out[f"{prefix}_age_days"] = out.index.get_level_values("t") - mine.groupby(KEYS)["day"].max().reindex(out.index)
        out[f"{prefix}_change_since_first"] = latest - _value_on_extreme_day(mine, "score", "min")
    return out


def pandas_landmark_table(
    tables: dict[str, pd.DataFrame],
    phases: Sequence[Phase],
    landmarks: LandmarkConfig,
    features: FeaturesConfig,
    spec: FeatureSpec,
    chunk_patients: int = 5_000,
) -> pd.DataFrame:
    """The landmark table, computed chunk of patients by chunk of patients."""
    patients = tables["patients"].sort_values("patient_id").reset_index(drop=True)
    grid = landmark_grid(patients, tables["outcomes"], phases, landmarks)
    pid_of = pd.Series(np.arange(len(patients)), index=patients["patient_id"])
    intake = patients.set_index("patient_id")["intake_date"]
    used = set(spec.groups_used)

    def dated(name: str, column: str) -> pd.DataFrame | None:
        frame = tables.get(name)
        if frame is None:
            return None
        frame = frame.assign(pid=pid_of.reindex(frame["patient_id"]).to_numpy())
        return frame.assign(day=_day(frame[column], intake.reindex(frame["patient_id"]).reset_index(drop=True)))

    sources = {
        "bdnf": dated("bdnf", "sample_date") if "bdnf" in used else None,
        "therapy": dated("therapy_sessions", "session_date") if "therapy" in used else None,
        "assessments": dated("assessments", "assessed_on") if "assessments" in used else None,
    }
    if "hrv" in used:
        parts = []
        if "hrv" in tables:
            parts.append(tables["hrv"].assign(pnn50=np.nan))
        if "rr_intervals" in tables:
            parts.append(rr_summaries(tables["rr_intervals"], features.hrv).assign(lf_hf=np.nan))
        if parts:
            tables = {**tables, "_recordings": pd.concat(parts, ignore_index=True)}
            sources["hrv"] = dated("_recordings", "recorded_at")
    chunks = []
    for lo in range(0, len(patients), chunk_patients):
        part = grid[(grid["pid"] >= lo) & (grid["pid"] < lo + chunk_patients)]
        columns = []

        def rows(source: pd.DataFrame, lo: int = lo) -> pd.DataFrame:
            return source[(source["pid"] >= lo) & (source["pid"] < lo + chunk_patients)]

        if sources["bdnf"] is not None:
            columns.append(bdnf_columns(part, rows(sources["bdnf"]), features.bdnf.slope_window_days))
        if sources.get("hrv") is not None:
            columns.append(hrv_columns(part, rows(sources["hrv"]), spec.hrv_metrics, features.hrv))
        if sources["therapy"] is not None:
            columns.append(therapy_columns(part, rows(sources["therapy"]), features.therapy.window_days, phases))
        if sources["assessments"] is not None:
            columns.append(assessment_columns(part, rows(sources["assessments"]), spec.instruments))
        block = part.set_index(KEYS)
        for c in columns:
            block = block.join(c)
        chunks.append(block.reset_index())
    table = pd.concat(chunks, ignore_index=True)
    if "demographic" in used:
        table = table.merge(demographic_columns(patients, spec), on="patient_id", how="left")
    for name in spec.feature_names:  # a group whose table is absent: null columns
        if name not in table.columns:
            table[name] = np.nan
    table = table.rename(columns={"t": "day"})
    keys = ["patient_id", "landmark_date", "day", "phase", "label", "censored", "ipcw_weight"]
    return table[[*keys, *spec.feature_names]].sort_values(["patient_id", "day"]).reset_index(drop=True)
