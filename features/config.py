"""The config sections the feature builders consume: phases, landmarks and feature groups.

`pipeline.config` composes these with the other sections and loads them from YAML; the builders
take only the section they need. Every section is frozen and rejects unknown keys.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    """A frozen config section that rejects unknown keys and values of the wrong type: `n_folds:
    '3'` (a quoted number) or `enabled: "yes"` is an error naming the key, not read as 3 or true.
    A whole number is still a valid float (`learning_rate: 1`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Phase(Strict):
    name: str
    start_day: int = Field(ge=0)
    end_day: int = Field(ge=0)


class LandmarkConfig(Strict):
    spacing_days: int = Field(gt=0)
    horizon_days: int = Field(gt=0)  # the builders take any; the product's config fixes 30 (pipeline.config)


DEFAULT_SENSITIVE = ("ethnicity",)


class DemographicConfig(Strict):
    """`sensitive`: patient columns kept for the fairness audit only. They are not predictors unless
    `sensitive_as_predictor` is true, and never shown as a reason either way."""

    enabled: bool = True
    extra: list[str] = []
    sensitive: list[str] = list(DEFAULT_SENSITIVE)
    sensitive_as_predictor: bool = False


class BdnfConfig(Strict):
    enabled: bool = True
    slope_window_days: int = Field(gt=0)


class HrvConfig(Strict):
    enabled: bool = True
    window_days: int = Field(gt=0)
    baseline_days: int = Field(gt=0)
    rr_min_ms: float = Field(gt=0)
    rr_max_ms: float = Field(gt=0)
    rr_max_change: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _a_range_of_beats(self) -> HrvConfig:
        if self.rr_min_ms >= self.rr_max_ms:
            raise ValueError(f"rr_min_ms ({self.rr_min_ms:g}) must be below rr_max_ms ({self.rr_max_ms:g}): beats "
                             "outside that range are dropped as artefacts, so no beat would be kept")
        return self


class TherapyConfig(Strict):
    enabled: bool = True
    window_days: int = Field(gt=0)


class AssessmentsConfig(Strict):
    enabled: bool = True


class FeaturesConfig(Strict):
    demographic: DemographicConfig
    bdnf: BdnfConfig
    hrv: HrvConfig
    therapy: TherapyConfig
    assessments: AssessmentsConfig


class _PhaseLike(Protocol):
    name: str
    start_day: int
    end_day: int


def check_phases(phases: Sequence[_PhaseLike]) -> int:
    """Phases must be contiguous from day 0 with unique names; returns the first day after the last.

    Shared by the pipeline's config and the simulator's, which both describe recovery phases.
    """
    if not phases:
        raise ValueError("at least one phase is needed")
    expected_start = 0
    for phase in phases:
        if phase.start_day != expected_start:
            raise ValueError(
                f"phases must be contiguous from day 0; '{phase.name}' starts on day "
                f"{phase.start_day}, expected {expected_start}"
            )
        if phase.end_day < phase.start_day:
            raise ValueError(f"phase '{phase.name}' ends on day {phase.end_day}, before it starts (day "
                             f"{phase.start_day})")
        expected_start = phase.end_day + 1
    if len({p.name for p in phases}) != len(phases):
        raise ValueError("phase names must be unique")
    for phase in phases:
        check_phase_name(phase.name)
    return expected_start


# A phase name becomes a bundle file name (phases/<name>.ubj) and part of every metric name
# (auroc_<name>, auroc_<name>_lo): letters, digits, _ . - only, and none that reads as another.
PHASE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # the whole name (fullmatch)
RESERVED_PHASE_NAMES = ("pooled",)  # the all-phase rows of every metrics table


def check_phase_name(name: str) -> None:
    """Refuse a phase name that cannot be a file name or would collide in metric names: `pooled`
    would overwrite the all-phase metrics, and a name ending in `_lo` or `_hi` would read as
    another phase's interval bound (`auroc_acute_lo`)."""
    if not PHASE_NAME.fullmatch(name):  # not `match`: its `$` also matches before a final newline
        raise ValueError(f"phase name {name!r}: use letters, digits, '_', '.' or '-' (it names a model file "
                         "and metrics), starting with a letter or digit")
    if name in RESERVED_PHASE_NAMES or name.endswith(("_lo", "_hi")):
        raise ValueError(f"phase name {name!r} is reserved: 'pooled' names the all-phase metrics and '_lo' / "
                         "'_hi' end the names of interval bounds")
