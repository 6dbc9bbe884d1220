"""The day-by-day trajectories: latent states, therapy attendance, relapse and drop-out.

All patients advance together, one day per step, as numpy arrays held in a `State`; what the
steps read and never change is in `pipeline.simulator.terms.Inputs`. Each day d:

1. the latent states move (`move_latent_states`): neuroplasticity and stress are AR(1)
   processes pulled towards targets set by covariates, abstinence time, withdrawal and attended
   therapy;
2. the relapse hazard h(d) and the drop-out hazard are evaluated from the states and the therapy
   exposure accumulated up to the day before (`relapse_log_hazard`, `dropout_log_hazard`; see
   `configs/simulation.yaml`) and added to their running totals (`accumulate_hazards`);
3. the day's scheduled sessions are attended or missed, less likely under stress
   (`attend_sessions`), the exposures updated, and the day's measurements read the states
   (`read_measurements`);
4. at a landmark (every 7 days) the at-risk patients' states and cumulative hazard are kept, and
   the landmark 30 days back gets its true risk (`keep_landmarks`).

Relapse is the first day the cumulative hazard passes the patient's Exp(1) draw, so
P(relapse on t+1..t+30 | at risk at t, trajectory) = 1 - exp(-(H(t+30) - H(t))) exactly. The
latent trajectory goes on after relapse and drop-out (records are cut afterwards) so this truth
exists for every at-risk landmark, "as if followed up". Days past the last phase keep its rates.

Every draw comes from one generator in a fixed order (the two thresholds, then per day the
latent noise and the attendance draws), so the order of the steps is part of a seed's output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.simulator.cohort import Patients, Schedule
from pipeline.simulator.config import SimulationConfig
from pipeline.simulator.terms import Inputs, daily_inputs, simulated_days

NEVER = np.iinfo(np.int32).max  # event day of an event that did not happen


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


@dataclass
class Exposure:
    """Sessions per week, exponentially averaged: attended CBT, EMDR and support, and missed (any modality)."""

    cbt: np.ndarray
    emdr: np.ndarray
    support: np.ndarray
    missed: np.ndarray

    @classmethod
    def zeros(cls, n: int) -> Exposure:
        return cls(np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n))

    def decay(self, factor: float) -> None:
        for exposure in (self.cbt, self.emdr, self.support, self.missed):
            exposure *= factor


@dataclass
class State:
    """Every patient's latent states, event thresholds and running tallies; the daily steps update it in place."""

    neuroplasticity: np.ndarray
    neuroplasticity_avg: np.ndarray  # its exponential average over falling_window_days: the "recent" level
    stress: np.ndarray
    relapse_threshold: np.ndarray  # Exp(1): relapse on the first day the cumulative hazard passes it
    dropout_threshold: np.ndarray  # Exp(1), likewise for drop-out
    relapse_hazard: np.ndarray  # cumulative relapse hazard H(d)
    dropout_hazard: np.ndarray  # cumulative drop-out hazard
    relapse_day: np.ndarray  # NEVER until the relapse hazard fires
    dropout_day: np.ndarray  # NEVER until the drop-out hazard fires
    exposure: Exposure
    core_sessions: np.ndarray  # attended core-therapy sessions so far
    mbi_sessions: np.ndarray  # attended MBI sessions so far
    missed_streak: np.ndarray  # consecutive missed sessions, reset by any attended one
    last_missed: np.ndarray  # day of the latest missed session (long before intake if none)


