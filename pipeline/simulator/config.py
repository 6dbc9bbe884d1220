"""Typed parameters of the cohort simulator: `configs/simulation.yaml`, validated once.

Every number the simulator uses lives in that file with its rationale; this module only gives
it types and rejects unknown keys, so a typo cannot silently fall back to a default.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from features.config import check_phases
from features.tables import HOUSING, MODALITIES, SEXES
from pipeline.config import ConfigError, config_errors, deep_merge, read_yaml

MASKABLE = (  # the optional patient columns `cohort.missing_shares` may leave blank
    "ethnicity",
    "deprivation_decile",
    "polysubstance",
    "ketamine_years",
    "prior_treatments",
    "trauma_history",
    "housing",
)

DEFAULT_SIMULATION_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "simulation.yaml"

Share = Field(ge=0, le=1)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _by_name(mapping: dict[str, Any]) -> dict[str, Any]:
    """Mappings whose order drives random draws are kept sorted: key order in a file never matters."""
    return dict(sorted(mapping.items()))


class SimPhase(_Strict):
    name: str
    start_day: int = Field(ge=0)
    end_day: int = Field(ge=0)
    daily_relapse_rate: float = Field(gt=0, lt=1)
    daily_dropout_rate: float = Field(ge=0, lt=1)
    cbt_log_hr_per_weekly_session: float = Field(ge=0)
    static_log_hr_scale: float = Field(ge=0)


class AgeConfig(_Strict):
    adolescent_share: float = Share
    adult_over_30_share: float = Share
    adolescent_range: tuple[float, float]
    young_adult_range: tuple[float, float]
    young_adult_beta: tuple[float, float]
    older_range: tuple[float, float]
    older_beta: tuple[float, float]


class CohortConfig(_Strict):
    intake_start: date
    intake_end: date
    extract_date: date
    max_followup_days: int = Field(gt=0)
    landmark_spacing_days: int = Field(gt=0)
    horizon_days: int = Field(gt=0)
    age: AgeConfig
    sex_shares: dict[str, float]
    ethnicity_shares: dict[str, float]
    deprivation_decay_per_decile: float
    polysubstance_share: float = Share
    polysubstance_young_log_odds: float
    trauma_share_male: float = Share
    trauma_share_female: float = Share
    ketamine_years_gamma: tuple[float, float]
    prior_treatments_base: float = Field(ge=0)
    prior_treatments_per_ketamine_year: float = Field(ge=0)
    prior_treatments_max: int = Field(ge=0)
    housing_shares: dict[str, float]
    housing_deprivation_log_odds: float
    missing_shares: dict[str, float]

    _sorted_shares = field_validator("ethnicity_shares", "missing_shares")(_by_name)

    @model_validator(mode="after")
    def _dates_and_levels(self) -> CohortConfig:
        if not self.intake_start <= self.intake_end < self.extract_date:
            raise ValueError("need intake_start <= intake_end < extract_date")
        if not set(self.sex_shares) <= set(SEXES):
            raise ValueError(f"sex_shares: levels must be among {', '.join(SEXES)}")
        if set(self.housing_shares) != set(HOUSING):
            raise ValueError(f"housing_shares: give exactly {', '.join(HOUSING)}")
        if not set(self.missing_shares) <= set(MASKABLE):
            raise ValueError(f"missing_shares: only optional columns can be missing: {', '.join(MASKABLE)}")
        for name in ("sex_shares", "ethnicity_shares", "housing_shares"):  # a distribution over levels
            shares = getattr(self, name)
            if any(v < 0 for v in shares.values()) or abs(sum(shares.values()) - 1) > 1e-6:
                raise ValueError(f"{name}: shares must be 0 or more and add up to 1 (these add up to "
                                 f"{sum(shares.values()):g}); a partial override merges with the defaults, so give "
                                 "every level")
        if any(not 0 <= v <= 1 for v in self.missing_shares.values()):
            raise ValueError("missing_shares: each share is a probability, 0 to 1")
        if self.extract_date > datetime.now(UTC).date():
            raise ValueError(f"extract_date {self.extract_date} is after today: the data contract refuses records "
                             "from the future, so the cohort would not validate")
        return self


class RelapseHazardConfig(_Strict):
    age_band_edges: list[float]
    age_band_log_hr: list[float]
    female: float
    polysubstance: float
    deprivation_most_vs_middle: float
    prior_treatment: float
    prior_treatment_cap: int = Field(ge=0)
    trauma: float
    housing_unstable: float
    housing_homeless: float
    neuroplasticity: float
    neuroplasticity_low: float
    neuroplasticity_low_threshold: float
    neuroplasticity_falling: float
    stress: float
    stress_high: float
    stress_high_threshold: float
    emdr_trauma_after_acute: float
    emdr_from_day: int = Field(ge=0)
    support_therapy: float
    missed_sessions: float
    missed_burst: float
    missed_burst_sessions: int = Field(ge=1)
    missed_burst_days: int = Field(ge=1)
    low_bdnf_polysubstance: float
    low_bdnf_threshold: float

    @model_validator(mode="after")
    def _age_bands(self) -> RelapseHazardConfig:
        if len(self.age_band_log_hr) != len(self.age_band_edges) + 1:
            raise ValueError("age_band_log_hr needs one value per band: len(age_band_edges) + 1")
        if any(b <= a for a, b in pairwise(self.age_band_edges)):
            raise ValueError("age_band_edges must be strictly increasing")
        return self


class DropoutConfig(_Strict):
    deprivation_most_vs_middle: float
    housing_unstable: float
    housing_homeless: float
    young_under_25: float
    missed_sessions: float


class NeuroplasticityConfig(_Strict):
    intake_mean: float
    ketamine_years_per_year: float
    polysubstance: float
    age_per_decade_over_25: float
    trait_sd: float = Field(ge=0)
    recovery_gain: float
    recovery_days: float = Field(gt=0)
    therapy_gain: float
    therapy_sessions_cap: int = Field(gt=0)
    stress_drag: float
    reversion_days: float = Field(gt=0)
    daily_noise_sd: float = Field(ge=0)
    falling_window_days: float = Field(gt=0)


class StressConfig(_Strict):
    baseline_mean: float
    deprivation_most_vs_middle: float
    housing_unstable: float
    housing_homeless: float
    trauma: float
    female: float
    trait_sd: float = Field(ge=0)
    withdrawal_peak: float
    withdrawal_days: float = Field(gt=0)
    mbi_per_session: float
    mbi_sessions_cap: int = Field(gt=0)
    reversion_days: float = Field(gt=0)
    daily_noise_sd: float = Field(ge=0)


class ModalityConfig(_Strict):
    share: float = Share
    share_trauma: float | None = Field(default=None, ge=0, le=1)
    start_day: tuple[int, int]
    early_start_share: float = Field(default=0.0, ge=0, le=1)
    early_start_day: tuple[int, int] = (0, 0)
    sessions: tuple[int, int]
    interval_days: float = Field(gt=0)
    duration_min: tuple[float, float]
    attendance_log_odds: float


class TherapyConfig(_Strict):
    modalities: dict[str, ModalityConfig]
    exposure_days: float = Field(gt=0)
    core_modalities: list[str]
    support_modalities: list[str]
    engagement_sd: float = Field(ge=0)
    engagement_deprivation_most_vs_middle: float
    engagement_unstable_housing: float
    engagement_homeless: float
    engagement_young_under_25: float
    attendance_stress: float
    attendance_fatigue_per_year: float
    jitter_days: int = Field(ge=0)

    _sorted_modalities = field_validator("modalities")(_by_name)

    @model_validator(mode="after")
    def _known_modalities(self) -> TherapyConfig:
        named = set(self.modalities) | set(self.core_modalities) | set(self.support_modalities)
        if not named <= set(MODALITIES):
            raise ValueError(f"modalities must be among {', '.join(MODALITIES)}")
        if not {"CBT", "MBI", "EMDR"} <= set(self.modalities):
            raise ValueError("modalities must include CBT, MBI and EMDR (their effects are modelled)")
        if not set(self.core_modalities) | set(self.support_modalities) <= set(self.modalities):
            raise ValueError("core_modalities and support_modalities must be configured modalities")
        return self


class BdnfConfig(_Strict):
    patient_share: float = Share
    visit_days: list[int]
    visit_share: list[float]
    visit_jitter_days: int = Field(ge=0)
    max_samples: int = Field(gt=0)
    log_mean_ng_ml: float
    log_per_neuroplasticity: float
    log_noise_sd: float = Field(ge=0)

    @model_validator(mode="after")
    def _one_share_per_visit(self) -> BdnfConfig:
        if len(self.visit_share) != len(self.visit_days):
            raise ValueError("visit_share needs one value per visit_days entry")
        return self


class HrvConfig(_Strict):
    wearer_share: float = Share
    raw_beats_share: float = Share
    first_day: tuple[int, int]
    wear_mean_days: float = Field(gt=0)
    recordings_per_day: tuple[float, float]
    raw_max_recordings: int = Field(gt=0)
    raw_beats: tuple[int, int]
    raw_artefact_share: float = Share
    rr_ar_coefficient: float = Field(ge=0, lt=1)
    rr_clip_ms: tuple[float, float]
    log_rmssd_mean: float
    log_rmssd_per_stress: float
    log_rmssd_per_year_over_25: float
    log_rmssd_noise_sd: float = Field(ge=0)
    log_sdnn_over_rmssd: float
    log_sdnn_noise_sd: float = Field(ge=0)
    heart_rate_mean: float
    heart_rate_per_stress: float
    heart_rate_noise_sd: float = Field(ge=0)
    heart_rate_clip: tuple[float, float]
    log_lf_hf_mean: float
    log_lf_hf_per_stress: float
    log_lf_hf_noise_sd: float = Field(ge=0)
    summary_hours_utc: tuple[float, float]
    raw_hours_utc: tuple[float, float]


class InstrumentConfig(_Strict):
    visits: list[int]
    intercept: float
    per_stress: float
    per_neuroplasticity: float = 0.0
    per_trauma: float = 0.0
    per_female: float = 0.0
    noise_sd: float = Field(ge=0)
    range: tuple[float, float]


class AssessmentsConfig(_Strict):
    visit_days: list[int]
    visit_share: list[float]
    visit_jitter_days: int = Field(ge=0)
    instruments: dict[str, InstrumentConfig]

    _sorted_instruments = field_validator("instruments")(_by_name)

    @model_validator(mode="after")
    def _visits_exist(self) -> AssessmentsConfig:
        if len(self.visit_share) != len(self.visit_days):
            raise ValueError("visit_share needs one value per visit_days entry")
        for name, instrument in self.instruments.items():
            if not set(instrument.visits) <= set(self.visit_days):
                raise ValueError(f"instruments.{name}.visits must be among visit_days")
        return self


class SimulationConfig(_Strict):
    cohort: CohortConfig
    phases: list[SimPhase]
    relapse_hazard: RelapseHazardConfig
    dropout: DropoutConfig
    neuroplasticity: NeuroplasticityConfig
    stress: StressConfig
    therapy: TherapyConfig
    bdnf: BdnfConfig
    hrv: HrvConfig
    assessments: AssessmentsConfig

    @model_validator(mode="after")
    def _phases_cover_followup(self) -> SimulationConfig:
        if check_phases(self.phases) < self.cohort.max_followup_days:
            raise ValueError("phases must cover every day of cohort.max_followup_days")
        return self


def load_simulation_config(path: Path | None = None) -> SimulationConfig:
    """`configs/simulation.yaml`, with the user's file (if any) deep-merged over it, validated."""
    data = read_yaml(DEFAULT_SIMULATION_CONFIG)
    override = read_yaml(Path(path)) if path is not None else {}
    try:
        return SimulationConfig.model_validate(deep_merge(data, override))
    except ValidationError as exc:
        lines = config_errors(exc, path, override, DEFAULT_SIMULATION_CONFIG)
        raise ConfigError("invalid simulation configuration:\n  " + "\n  ".join(lines)) from None
