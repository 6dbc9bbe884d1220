"""A quick synthetic cohort in the contract's shape, for benchmarks only.

Used by `bench_features.py` when `pipeline.simulator` is not available (or with `--synthetic`).
It has no clinical realism — only realistic volumes: visits, daily wearable recordings,
weekly therapy sessions, a few raw-beat recordings with artefacts.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

UTC = pl.Datetime("us", "UTC")


def synthetic_cohort(n_patients: int, seed: int = 7) -> dict[str, pl.DataFrame]:
    """Contract-typed tables for `n_patients` patients."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"P{i:07d}" for i in range(n_patients)])
    intake_day = rng.integers(0, 730, n_patients)
    base = date(2022, 1, 1)

    def to_date(offsets: pl.Series | np.ndarray) -> pl.Series:
        return pl.select(pl.lit(base) + pl.duration(days=pl.Series(offsets).cast(pl.Int64))).to_series()

    intake = to_date(intake_day)
    patients = pl.DataFrame(
        {
            "patient_id": ids,
            "intake_date": intake,
            "age_at_intake": rng.uniform(14, 60, n_patients).round(1),
            "sex": rng.choice(["female", "male", "other", "unknown"], n_patients, p=[0.45, 0.5, 0.03, 0.02]),
            "ethnicity": rng.choice(["White", "Asian", "Black", "Mixed", "Other", ""], n_patients),
            "deprivation_decile": rng.integers(1, 11, n_patients),
            "polysubstance": rng.random(n_patients) < 0.5,
            "ketamine_years": rng.gamma(2.0, 1.5, n_patients).round(2),
            "prior_treatments": rng.poisson(1.0, n_patients),
            "trauma_history": rng.random(n_patients) < 0.4,
            "housing": rng.choice(["stable", "unstable", "homeless", ""], n_patients, p=[0.7, 0.18, 0.07, 0.05]),
        }
    ).with_columns(pl.col("ethnicity", "housing").replace("", None))
    follow = np.minimum(rng.exponential(500, n_patients).astype(int) + 1, 800)
    relapse = rng.exponential(250, n_patients).astype(int) + 1
    relapsed = relapse <= follow
    end = np.where(relapsed, relapse, follow)
    last = to_date(intake_day + end)
    outcomes = pl.DataFrame(
        {
            "patient_id": ids,
            "relapse_date": pl.select(pl.when(pl.Series(relapsed)).then(last)).to_series(),
            "last_followup_date": last,
        }
    )

    def events(per_patient: np.ndarray, spread: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pid = np.repeat(np.arange(n_patients), per_patient)
        day = (rng.random(pid.size) * spread[pid]).astype(int)
        return pid, day

    def dated(pid: np.ndarray, day: np.ndarray) -> pl.Series:
        return pl.select(pl.Series(intake_day[pid]).cast(pl.Int64) + pl.Series(day).cast(pl.Int64)).to_series()

    pid, day = events(rng.poisson(6, n_patients), end)
    bdnf = pl.DataFrame(
        {
            "patient_id": ids[pid],
            "sample_date": to_date(dated(pid, day)),
            "bdnf_ng_ml": rng.lognormal(3.0, 0.3, pid.size),
        }
    )

    wearer = rng.random(n_patients) < 0.6
    pid, day = events(np.where(wearer, (end * rng.uniform(0.3, 1.2, n_patients)).astype(int), 0), end)
    seconds = rng.integers(0, 86_400, pid.size)
    recorded = to_date(dated(pid, day)).cast(pl.Datetime("us")) + pl.Series(seconds * 1_000_000).cast(pl.Duration("us"))
    hrv = pl.DataFrame(
        {
            "patient_id": ids[pid],
            "recorded_at": recorded.dt.replace_time_zone("UTC"),
            "rmssd_ms": rng.lognormal(3.5, 0.4, pid.size),
            "sdnn_ms": rng.lognormal(3.9, 0.3, pid.size),
            "lf_hf": np.where(rng.random(pid.size) < 0.9, rng.lognormal(0.5, 0.4, pid.size), np.nan),
            "mean_hr_bpm": rng.uniform(55, 95, pid.size),
        }
    ).with_columns(pl.col("lf_hf").fill_nan(None))

    raw = wearer & (rng.random(n_patients) < 0.05)
    rec_pid, rec_day = events(np.where(raw, rng.integers(1, 4, n_patients), 0), end)
    beats = rng.integers(200, 400, rec_pid.size)
    beat_rec = np.repeat(np.arange(rec_pid.size), beats)
    rr = rng.normal(850, 40, beat_rec.size)
    artefact = rng.random(beat_rec.size) < 0.02
    rr[artefact] = rng.choice([250.0, 450.0, 1400.0, 2500.0], artefact.sum())
    rec_time = to_date(dated(rec_pid, rec_day)).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    rr_intervals = pl.DataFrame(
        {
            "patient_id": ids[rec_pid][beat_rec],
            "recording_id": pl.Series(beat_rec).cast(pl.String),
            "recorded_at": rec_time.gather(beat_rec),
            "rr_ms": np.clip(rr, 200, 3000),
        }
    )

    pid, day = events(rng.poisson(30, n_patients), np.minimum(end, 365))
    therapy = pl.DataFrame(
        {
            "patient_id": ids[pid],
            "session_date": to_date(dated(pid, day)),
            "modality": rng.choice(["CBT", "MBI", "EMDR", "CM", "MI", "group", "family", "other"], pid.size),
            "attended": rng.random(pid.size) < 0.75,
            "duration_min": np.where(rng.random(pid.size) < 0.97, 50.0, np.nan),
        }
    ).with_columns(pl.col("duration_min").fill_nan(None))

    pid, day = events(rng.poisson(24, n_patients), end)
    assessments = pl.DataFrame(
        {
            "patient_id": ids[pid],
            "assessed_on": to_date(dated(pid, day)),
            "instrument": rng.choice(["PHQ9", "GAD7", "PCL5", "craving_vas"], pid.size),
            "score": rng.uniform(0, 27, pid.size).round(0),
        }
    )
    tables = {
        "patients": patients,
        "outcomes": outcomes,
        "bdnf": bdnf,
        "hrv": hrv,
        "rr_intervals": rr_intervals,
        "therapy_sessions": therapy,
        "assessments": assessments,
    }
    return {name: frame.with_columns(pl.col(pl.Datetime).dt.cast_time_unit("us")) for name, frame in tables.items()}