def initial_state(rng: np.random.Generator, inputs: Inputs) -> State:
    """Intake: stress raised by withdrawal, neuroplasticity dragged down by it, no therapy, no events."""
    pat, n = inputs.pat, inputs.pat.n
    relapse_threshold = rng.standard_exponential(n)
    dropout_threshold = rng.standard_exponential(n)
    stress = pat.stress_baseline + inputs.days.withdrawal[0]
    neuroplasticity = pat.neuroplasticity_intake - inputs.cfg.neuroplasticity.stress_drag * stress
    return State(
        neuroplasticity=neuroplasticity,
        neuroplasticity_avg=neuroplasticity.copy(),
        stress=stress,
        relapse_threshold=relapse_threshold,
        dropout_threshold=dropout_threshold,
        relapse_hazard=np.zeros(n),
        dropout_hazard=np.zeros(n),
        relapse_day=np.full(n, NEVER, np.int32),
        dropout_day=np.full(n, NEVER, np.int32),
        exposure=Exposure.zeros(n),
        core_sessions=np.zeros(n),
        mbi_sessions=np.zeros(n),
        missed_streak=np.zeros(n, np.int32),
        last_missed=np.full(n, -NEVER // 2, np.int64),
    )


def move_latent_states(state: State, inputs: Inputs, noise: np.ndarray, d: int) -> None:
    """One AR(1) step of each latent state towards its target for day `d`, plus the day's noise (2 x n).

    Neuroplasticity recovers with abstinence time and attended core therapy (saturating) and is
    dragged down by stress; stress fades from withdrawal and falls lastingly with attended MBI.
    """
    pat, npc, s = inputs.pat, inputs.cfg.neuroplasticity, inputs.cfg.stress
    np_target = (
        pat.neuroplasticity_intake
        + inputs.days.recovery[d]
        + npc.therapy_gain * np.minimum(state.core_sessions, npc.therapy_sessions_cap) / npc.therapy_sessions_cap
        - npc.stress_drag * state.stress
    )
    k_np, k_avg, k_s = 1 / npc.reversion_days, 1 / npc.falling_window_days, 1 / s.reversion_days
    state.neuroplasticity += k_np * (np_target - state.neuroplasticity) + npc.daily_noise_sd * noise[0]
    state.neuroplasticity_avg += k_avg * (state.neuroplasticity - state.neuroplasticity_avg)
    s_target = (
        pat.stress_baseline
        + inputs.days.withdrawal[d]
        - s.mbi_per_session * np.minimum(state.mbi_sessions, s.mbi_sessions_cap)
    )
    state.stress += k_s * (s_target - state.stress) + s.daily_noise_sd * noise[1]


def relapse_log_hazard(state: State, inputs: Inputs, d: int) -> np.ndarray:
    """log h(d): phase rate, scaled risk groups, therapy exposure, a burst of misses, latent states, interactions."""
    r, days, e = inputs.cfg.relapse_hazard, inputs.days, state.exposure
    plasticity, stress = state.neuroplasticity, state.stress
    in_burst = (state.missed_streak >= r.missed_burst_sessions) & (d - state.last_missed <= r.missed_burst_days)
    return (
        days.static_scale[d] * inputs.pat.relapse_static
        + days.log_relapse[d]
        - days.cbt[d] * e.cbt
        - days.emdr_on[d] * inputs.emdr_coef * e.emdr
        - r.support_therapy * e.support
        + r.missed_sessions * e.missed
        + r.missed_burst * in_burst
        - r.neuroplasticity * plasticity
        + r.neuroplasticity_low * np.maximum(r.neuroplasticity_low_threshold - plasticity, 0)
        + r.neuroplasticity_falling * np.maximum(state.neuroplasticity_avg - plasticity, 0)
        + r.stress * stress
        + r.stress_high * np.maximum(stress - r.stress_high_threshold, 0)
        + inputs.poly_coef * np.maximum(r.low_bdnf_threshold - plasticity, 0)
    )


def dropout_log_hazard(state: State, inputs: Inputs, d: int) -> np.ndarray:
    """Log daily drop-out hazard: phase rate, risk groups and missed sessions (disengagement precedes drop-out)."""
    return (
        inputs.pat.dropout_static
        + inputs.days.log_dropout[d]
        + inputs.cfg.dropout.missed_sessions * state.exposure.missed
    )


def accumulate_hazards(state: State, log_relapse: np.ndarray, log_dropout: np.ndarray, d: int) -> None:
    """Add day `d`'s hazards; an event happens on the first day its cumulative hazard passes its threshold."""
    state.relapse_hazard += np.exp(log_relapse)
    state.relapse_day[(state.relapse_hazard >= state.relapse_threshold) & (state.relapse_day == NEVER)] = d
    state.dropout_hazard += np.exp(log_dropout)
    state.dropout_day[(state.dropout_hazard >= state.dropout_threshold) & (state.dropout_day == NEVER)] = d


def attend_sessions(
    rng: np.random.Generator, state: State, inputs: Inputs, sessions: Schedule, today: np.ndarray, d: int
) -> np.ndarray:
    """Draw whether each of today's sessions is attended (less likely under stress and with time in treatment)
    and count it into the exposures and tallies; returns the draws, one per session in `today`."""
    t, kinds = inputs.cfg.therapy, inputs.kinds
    who, mod = sessions.patient[today], sessions.extra["modality"][today]
    logit = (
        kinds.attendance_log_odds[mod]
        + inputs.pat.engagement[who]
        - t.attendance_stress * state.stress[who]
        - t.attendance_fatigue_per_year * d / 365
    )
    went = rng.random(len(today)) < 1 / (1 + np.exp(-logit))
    count_sessions(state, inputs, who, mod, went, d)
    return went


def count_sessions(state: State, inputs: Inputs, who: np.ndarray, mod: np.ndarray, went: np.ndarray, d: int) -> None:
    """Exposures, session tallies and the run of missed sessions after the day's attendance."""
    kinds, e, weight, n = inputs.kinds, state.exposure, inputs.session_weight, inputs.pat.n
    np.add.at(e.cbt, who[went & (mod == kinds.cbt)], weight)
    np.add.at(e.emdr, who[went & (mod == kinds.emdr)], weight)
    np.add.at(e.support, who[went & kinds.support[mod]], weight)
    np.add.at(e.missed, who[~went], weight)
    went_today = np.bincount(who[went], minlength=n) > 0
    missed_today = np.bincount(who[~went], minlength=n)
    state.missed_streak = np.where(went_today, 0, state.missed_streak + missed_today)
    state.last_missed[(missed_today > 0) & ~went_today] = d
    np.add.at(state.core_sessions, who[went & kinds.core[mod]], 1.0)
    np.add.at(state.mbi_sessions, who[went & (mod == kinds.mbi)], 1.0)


@dataclass(frozen=True)
class Landmark:
    """The patients at risk at the end of a landmark day, with their states and cumulative hazard then."""

    day: int
    patients: np.ndarray
    neuroplasticity: np.ndarray
    stress: np.ndarray
    relapse_hazard: np.ndarray


@dataclass
class Record:
    """What the days write down: attendance, the states each measurement reads, landmarks and their true risks."""

    attended: np.ndarray  # per therapy session, in schedule order
    neuroplasticity_at: dict[str, np.ndarray]  # per measurement schedule, in its order
    stress_at: dict[str, np.ndarray]
    landmarks: list[Landmark]
    risks: list[np.ndarray]  # per closed landmark, in landmark order: P(relapse in the horizon)

    @classmethod
    def empty(cls, sessions: Schedule, measurements: dict[str, Schedule]) -> Record:
        return cls(
            attended=np.zeros(len(sessions.day), bool),
            neuroplasticity_at={k: np.zeros(len(m.day)) for k, m in measurements.items()},
            stress_at={k: np.zeros(len(m.day)) for k, m in measurements.items()},
            landmarks=[],
            risks=[],
        )


def read_measurements(record: Record, state: State, measurements: dict[str, Schedule], d: int) -> None:
    """Each measurement scheduled on day `d` reads its patient's latent states at the end of the day."""
    for key, schedule in measurements.items():
        idx = schedule.on_day(d)
        if len(idx):
            record.neuroplasticity_at[key][idx] = state.neuroplasticity[schedule.patient[idx]]
            record.stress_at[key][idx] = state.stress[schedule.patient[idx]]


def keep_landmarks(record: Record, state: State, inputs: Inputs, d: int) -> None:
    """Open the landmark on day `d` (if it is one) and close the one `horizon_days` earlier with its true risk."""
    c = inputs.cfg.cohort
    if d % c.landmark_spacing_days == 0 and d < c.max_followup_days:
        at_risk = np.flatnonzero((state.relapse_day > d) & (state.dropout_day > d) & (inputs.pat.admin_days > d))
        record.landmarks.append(
            Landmark(d, at_risk, state.neuroplasticity[at_risk], state.stress[at_risk], state.relapse_hazard[at_risk])
        )
    start = d - c.horizon_days
    if start >= 0 and start % c.landmark_spacing_days == 0 and start < c.max_followup_days:
        landmark = record.landmarks[start // c.landmark_spacing_days]
        record.risks.append(-np.expm1(-(state.relapse_hazard[landmark.patients] - landmark.relapse_hazard)))


def trajectories(state: State, record: Record) -> Trajectories:
    """Event days and the record, with the landmarks concatenated in landmark order."""
    marks = record.landmarks
    return Trajectories(
        state.relapse_day,
        state.dropout_day,
        record.attended,
        record.neuroplasticity_at,
        record.stress_at,
        landmark_patient=np.concatenate([m.patients for m in marks]).astype(np.int32),
        landmark_day=np.concatenate([np.full(len(m.patients), m.day, np.int32) for m in marks]),
        landmark_risk=np.concatenate(record.risks),
        landmark_neuroplasticity=np.concatenate([m.neuroplasticity for m in marks]),
        landmark_stress=np.concatenate([m.stress for m in marks]),
    )


def simulate_trajectories(
    rng: np.random.Generator,
    cfg: SimulationConfig,
    pat: Patients,
    sessions: Schedule,
    measurements: dict[str, Schedule],
    progress: Callable[[int, int], None] | None = None,
) -> Trajectories:
    """Advance every patient from intake to the last landmark plus the horizon; `progress(done, total)` monthly."""
    n_days = simulated_days(cfg.cohort)
    inputs = daily_inputs(cfg, pat, n_days)
    state = initial_state(rng, inputs)
    record = Record.empty(sessions, measurements)
    for d in range(n_days):
        if d > 0:
            move_latent_states(state, inputs, rng.standard_normal((2, pat.n)), d)
            accumulate_hazards(state, relapse_log_hazard(state, inputs, d), dropout_log_hazard(state, inputs, d), d)
        state.exposure.decay(inputs.exposure_decay)
        today = sessions.on_day(d)
        if len(today):
            record.attended[today] = attend_sessions(rng, state, inputs, sessions, today, d)
        read_measurements(record, state, measurements, d)
        keep_landmarks(record, state, inputs, d)
        if progress is not None and (d % 30 == 0 or d == n_days - 1):
            progress(d + 1, n_days)
    return trajectories(state, record)
