"""The simulated cohort as polars frames: the data contract's tables and the latent truth.

Patients, their schedules and their trajectories in; frames typed exactly as
`pipeline.contract.SPECS` out. Measurements are noisy readings of the latent states on their
scheduled days, and every record is cut at the patient's last follow-up.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from features.tables import HOUSING, SEXES, UTC_DATETIME
from pipeline.simulator.cohort import Patients, Schedule, sort_order, within_group_index
from pipeline.simulator.config import SimulationConfig
from pipeline.simulator.dynamics import NEVER, Trajectories

_US_PER_DAY = 86_400_000_000


def patient_ids(n: int) -> pl.Series:
    """Zero-padded ids so that sorting by id is sorting by simulation order.

    >>> patient_ids(3).to_list()
    ['P00001', 'P00002', 'P00003']
    """
    width = max(5, len(str(n)))
    return pl.Series("patient_id", np.arange(1, n + 1)).cast(pl.String).str.zfill(width).str.replace(r"^", "P")


def _dates(day_since_epoch: np.ndarray) -> pl.Series:
    return pl.Series(np.asarray(day_since_epoch, np.int32)).cast(pl.Date)


def _timestamps(day_since_epoch: np.ndarray, second: np.ndarray) -> pl.Series:
    us = day_since_epoch.astype(np.int64) * _US_PER_DAY + second.astype(np.int64) * 1_000_000
    return pl.Series(us).cast(UTC_DATETIME)


def _masked(values: np.ndarray, missing: np.ndarray | None, dtype: pl.DataType) -> pl.Series:
    series = pl.Series(values).cast(dtype)
    if missing is None:
        return series
    return pl.select(pl.when(pl.Series(missing)).then(None).otherwise(series)).to_series()


def last_followup_day(cfg: SimulationConfig, pat: Patients, traj: Trajectories) -> np.ndarray:
    """Last day seen: relapse, drop-out, data extract or the end of follow-up, whichever first."""
    end = np.minimum(np.minimum(traj.dropout_day, pat.admin_days), cfg.cohort.max_followup_days - 1)
    return np.minimum(end, traj.relapse_day).astype(np.int32)


def patients_frame(cfg: SimulationConfig, pat: Patients, ids: pl.Series) -> pl.DataFrame:
    miss = pat.missing.get
    ethnicity = np.array(list(cfg.cohort.ethnicity_shares), dtype=object)[pat.ethnicity]
    return pl.DataFrame(
        [
            ids,
            _dates(pat.intake_day).alias("intake_date"),
            pl.Series("age_at_intake", pat.age, pl.Float64),
            pl.Series("sex", np.array(SEXES, dtype=object)[pat.sex], pl.String),
            _masked(ethnicity, miss("ethnicity"), pl.String).alias("ethnicity"),
            _masked(pat.deprivation, miss("deprivation_decile"), pl.Int64).alias("deprivation_decile"),
            _masked(pat.polysubstance, miss("polysubstance"), pl.Boolean).alias("polysubstance"),
            _masked(pat.ketamine_years, miss("ketamine_years"), pl.Float64).alias("ketamine_years"),
            _masked(pat.prior_treatments, miss("prior_treatments"), pl.Int64).alias("prior_treatments"),
            _masked(pat.trauma, miss("trauma_history"), pl.Boolean).alias("trauma_history"),
            _masked(np.array(HOUSING, dtype=object)[pat.housing], miss("housing"), pl.String).alias("housing"),
        ]
    )


def outcomes_frame(pat: Patients, traj: Trajectories, last_day: np.ndarray, ids: pl.Series) -> pl.DataFrame:
    observed = traj.relapse_day <= last_day
    relapse = _dates(pat.intake_day + np.where(observed, traj.relapse_day, 0))
    return pl.DataFrame(
        [
            ids,
            _masked(relapse, ~observed, pl.Date).alias("relapse_date"),
            _dates(pat.intake_day + last_day).alias("last_followup_date"),
        ]
    )


def sessions_frame(
    cfg: SimulationConfig, pat: Patients, s: Schedule, attended: np.ndarray, keep: np.ndarray, ids: pl.Series
) -> pl.DataFrame:
    who = s.patient[keep]
    names = np.array(list(cfg.therapy.modalities), dtype=object)
    return pl.DataFrame(
        [
            ids.gather(who),
            _dates(pat.intake_day[who] + s.day[keep]).alias("session_date"),
            pl.Series("modality", names[s.extra["modality"][keep]], pl.String),
            pl.Series("attended", attended[keep]),
            _masked(s.extra["duration"][keep], ~attended[keep], pl.Float64).alias("duration_min"),
        ]
    )


def bdnf_frame(
    rng: np.random.Generator,
    cfg: SimulationConfig,
    pat: Patients,
    s: Schedule,
    state: np.ndarray,
    keep: np.ndarray,
    ids: pl.Series,
) -> pl.DataFrame:
    b = cfg.bdnf
    log_value = (
        b.log_mean_ng_ml
        + b.log_per_neuroplasticity * state[keep]
        + b.log_noise_sd * rng.standard_normal(int(keep.sum()))
    )
    who = s.patient[keep]
    return pl.DataFrame(
        [
            ids.gather(who),
            _dates(pat.intake_day[who] + s.day[keep]).alias("sample_date"),
            pl.Series("bdnf_ng_ml", np.round(np.exp(log_value), 2)),
        ]
    )


def _heart(
    rng: np.random.Generator, cfg: SimulationConfig, pat: Patients, who: np.ndarray, stress: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Recording RMSSD (ms) and mean heart rate (bpm) from the stress state, age and noise."""
    h = cfg.hrv
    log_rmssd = (
        h.log_rmssd_mean
        + h.log_rmssd_per_stress * stress
        + h.log_rmssd_per_year_over_25 * (pat.age[who] - 25)
        + h.log_rmssd_noise_sd * rng.standard_normal(len(who))
    )
    hr = np.clip(
        h.heart_rate_mean + h.heart_rate_per_stress * stress + h.heart_rate_noise_sd * rng.standard_normal(len(who)),
        *h.heart_rate_clip,
    )
    return np.exp(log_rmssd), hr


