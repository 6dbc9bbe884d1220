"""Who the simulated patients are and when their sessions and measurements are scheduled.

Pure numpy: a `Generator` and the typed parameters in, arrays out. Patients carry their true
covariates, latent traits and the static parts of their hazards; a `Schedule` lists events
(therapy sessions, BDNF and questionnaire visits, wearable recordings) by patient and day.
What each scheduled event observes is decided later by the daily dynamics
(`pipeline.simulator.dynamics`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from features.tables import HOUSING, SEXES
from pipeline.simulator.config import CohortConfig, DropoutConfig, RelapseHazardConfig, SimulationConfig

_EPOCH = np.datetime64("1970-01-01", "D")


def _epoch_day(value) -> int:
    return int((np.datetime64(value, "D") - _EPOCH).astype(np.int64))


def within_group_index(counts: np.ndarray) -> np.ndarray:
    """0, 1, ... inside each run of `np.repeat(..., counts)`.

    >>> within_group_index(np.array([2, 0, 3])).tolist()
    [0, 1, 0, 1, 2]
    """
    starts = np.cumsum(counts) - counts
    return np.arange(int(counts.sum())) - np.repeat(starts, counts)


@dataclass
class Covariates:
    """True per-patient covariates (index = patient), before any field is blanked."""

    intake_day: np.ndarray  # days since 1970-01-01
    admin_days: np.ndarray  # days from intake to the data extract
    age: np.ndarray
    sex: np.ndarray  # index into SEXES
    ethnicity: np.ndarray  # index into the configured ethnicity levels
    deprivation: np.ndarray  # 1 (most deprived) .. 10
    polysubstance: np.ndarray
    ketamine_years: np.ndarray
    prior_treatments: np.ndarray
    trauma: np.ndarray
    housing: np.ndarray  # index into HOUSING

    @property
    def n(self) -> int:
        return len(self.age)

    @property
    def female(self) -> np.ndarray:
        return self.sex == SEXES.index("female")

    @property
    def deprived(self) -> np.ndarray:
        """+1 for decile 1 (most deprived), 0 for 5.5, -1 for decile 10."""
        return (5.5 - self.deprivation) / 4.5

    @property
    def young(self) -> np.ndarray:
        return self.age < 25

    @property
    def unstable(self) -> np.ndarray:
        return self.housing == HOUSING.index("unstable")

    @property
    def homeless(self) -> np.ndarray:
        return self.housing == HOUSING.index("homeless")


@dataclass
class Patients(Covariates):
    """Covariates plus latent traits and the static parts of the log hazards."""

    engagement: np.ndarray  # attendance log-odds offset
    neuroplasticity_intake: np.ndarray
    stress_baseline: np.ndarray
    relapse_static: np.ndarray  # static part of the log relapse hazard
    dropout_static: np.ndarray  # static part of the log drop-out hazard
    missing: dict[str, np.ndarray] = field(default_factory=dict)  # column -> blanked in the output


def _choice(rng: np.random.Generator, shares: dict[str, float], n: int) -> np.ndarray:
    p = np.array(list(shares.values()), dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int8)


def _ages(rng: np.random.Generator, cfg: CohortConfig, n: int) -> np.ndarray:
    a = cfg.age
    shares = [a.adolescent_share, 1 - a.adolescent_share - a.adult_over_30_share, a.adult_over_30_share]
    group = rng.choice(3, size=n, p=shares)
    adolescent = rng.uniform(*a.adolescent_range, size=n)
    young = a.young_adult_range[0] + np.diff(a.young_adult_range)[0] * rng.beta(*a.young_adult_beta, size=n)
    older = a.older_range[0] + np.diff(a.older_range)[0] * rng.beta(*a.older_beta, size=n)
    return np.round(np.choose(group, [adolescent, young, older]), 1)


def _housing(rng: np.random.Generator, c: CohortConfig, deprived: np.ndarray) -> np.ndarray:
    """Stable / unstable / homeless, the insecure levels more likely in deprived areas."""
    base = np.log(np.array([c.housing_shares[k] for k in HOUSING]))
    logits = base[None, :] + np.outer(deprived * 4.5 * c.housing_deprivation_log_odds, [0.0, 1.0, 1.0])
    p = np.exp(logits)
    cum = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    return (rng.random((len(deprived), 1)) > cum[:, :2]).sum(axis=1).astype(np.int8)


def draw_covariates(rng: np.random.Generator, c: CohortConfig, n: int) -> Covariates:
    """Intake dates and the review's risk-group covariates, with their usual correlations."""
    first, last = _epoch_day(c.intake_start), _epoch_day(c.intake_end)
    intake = rng.integers(first, last + 1, size=n).astype(np.int32)
    age = _ages(rng, c, n)
    sex = _choice(rng, {s: c.sex_shares.get(s, 0.0) for s in SEXES}, n)
    ethnicity = _choice(rng, c.ethnicity_shares, n)
    decile_p = np.exp(-c.deprivation_decay_per_decile * np.arange(10))
    deprivation = rng.choice(10, size=n, p=decile_p / decile_p.sum()) + 1
    poly_logit = np.log(c.polysubstance_share / (1 - c.polysubstance_share)) + c.polysubstance_young_log_odds * (
        age < 25
    )
    polysubstance = rng.random(n) < 1 / (1 + np.exp(-poly_logit))
    trauma = rng.random(n) < np.where(sex == SEXES.index("female"), c.trauma_share_female, c.trauma_share_male)
    ketamine_years = np.round(np.minimum(rng.gamma(*c.ketamine_years_gamma, size=n), age - 12), 1)
    prior_mean = c.prior_treatments_base + c.prior_treatments_per_ketamine_year * ketamine_years
    prior = np.minimum(rng.poisson(prior_mean), c.prior_treatments_max)
    housing = _housing(rng, c, (5.5 - deprivation) / 4.5)
    admin = (_epoch_day(c.extract_date) - intake).astype(np.int32)
    return Covariates(
        intake, admin, age, sex, ethnicity, deprivation, polysubstance, ketamine_years, prior, trauma, housing
    )


