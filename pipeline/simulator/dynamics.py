"""The day-by-day trajectories: latent states, therapy attendance, relapse and drop-out.

All patients advance together, one day per step, as numpy arrays. Each day d:

1. the latent states move: neuroplasticity and stress are AR(1) processes pulled towards
   targets set by covariates, abstinence time, withdrawal and attended therapy;
2. the relapse hazard h(d) and drop-out hazard are evaluated from the states and the therapy
   exposure accumulated up to the day before (see `configs/simulation.yaml`);
3. the day's scheduled sessions are attended or missed (less likely under stress), the
   exposures updated, and the day's measurements read the states;
4. at a landmark (every 7 days) the at-risk patients' states and cumulative hazard are kept.

Relapse is the first day the cumulative hazard passes the patient's Exp(1) draw, so
P(relapse on t+1..t+30 | at risk at t, trajectory) = 1 - exp(-(H(t+30) - H(t))) exactly. The latent
trajectory goes on after relapse and drop-out (records are cut afterwards) so this truth exists for
every at-risk landmark, "as if followed up". Days past the last phase keep its rates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.simulator.cohort import Patients, Schedule
from pipeline.simulator.config import CohortConfig, SimulationConfig

NEVER = np.iinfo(np.int32).max


@dataclass
class Trajectories:
    """What the simulated days leave behind: event days, attendance and the states that were observed."""

    relapse_day: np.ndarray  # first day the hazard fired (NEVER if not by the last simulated day)
    dropout_day: np.ndarray  # the last day seen before dropping out (NEVER if none)
    attended: np.ndarray  # per therapy session, in schedule order
    neuroplasticity_at: dict[str, np.ndarray]  # per measurement schedule, in its order
    stress_at: dict[str, np.ndarray]
    landmark_patient: np.ndarray
    landmark_day: np.ndarray
    landmark_risk: np.ndarray
    landmark_neuroplasticity: np.ndarray
    landmark_stress: np.ndarray


def simulated_days(c: CohortConfig) -> int:
    """Days 0 .. n - 1 are simulated: up to the last landmark before the end of follow-up plus the horizon."""
    last_landmark = (c.max_followup_days - 1) // c.landmark_spacing_days * c.landmark_spacing_days
    return last_landmark + c.horizon_days + 1


def _by_day(cfg: SimulationConfig, n_days: int) -> dict[str, np.ndarray]:
    """Per-day lookup of the phase rates (days past the last phase keep the last phase's)."""
    day = np.arange(n_days)
    phase = np.searchsorted([p.end_day for p in cfg.phases], day)
    phase = np.minimum(phase, len(cfg.phases) - 1)
    pick = lambda attr: np.array([getattr(p, attr) for p in cfg.phases])[phase]  # noqa: E731
    return {
        "log_relapse": np.log(pick("daily_relapse_rate")),
        "log_dropout": np.log(np.maximum(pick("daily_dropout_rate"), 1e-300)),
        "cbt": pick("cbt_log_hr_per_weekly_session"),
        "static_scale": pick("static_log_hr_scale"),
        "emdr_on": (day >= cfg.relapse_hazard.emdr_from_day).astype(float),
        "recovery": cfg.neuroplasticity.recovery_gain * (1 - np.exp(-day / cfg.neuroplasticity.recovery_days)),
        "withdrawal": cfg.stress.withdrawal_peak * np.exp(-day / cfg.stress.withdrawal_days),
    }


def simulate_trajectories(
    rng: np.random.Generator,
    cfg: SimulationConfig,
    pat: Patients,
    sessions: Schedule,
    measurements: dict[str, Schedule],
    progress: Callable[[int, int], None] | None = None,
) -> Trajectories:
    """Advance every patient from intake to the last landmark plus the horizon."""
    c, r, npc, s, t = cfg.cohort, cfg.relapse_hazard, cfg.neuroplasticity, cfg.stress, cfg.therapy
    n_days = simulated_days(c)
    table = _by_day(cfg, n_days)
    n = pat.n
    names = list(t.modalities)
    code = {m: names.index(m) for m in names}
    is_support = np.isin(np.arange(len(names)), [code[m] for m in t.support_modalities])
    is_core = np.isin(np.arange(len(names)), [code[m] for m in t.core_modalities])
    attend_log_odds = np.array([m.attendance_log_odds for m in t.modalities.values()])

    relapse_threshold = rng.standard_exponential(n)
    dropout_threshold = rng.standard_exponential(n)
    stress = pat.stress_baseline + table["withdrawal"][0]
    plasticity = pat.neuroplasticity_intake - npc.stress_drag * stress
    plasticity_avg = plasticity.copy()
    cum_hazard, cum_dropout = np.zeros(n), np.zeros(n)
    relapse_day = np.full(n, NEVER, np.int32)
    dropout_day = np.full(n, NEVER, np.int32)
    exposure = {k: np.zeros(n) for k in ("cbt", "emdr", "support", "missed")}
    cum_core, cum_mbi = np.zeros(n), np.zeros(n)
    missed_streak = np.zeros(n, np.int32)  # consecutive missed sessions, reset by any attended one
    last_missed = np.full(n, -NEVER // 2, np.int64)  # day of the latest missed session
    emdr_coef = r.emdr_trauma_after_acute * pat.trauma
    poly_coef = r.low_bdnf_polysubstance * pat.polysubstance
    decay, weight = np.exp(-1 / t.exposure_days), 7 / t.exposure_days
    k_np, k_s, k_avg = 1 / npc.reversion_days, 1 / s.reversion_days, 1 / npc.falling_window_days

    attended = np.zeros(len(sessions.day), bool)
    np_at = {k: np.zeros(len(m.day)) for k, m in measurements.items()}
    stress_at = {k: np.zeros(len(m.day)) for k, m in measurements.items()}
    snapshots: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    risks: list[np.ndarray] = []

    for d in range(n_days):
        if d > 0:
            noise = rng.standard_normal((2, n))
            np_target = (
                pat.neuroplasticity_intake
                + table["recovery"][d]
                + npc.therapy_gain * np.minimum(cum_core, npc.therapy_sessions_cap) / npc.therapy_sessions_cap
                - npc.stress_drag * stress
            )
            plasticity += k_np * (np_target - plasticity) + npc.daily_noise_sd * noise[0]
            plasticity_avg += k_avg * (plasticity - plasticity_avg)
            s_target = (
                pat.stress_baseline
                + table["withdrawal"][d]
                - s.mbi_per_session * np.minimum(cum_mbi, s.mbi_sessions_cap)
            )
            stress += k_s * (s_target - stress) + s.daily_noise_sd * noise[1]

            in_burst = (missed_streak >= r.missed_burst_sessions) & (d - last_missed <= r.missed_burst_days)
            log_h = (
                table["static_scale"][d] * pat.relapse_static
                + table["log_relapse"][d]
                - table["cbt"][d] * exposure["cbt"]
                - table["emdr_on"][d] * emdr_coef * exposure["emdr"]
                - r.support_therapy * exposure["support"]
                + r.missed_sessions * exposure["missed"]
                + r.missed_burst * in_burst
                - r.neuroplasticity * plasticity
                + r.neuroplasticity_low * np.maximum(r.neuroplasticity_low_threshold - plasticity, 0)
                + r.neuroplasticity_falling * np.maximum(plasticity_avg - plasticity, 0)
                + r.stress * stress
                + r.stress_high * np.maximum(stress - r.stress_high_threshold, 0)
                + poly_coef * np.maximum(r.low_bdnf_threshold - plasticity, 0)
            )
            cum_hazard += np.exp(log_h)
            relapse_day[(cum_hazard >= relapse_threshold) & (relapse_day == NEVER)] = d
            cum_dropout += np.exp(
                pat.dropout_static + table["log_dropout"][d] + cfg.dropout.missed_sessions * exposure["missed"]
            )
            dropout_day[(cum_dropout >= dropout_threshold) & (dropout_day == NEVER)] = d

        for e in exposure.values():
            e *= decay
        today = sessions.on_day(d)
        if len(today):
            who, mod = sessions.patient[today], sessions.extra["modality"][today]
            logit = (
                attend_log_odds[mod]
                + pat.engagement[who]
                - t.attendance_stress * stress[who]
                - t.attendance_fatigue_per_year * d / 365
            )
            went = rng.random(len(today)) < 1 / (1 + np.exp(-logit))
            attended[today] = went
            np.add.at(exposure["cbt"], who[went & (mod == code["CBT"])], weight)
            np.add.at(exposure["emdr"], who[went & (mod == code["EMDR"])], weight)
            np.add.at(exposure["support"], who[went & is_support[mod]], weight)
            np.add.at(exposure["missed"], who[~went], weight)
            went_today = np.bincount(who[went], minlength=n) > 0
            missed_today = np.bincount(who[~went], minlength=n)
            missed_streak = np.where(went_today, 0, missed_streak + missed_today)
            last_missed[(missed_today > 0) & ~went_today] = d
            np.add.at(cum_core, who[went & is_core[mod]], 1.0)
            np.add.at(cum_mbi, who[went & (mod == code["MBI"])], 1.0)
        for key, schedule in measurements.items():
            idx = schedule.on_day(d)
            if len(idx):
                np_at[key][idx] = plasticity[schedule.patient[idx]]
                stress_at[key][idx] = stress[schedule.patient[idx]]

        if d % c.landmark_spacing_days == 0 and d < c.max_followup_days:
            at_risk = np.flatnonzero((relapse_day > d) & (dropout_day > d) & (pat.admin_days > d))
            snapshots.append((d, at_risk, plasticity[at_risk], stress[at_risk], cum_hazard[at_risk]))
        start = d - c.horizon_days
        if start >= 0 and start % c.landmark_spacing_days == 0 and start < c.max_followup_days:
            _, at_risk, _, _, h0 = snapshots[start // c.landmark_spacing_days]
            risks.append(-np.expm1(-(cum_hazard[at_risk] - h0)))
        if progress is not None and (d % 30 == 0 or d == n_days - 1):
            progress(d + 1, n_days)

    return Trajectories(
        relapse_day,
        dropout_day,
        attended,
        np_at,
        stress_at,
        landmark_patient=np.concatenate([x[1] for x in snapshots]).astype(np.int32),
        landmark_day=np.concatenate([np.full(len(x[1]), x[0], np.int32) for x in snapshots]),
        landmark_risk=np.concatenate(risks),
        landmark_neuroplasticity=np.concatenate([x[2] for x in snapshots]),
        landmark_stress=np.concatenate([x[3] for x in snapshots]),
    )