def hrv_frame(
    rng: np.random.Generator,
    cfg: SimulationConfig,
    pat: Patients,
    s: Schedule,
    stress: np.ndarray,
    keep: np.ndarray,
    ids: pl.Series,
) -> pl.DataFrame:
    h = cfg.hrv
    who, st = s.patient[keep], stress[keep]
    rmssd, hr = _heart(rng, cfg, pat, who, st)
    sdnn = rmssd * np.exp(h.log_sdnn_over_rmssd + h.log_sdnn_noise_sd * rng.standard_normal(len(who)))
    lf_hf = np.exp(
        h.log_lf_hf_mean + h.log_lf_hf_per_stress * st + h.log_lf_hf_noise_sd * rng.standard_normal(len(who))
    )
    return pl.DataFrame(
        [
            ids.gather(who),
            _timestamps(pat.intake_day[who] + s.day[keep], s.extra["second"][keep]).alias("recorded_at"),
            pl.Series("rmssd_ms", np.round(rmssd, 1)),
            pl.Series("sdnn_ms", np.round(sdnn, 1)),
            pl.Series("lf_hf", np.round(lf_hf, 2)),
            pl.Series("mean_hr_bpm", np.round(hr, 1)),
        ]
    )


def _beat_series(
    rng: np.random.Generator, a: float, rmssd: np.ndarray, mean_rr: np.ndarray, n_beats: np.ndarray
) -> np.ndarray:
    """Concatenated RR series: per recording AR(1) deviations around `mean_rr`.

    Innovation sd rmssd * sqrt((1 + a) / 2) makes E[(x_k - x_(k-1))^2] = rmssd^2. Built
    beat-major (one row per beat position) so the recursion runs over contiguous rows.
    """
    width = int(n_beats.max()) if len(n_beats) else 0
    x = rng.standard_normal((width, len(n_beats)))
    x *= rmssd * np.sqrt((1 + a) / 2)
    if width:
        x[0] /= np.sqrt(1 - a * a)  # start in the stationary distribution
    for k in range(1, width):
        x[k] += a * x[k - 1]
    x += mean_rr
    return x.T[np.arange(width)[None, :] < n_beats[:, None]]


def rr_frame(
    rng: np.random.Generator,
    cfg: SimulationConfig,
    pat: Patients,
    s: Schedule,
    stress: np.ndarray,
    keep: np.ndarray,
    ids: pl.Series,
) -> pl.DataFrame:
    """Raw beats: per recording an AR(1) series around 60000/HR whose RMSSD matches the state."""
    h = cfg.hrv
    who, st = s.patient[keep], stress[keep]
    rmssd, hr = _heart(rng, cfg, pat, who, st)
    n_beats = rng.integers(h.raw_beats[0], h.raw_beats[1] + 1, size=len(who))
    rr = _beat_series(rng, h.rr_ar_coefficient, rmssd, 60_000 / hr, n_beats)
    artefact = np.flatnonzero(rng.random(len(rr)) < h.raw_artefact_share)
    rr[artefact] *= np.where(rng.random(len(artefact)) < 0.5, 0.6, 1.9)  # ectopic or missed beat
    rr = np.round(np.clip(rr, *h.rr_clip_ms))
    recording = np.repeat(np.arange(len(who)), n_beats)
    number = within_group_index(np.unique(who, return_counts=True)[1]) + 1
    recordings = pl.DataFrame(
        [
            ids.gather(who),
            pl.Series("number", number),
            _timestamps(pat.intake_day[who] + s.day[keep], s.extra["second"][keep]).alias("recorded_at"),
        ]
    ).select(
        "patient_id",
        pl.concat_str("patient_id", pl.lit("-R"), pl.col("number").cast(pl.String)).alias("recording_id"),
        "recorded_at",
    )
    return recordings[recording].with_columns(pl.Series("rr_ms", rr, pl.Float64))