def _relapse_static(r: RelapseHazardConfig, x: Covariates) -> np.ndarray:
    return (
        np.asarray(r.age_band_log_hr)[np.searchsorted(r.age_band_edges, x.age, side="right")]
        + r.female * x.female
        + r.polysubstance * x.polysubstance
        + r.deprivation_most_vs_middle * x.deprived
        + r.prior_treatment * np.minimum(x.prior_treatments, r.prior_treatment_cap)
        + r.trauma * x.trauma
        + r.housing_unstable * x.unstable
        + r.housing_homeless * x.homeless
    )


def _dropout_static(d: DropoutConfig, x: Covariates) -> np.ndarray:
    return (
        d.deprivation_most_vs_middle * x.deprived
        + d.housing_unstable * x.unstable
        + d.housing_homeless * x.homeless
        + d.young_under_25 * x.young
    )


def draw_patients(rng: np.random.Generator, cfg: SimulationConfig, n: int) -> Patients:
    """Covariates, latent traits (engagement, neuroplasticity, stress) and static hazard terms."""
    x = draw_covariates(rng, cfg.cohort, n)
    t, s, npc = cfg.therapy, cfg.stress, cfg.neuroplasticity
    engagement = (
        t.engagement_sd * rng.standard_normal(n)
        + t.engagement_deprivation_most_vs_middle * x.deprived
        + t.engagement_unstable_housing * x.unstable
        + t.engagement_homeless * x.homeless
        + t.engagement_young_under_25 * x.young
    )
    neuroplasticity = (
        npc.intake_mean
        + npc.ketamine_years_per_year * x.ketamine_years
        + npc.polysubstance * x.polysubstance
        + npc.age_per_decade_over_25 * (x.age - 25) / 10
        + npc.trait_sd * rng.standard_normal(n)
    )
    stress = (
        s.baseline_mean
        + s.deprivation_most_vs_middle * x.deprived
        + s.housing_unstable * x.unstable
        + s.housing_homeless * x.homeless
        + s.trauma * x.trauma
        + s.female * x.female
        + s.trait_sd * rng.standard_normal(n)
    )
    missing = {col: rng.random(n) < share for col, share in sorted(cfg.cohort.missing_shares.items())}
    return Patients(
        **vars(x),
        engagement=engagement,
        neuroplasticity_intake=neuroplasticity,
        stress_baseline=stress,
        relapse_static=_relapse_static(cfg.relapse_hazard, x),
        dropout_static=_dropout_static(cfg.dropout, x),
        missing=missing,
    )


@dataclass
class Schedule:
    """Events in output order (sorted by patient, then time) plus a by-day index for the loop."""

    patient: np.ndarray
    day: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    by_day: np.ndarray = field(init=False)
    day_start: np.ndarray = field(init=False)

    def index(self, n_days: int) -> Schedule:
        """Index the events by day for days 0 .. n_days - 1; returns the schedule itself."""
        self.by_day = np.argsort(self.day, kind="stable")
        self.day_start = np.searchsorted(self.day[self.by_day], np.arange(n_days + 1))
        return self

    def on_day(self, d: int) -> np.ndarray:
        """Positions (in output order) of the events on day `d`."""
        return self.by_day[self.day_start[d] : self.day_start[d + 1]]


