"""A synthetic ketamine-treatment cohort whose relapse risk follows the review's claims.

Pure: a seed and `SimulationConfig` in, polars frames out (`relapse simulate` writes them).
The numbers live in `configs/simulation.yaml`, each with its rationale. The same seed gives the
same frames: every random draw comes from PCG64 streams spawned from the seed in a fixed order.

The model encodes the claims of Lomas (2025) as a daily relapse hazard over days since intake
(day 0):

    h(d) = rate[phase(d)] * exp(static + therapy(d) + latent(d) + interactions(d))

- phase: acute (0-13) highest, then early (14-89), consolidation (90-364), maintenance
  (365-729) falling;
- static: young age in bands (under 18 and 18-24 far higher, a step down at 25, little change
  past 30), female sex, polysubstance use, deprivation, prior
  treatments, trauma history, unstable housing / homelessness; their log-HRs are scaled up in
  the later phases (x1.25, x1.5), when circumstances outweigh withdrawal;
- latent neuroplasticity (BDNF measures it, lognormally): an AR(1) state recovering with
  abstinence time and attended core therapy; low (mainly below a threshold: a hinge) *and*
  falling (below its own 30-day average) raise the hazard;
- latent stress (HRV measures it: low RMSSD, high heart rate; PHQ9, GAD7 and craving rise with
  it): high at withdrawal, lowered lastingly by attended MBI sessions; harmful mainly above a
  threshold (a hinge);
- therapy exposure (attended sessions per week, averaged over ~3 weeks): CBT protective with a
  phase-dependent effect (strongest early), support modalities slightly, missed sessions harmful
  (and they also raise drop-out), and a run of consecutive missed sessions (a burst) more so for
  three weeks after the last one;
- interactions a linear model cannot express: EMDR protects only patients with a trauma history
  and only from day 14 (stabilised); low neuroplasticity harms only polysubstance users, below a
  threshold.

There is no unmeasured per-patient frailty: the hazard's only hidden parts are the latent
states' patient-level traits and daily noise, which BDNF, HRV and questionnaires reveal when
measured, and the few optional patient fields left blank (2-4% each; the hazard uses the true
value). Drop-out censors follow-up more in deprived, unstably housed, young and
disengaged (missing sessions) patients; the data extract censors late intakes.

Truth (`SimulatedCohort.truth`, never read by the pipeline):
- `patients`: latent traits, true (uncensored) relapse and drop-out days, data sources;
- `landmark_risk`: for each weekly landmark t at which the patient is at risk (no relapse on or
  before t, last follow-up after t), `true_risk_30d = 1 - exp(-sum of h(d), d = t+1..t+30)`
  along the realised latent trajectory, which continues past drop-out and relapse (risk "if
  followed up"). Since relapse is drawn from that same hazard, it is exactly the probability of
  the label given the trajectory; its next 30 days of daily noise and attendance are its only
  part unknowable at t.

Modules: `config` (the typed parameters), `cohort` (patients and their schedules), `terms`
(what every simulated day reads), `dynamics` (the day-by-day trajectories), `tables` (the
contract's frames and the truth).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from pipeline.simulator.cohort import Patients, Schedule, draw_patients, hrv_schedules, therapy_schedule, visit_schedule
from pipeline.simulator.config import SimulationConfig, load_simulation_config
from pipeline.simulator.dynamics import Trajectories, simulate_trajectories
from pipeline.simulator.tables import (
    assessments_frame,
    bdnf_frame,
    hrv_frame,
    landmark_truth_frame,
    last_followup_day,
    outcomes_frame,
    patient_ids,
    patients_frame,
    rr_frame,
    sessions_frame,
    truth_patients_frame,
)
from pipeline.simulator.terms import simulated_days

__all__ = [
    "GENERATOR",
    "NOTE",
    "SIMULATION_METADATA",
    "TRUTH_DIR",
    "SimulatedCohort",
    "SimulationConfig",
    "load_simulation_config",
    "simulate_cohort",
    "simulation_metadata",
]

SIMULATION_METADATA = "simulation.json"  # in the data folder: marks the data as synthetic
TRUTH_DIR = "truth"  # sub-folder of the data folder with the latent truth; the pipeline never reads it
GENERATOR = "relapse-risk simulator"
NOTE = "Simulated cohort for demonstration and testing; not real patients."
# One independent stream per concern, spawned in this order: adding draws to one leaves the others unchanged.
_STREAMS = ("patients", "therapy", "bdnf", "hrv", "assessments", "dynamics", "measurements")


@dataclass(frozen=True)
class SimulatedCohort:
    tables: dict[str, pl.DataFrame]  # the data contract's tables, typed as in contract.SPECS
    truth: dict[str, pl.DataFrame]  # "patients" and "landmark_risk"
    metadata: dict[str, Any]  # the content of SIMULATION_METADATA


@dataclass(frozen=True)
class _Measurements:
    """Who is assayed for BDNF, and when each measurement is scheduled (indexed by day)."""

    bdnf_assayed: np.ndarray
    schedules: dict[str, Schedule]  # "bdnf", "hrv" (summaries), "rr" (raw beats), "assessments"


def simulation_metadata(n_patients: int, seed: int, config: SimulationConfig) -> dict[str, Any]:
    """What `simulation.json` says: synthetic, by whom, with which seed and parameters."""
    return {
        "synthetic": True,
        "generator": GENERATOR,
        "seed": seed,
        "n_patients": n_patients,
        "parameters": config.model_dump(mode="json"),
        "note": NOTE,
    }


def simulate_cohort(
    n_patients: int,
    seed: int,
    config: SimulationConfig,
    progress: Callable[[int, int], None] | None = None,
) -> SimulatedCohort:
    """Simulate `n_patients` from intake to the end of follow-up; `progress(done, total)` per month."""
    if n_patients < 1:
        raise ValueError("n_patients must be at least 1")
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    rng = _streams(seed)
    n_days = simulated_days(config.cohort)
    pat = draw_patients(rng["patients"], config, n_patients)
    sessions = therapy_schedule(rng["therapy"], config, pat, n_days - 1).index(n_days)
    measured = _measurement_schedules(rng, config, pat, n_days)
    traj = simulate_trajectories(rng["dynamics"], config, pat, sessions, measured.schedules, progress)
    last_day = last_followup_day(config, pat, traj)
    ids = patient_ids(n_patients)
    tables = _contract_tables(rng["measurements"], config, pat, sessions, measured.schedules, traj, last_day, ids)
    truth = {
        "patients": truth_patients_frame(
            pat, traj, last_day, measured.bdnf_assayed, _hrv_source(pat.n, measured.schedules), ids
        ),
        "landmark_risk": landmark_truth_frame(pat, traj, ids),
    }
    return SimulatedCohort(tables, truth, simulation_metadata(n_patients, seed, config))


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {name: np.random.Generator(np.random.PCG64(child)) for name, child in zip(_STREAMS, children, strict=True)}


def _measurement_schedules(
    rng: dict[str, np.random.Generator], config: SimulationConfig, pat: Patients, n_days: int
) -> _Measurements:
    """BDNF visits (for the assayed share), wearable recordings and questionnaire visits."""
    b, a = config.bdnf, config.assessments
    bdnf_assayed = rng["bdnf"].random(pat.n) < b.patient_share
    summary, raw = hrv_schedules(rng["hrv"], config, pat, config.cohort.max_followup_days - 1)
    schedules = {
        "bdnf": visit_schedule(
            rng["bdnf"], bdnf_assayed, b.visit_days, b.visit_share, b.visit_jitter_days, b.max_samples
        ),
        "hrv": summary,
        "rr": raw,
        "assessments": visit_schedule(
            rng["assessments"], np.ones(pat.n, bool), a.visit_days, a.visit_share, a.visit_jitter_days
        ),
    }
    for schedule in schedules.values():
        schedule.index(n_days)
    return _Measurements(bdnf_assayed, schedules)


def _contract_tables(
    noise: np.random.Generator,
    config: SimulationConfig,
    pat: Patients,
    sessions: Schedule,
    m: dict[str, Schedule],
    traj: Trajectories,
    last_day: np.ndarray,
    ids: pl.Series,
) -> dict[str, pl.DataFrame]:
    """The contract's tables, every record cut at the patient's last follow-up day.

    The measurement noise is drawn table by table in this order, so the order is part of the seed's output.
    """
    seen = {k: s.day <= last_day[s.patient] for k, s in m.items()}
    np_at, s_at = traj.neuroplasticity_at, traj.stress_at
    return {
        "patients": patients_frame(config, pat, ids),
        "outcomes": outcomes_frame(pat, traj, last_day, ids),
        "bdnf": bdnf_frame(noise, config, pat, m["bdnf"], np_at["bdnf"], seen["bdnf"], ids),
        "hrv": hrv_frame(noise, config, pat, m["hrv"], s_at["hrv"], seen["hrv"], ids),
        "rr_intervals": rr_frame(noise, config, pat, m["rr"], s_at["rr"], seen["rr"], ids),
        "therapy_sessions": sessions_frame(
            config, pat, sessions, traj.attended, sessions.day <= last_day[sessions.patient], ids
        ),
        "assessments": assessments_frame(
            noise, config, pat, m["assessments"], np_at["assessments"], s_at["assessments"], seen["assessments"], ids
        ),
    }


def _hrv_source(n_patients: int, schedules: dict[str, Schedule]) -> np.ndarray:
    """Per patient: "raw" beats, "summary" recordings or "none" (never wore a device)."""
    source = np.full(n_patients, "none", dtype=object)
    source[schedules["hrv"].patient] = "summary"
    source[schedules["rr"].patient] = "raw"
    return source