def assessments_frame(
    rng: np.random.Generator,
    cfg: SimulationConfig,
    pat: Patients,
    s: Schedule,
    np_state: np.ndarray,
    stress: np.ndarray,
    keep: np.ndarray,
    ids: pl.Series,
) -> pl.DataFrame:
    a = cfg.assessments
    visit_day = np.asarray(a.visit_days)
    parts = []
    for ins in a.instruments.values():
        rows = np.flatnonzero(keep & np.isin(visit_day[s.extra["visit"]], ins.visits))
        who = s.patient[rows]
        score = (
            ins.intercept
            + ins.per_stress * stress[rows]
            + ins.per_neuroplasticity * np_state[rows]
            + ins.per_trauma * pat.trauma[who]
            + ins.per_female * pat.female[who]
            + ins.noise_sd * rng.standard_normal(len(rows))
        )
        parts.append((rows, np.full(len(rows), len(parts), np.int16), np.clip(np.round(score), *ins.range)))
    rows, instrument, score = (np.concatenate(x) for x in zip(*parts, strict=True))
    order = sort_order(rows, instrument)
    rows, instrument, score = rows[order], instrument[order], score[order]
    who = s.patient[rows]
    return pl.DataFrame(
        [
            ids.gather(who),
            _dates(pat.intake_day[who] + s.day[rows]).alias("assessed_on"),
            pl.Series("instrument", np.array(list(a.instruments), dtype=object)[instrument], pl.String),
            pl.Series("score", score, pl.Float64),
        ]
    )


def truth_patients_frame(
    pat: Patients,
    traj: Trajectories,
    last_day: np.ndarray,
    bdnf_assayed: np.ndarray,
    hrv_source: np.ndarray,
    ids: pl.Series,
) -> pl.DataFrame:
    def day_or_null(day: np.ndarray, name: str) -> pl.Series:
        return _masked(np.where(day == NEVER, 0, day), day == NEVER, pl.Int64).alias(name)

    return pl.DataFrame(
        [
            ids,
            pl.Series("neuroplasticity_intake", pat.neuroplasticity_intake),
            pl.Series("stress_baseline", pat.stress_baseline),
            pl.Series("engagement", pat.engagement),
            pl.Series("relapse_log_hr_static", pat.relapse_static),
            pl.Series("age_at_intake", pat.age),
            pl.Series("deprivation_decile", pat.deprivation.astype(np.int64)),
            pl.Series("polysubstance", pat.polysubstance),
            pl.Series("trauma_history", pat.trauma),
            pl.Series("housing", np.array(HOUSING, dtype=object)[pat.housing], pl.String),
            day_or_null(traj.relapse_day, "relapse_day"),
            day_or_null(traj.dropout_day, "dropout_day"),
            pl.Series("admin_censor_day", pat.admin_days.astype(np.int64)),
            pl.Series("last_followup_day", last_day.astype(np.int64)),
            pl.Series("relapse_observed", traj.relapse_day <= last_day),
            pl.Series("bdnf_assayed", bdnf_assayed),
            pl.Series("hrv_source", hrv_source, pl.String),
        ]
    )


def landmark_truth_frame(pat: Patients, traj: Trajectories, ids: pl.Series) -> pl.DataFrame:
    order = sort_order(traj.landmark_patient, traj.landmark_day)
    who, day = traj.landmark_patient[order], traj.landmark_day[order]
    return pl.DataFrame(
        [
            ids.gather(who),
            _dates(pat.intake_day[who] + day).alias("landmark_date"),
            pl.Series("day", day, pl.Int64),
            pl.Series("true_risk_30d", traj.landmark_risk[order], pl.Float64),
            pl.Series("neuroplasticity", traj.landmark_neuroplasticity[order], pl.Float64),
            pl.Series("stress", traj.landmark_stress[order], pl.Float64),
        ]
    )