def sort_order(*keys: np.ndarray) -> np.ndarray:
    """The stable order sorting by the first key, then the next, ...: `np.lexsort`, but faster.

    Non-negative integer keys are packed into one int64 when they fit, else lexsort is used.

    >>> sort_order(np.array([1, 0, 1]), np.array([5, 9, 2])).tolist()
    [1, 2, 0]
    """
    packed = np.zeros(len(keys[0]), np.int64)
    bits = 0
    for key in keys:
        width = int(key.max()).bit_length() if len(key) else 0
        if (len(key) and key.min() < 0) or bits + width > 62:
            return np.lexsort(tuple(reversed(keys)))
        packed = (packed << width) | key.astype(np.int64)
        bits += width
    return np.argsort(packed, kind="stable")


def _sorted(patient: np.ndarray, day: np.ndarray, extra: dict[str, np.ndarray], *keys: np.ndarray) -> Schedule:
    order = sort_order(patient, day, *keys)
    return Schedule(
        patient[order].astype(np.int32), day[order].astype(np.int32), {k: v[order] for k, v in extra.items()}
    )


def therapy_schedule(rng: np.random.Generator, cfg: SimulationConfig, pat: Patients, last_day: int) -> Schedule:
    """Courses per modality assigned at intake: weekly-ish sessions with a little jitter."""
    parts = []
    for code, m in enumerate(cfg.therapy.modalities.values()):
        share = np.full(pat.n, m.share) if m.share_trauma is None else np.where(pat.trauma, m.share_trauma, m.share)
        who = np.flatnonzero(rng.random(pat.n) < share)
        counts = rng.integers(m.sessions[0], m.sessions[1] + 1, size=len(who))
        start = rng.integers(m.start_day[0], m.start_day[1] + 1, size=len(who))
        early = rng.random(len(who)) < m.early_start_share
        start[early] = rng.integers(m.early_start_day[0], m.early_start_day[1] + 1, size=int(early.sum()))
        k = within_group_index(counts)
        jitter = rng.integers(-cfg.therapy.jitter_days, cfg.therapy.jitter_days + 1, size=len(k))
        day = np.maximum(np.repeat(start, counts) + np.floor(k * m.interval_days + 0.5).astype(np.int64) + jitter, 0)
        duration = 5 * np.round(rng.uniform(*m.duration_min, size=len(k)) / 5)
        parts.append((np.repeat(who, counts), day, np.full(len(k), code, np.int8), duration))
    patient, day, modality, duration = (np.concatenate(x) for x in zip(*parts, strict=True))
    keep = day <= last_day
    return _sorted(patient[keep], day[keep], {"modality": modality[keep], "duration": duration[keep]}, modality[keep])


def visit_schedule(
    rng: np.random.Generator,
    who: np.ndarray,
    visit_days: list[int],
    shares: list[float],
    jitter: int,
    cap: int | None = None,
) -> Schedule:
    """Protocol visits kept with a per-visit chance (at least one for each patient in `who`)."""
    days = np.asarray(visit_days)
    taken = who[:, None] & (rng.random((len(who), len(days))) < np.asarray(shares))
    none = who & ~taken.any(axis=1)
    taken[none, 0] = True
    if cap is not None:
        taken &= np.cumsum(taken, axis=1) <= cap
    patient, visit = np.nonzero(taken)
    day = np.maximum(days[visit] + rng.integers(-jitter, jitter + 1, size=len(visit)), 0)
    return _sorted(patient, day, {"visit": visit.astype(np.int16)})


def hrv_schedules(
    rng: np.random.Generator, cfg: SimulationConfig, pat: Patients, last_day: int
) -> tuple[Schedule, Schedule]:
    """Wearable recordings on irregular days until the wearer stops: summaries, or raw beats."""
    h = cfg.hrv
    wearer = rng.random(pat.n) < h.wearer_share
    raw = wearer & (rng.random(pat.n) < h.raw_beats_share)
    first = rng.integers(h.first_day[0], h.first_day[1] + 1, size=pat.n)
    end = np.minimum(first + rng.exponential(h.wear_mean_days, size=pat.n).astype(np.int64), last_day)
    span = end - first + 1
    rate = rng.uniform(*h.recordings_per_day, size=pat.n)
    counts = np.where(wearer & ~raw, rng.poisson(rate * span), 0)
    raw_counts = np.where(raw, rng.integers(1, h.raw_max_recordings + 1, size=pat.n), 0)

    def recordings(counts: np.ndarray, hours: tuple[float, float]) -> Schedule:
        patient = np.repeat(np.arange(pat.n), counts)
        day = first[patient] + np.floor(rng.random(len(patient)) * span[patient]).astype(np.int64)
        second = np.floor(rng.uniform(hours[0] * 3600, hours[1] * 3600, size=len(patient))).astype(np.int64)
        return _sorted(patient, day, {"second": second}, second)

    return recordings(counts, h.summary_hours_utc), recordings(raw_counts, h.raw_hours_utc)
