"""What the daily dynamics read and never change: per-day phase lookups, modality codes, coefficients.

Built once per simulation from the parameters and the patients, so that each day's step only
indexes arrays: the phase of a day, its rates and effects, the recovery and withdrawal time
courses, and which modality counts towards which exposure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.simulator.cohort import Patients
from pipeline.simulator.config import CohortConfig, SimulationConfig, TherapyConfig


def simulated_days(c: CohortConfig) -> int:
    """Days 0 .. n - 1 are simulated: up to the last landmark before the end of follow-up plus the horizon."""
    last_landmark = (c.max_followup_days - 1) // c.landmark_spacing_days * c.landmark_spacing_days
    return last_landmark + c.horizon_days + 1


@dataclass(frozen=True)
class DailyTerms:
    """Per-day lookups (index = day): the phase's rates and effects, recovery and withdrawal time courses."""

    log_relapse: np.ndarray  # the reference patient's log daily relapse rate
    log_dropout: np.ndarray  # log daily drop-out rate; a zero rate becomes a tiny one, never log(0)
    cbt: np.ndarray  # CBT log-HR per attended session per week
    static_scale: np.ndarray  # multiplier of the static risk-group log-HRs
    emdr_on: np.ndarray  # 1.0 from the day EMDR can protect (the patient is stabilised), else 0.0
    recovery: np.ndarray  # neuroplasticity regained with abstinence time
    withdrawal: np.ndarray  # stress added by withdrawal, fading from intake


def daily_terms(cfg: SimulationConfig, n_days: int) -> DailyTerms:
    """The lookups for days 0 .. n_days - 1; days past the last phase keep the last phase's values."""
    day = np.arange(n_days)
    phase = np.minimum(np.searchsorted([p.end_day for p in cfg.phases], day), len(cfg.phases) - 1)

    def pick(attr: str) -> np.ndarray:
        return np.array([getattr(p, attr) for p in cfg.phases])[phase]

    npc, s = cfg.neuroplasticity, cfg.stress
    return DailyTerms(
        log_relapse=np.log(pick("daily_relapse_rate")),
        log_dropout=np.log(np.maximum(pick("daily_dropout_rate"), 1e-300)),
        cbt=pick("cbt_log_hr_per_weekly_session"),
        static_scale=pick("static_log_hr_scale"),
        emdr_on=(day >= cfg.relapse_hazard.emdr_from_day).astype(float),
        recovery=npc.recovery_gain * (1 - np.exp(-day / npc.recovery_days)),
        withdrawal=s.withdrawal_peak * np.exp(-day / s.withdrawal_days),
    )


@dataclass(frozen=True)
class SessionKinds:
    """Modality codes as `therapy_schedule` numbers them (the configured order) and what each counts towards."""

    cbt: int
    mbi: int
    emdr: int
    core: np.ndarray  # per code: counts towards neuroplastic recovery
    support: np.ndarray  # per code: a support modality, with a small direct protective effect
    attendance_log_odds: np.ndarray  # per code


def session_kinds(t: TherapyConfig) -> SessionKinds:
    """The codes of the modelled modalities and, per code, its kind and attendance log-odds."""
    names = list(t.modalities)
    codes = np.arange(len(names))
    return SessionKinds(
        cbt=names.index("CBT"),
        mbi=names.index("MBI"),
        emdr=names.index("EMDR"),
        core=np.isin(codes, [names.index(m) for m in t.core_modalities]),
        support=np.isin(codes, [names.index(m) for m in t.support_modalities]),
        attendance_log_odds=np.array([m.attendance_log_odds for m in t.modalities.values()]),
    )


@dataclass(frozen=True)
class Inputs:
    """What the daily steps read and never change."""

    cfg: SimulationConfig
    pat: Patients
    days: DailyTerms
    kinds: SessionKinds
    emdr_coef: np.ndarray  # EMDR's log-HR per weekly session: trauma-history patients only, else 0
    poly_coef: np.ndarray  # the low-neuroplasticity penalty: polysubstance users only, else 0
    exposure_decay: float  # daily factor of the exponential average over therapy.exposure_days
    session_weight: float  # what one session adds, so that the average counts sessions per week


def daily_inputs(cfg: SimulationConfig, pat: Patients, n_days: int) -> Inputs:
    """Everything the steps of days 0 .. n_days - 1 read, computed once."""
    r, t = cfg.relapse_hazard, cfg.therapy
    return Inputs(
        cfg,
        pat,
        daily_terms(cfg, n_days),
        session_kinds(t),
        emdr_coef=r.emdr_trauma_after_acute * pat.trauma,
        poly_coef=r.low_bdnf_polysubstance * pat.polysubstance,
        exposure_decay=np.exp(-1 / t.exposure_days),
        session_weight=7 / t.exposure_days,
    )
