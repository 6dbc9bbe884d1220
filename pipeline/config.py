"""Typed configuration: `configs/default.yaml` deep-merged with a user's override file.

Validated once at the CLI boundary; each stage receives only its own section.
Unknown keys and wrong types are rejected with the key path and the file that set it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the key and the file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Phase(_Strict):
    name: str
    start_day: int = Field(ge=0)
    end_day: int = Field(ge=0)


class LandmarkConfig(_Strict):
    spacing_days: int = Field(gt=0)
    horizon_days: int = Field(gt=0)


class DemographicConfig(_Strict):
    enabled: bool = True
    extra: list[str] = []


class BdnfConfig(_Strict):
    enabled: bool = True
    slope_window_days: int = Field(gt=0)


class HrvConfig(_Strict):
    enabled: bool = True
    window_days: int = Field(gt=0)
    baseline_days: int = Field(gt=0)
    rr_min_ms: float = Field(gt=0)
    rr_max_ms: float = Field(gt=0)
    rr_max_change: float = Field(gt=0, lt=1)


class TherapyConfig(_Strict):
    enabled: bool = True
    window_days: int = Field(gt=0)


class AssessmentsConfig(_Strict):
    enabled: bool = True


class FeaturesConfig(_Strict):
    demographic: DemographicConfig
    bdnf: BdnfConfig
    hrv: HrvConfig
    therapy: TherapyConfig
    assessments: AssessmentsConfig


class XGBoostParams(_Strict):
    n_estimators: int = Field(gt=0)
    learning_rate: float = Field(gt=0, le=1)
    max_depth: int = Field(gt=0, le=12)
    min_child_weight: float = Field(ge=0)
    subsample: float = Field(gt=0, le=1)
    colsample_bytree: float = Field(gt=0, le=1)
    reg_lambda: float = Field(ge=0)
    reg_alpha: float = Field(ge=0)
    early_stopping_rounds: int = Field(gt=0)


class LogisticParams(_Strict):
    C: float = Field(gt=0)


class ModelConfig(_Strict):
    seed: int
    n_folds: int = Field(ge=2)
    bootstrap_samples: int = Field(ge=0)
    calibration: Literal["isotonic", "platt"]
    min_events: int = Field(ge=1)
    low_epv_warning: float = Field(ge=0)
    validation_fraction: float = Field(gt=0, lt=1)
    xgboost: XGBoostParams
    logistic: LogisticParams


class ScoringConfig(_Strict):
    reasons: int = Field(ge=0)
    batch_patients: int = Field(gt=0)
    risk_bands: dict[str, float]

    @model_validator(mode="after")
    def _bands_ascending(self) -> ScoringConfig:
        bounds = list(self.risk_bands.values())
        if not bounds or bounds[0] != 0.0 or bounds != sorted(bounds) or bounds[-1] >= 1:
            raise ValueError("risk_bands must start at 0.0 and rise below 1.0")
        return self


class MlflowConfig(_Strict):
    experiment: str
    registered_model: str
    tracking_uri: str | None = None


def check_phases(phases: list) -> int:
    """Phases (anything with name, start_day, end_day) must be contiguous from day 0 with unique
    names; returns the first day after the last phase."""
    expected_start = 0
    for phase in phases:
        if phase.start_day != expected_start or phase.end_day < phase.start_day:
            raise ValueError(
                f"phases must be contiguous from day 0; '{phase.name}' starts on day "
                f"{phase.start_day}, expected {expected_start}"
            )
        expected_start = phase.end_day + 1
    if len({p.name for p in phases}) != len(phases):
        raise ValueError("phase names must be unique")
    return expected_start


class Config(_Strict):
    phases: list[Phase]
    landmarks: LandmarkConfig
    features: FeaturesConfig
    model: ModelConfig
    scoring: ScoringConfig
    mlflow: MlflowConfig

    @model_validator(mode="after")
    def _phases_contiguous(self) -> Config:
        check_phases(self.phases)
        return self

    @property
    def phase_names(self) -> list[str]:
        return [p.name for p in self.phases]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge `override` into `base`, recursing into mappings; lists and scalars are replaced.

    >>> deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}})
    {'a': {'b': 1, 'c': 3}}
    """
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return data


def _key_origin(override: dict[str, Any], loc: tuple[Any, ...]) -> bool:
    node: Any = override
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return False
    return True


def load_config(path: Path | None = None) -> Config:
    """Load the defaults, deep-merge the user's file over them, and validate the result."""
    defaults = _read_yaml(DEFAULT_CONFIG)
    override = _read_yaml(Path(path)) if path is not None else {}
    try:
        return Config.model_validate(deep_merge(defaults, override))
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            key = ".".join(str(p) for p in loc) or "(top level)"
            source = path if path is not None and _key_origin(override, loc) else DEFAULT_CONFIG
            if err["type"] == "extra_forbidden":
                lines.append(f"{source}: unknown key '{key}'")
            else:
                lines.append(f"{source}: '{key}': {err['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def config_as_params(config: Config) -> dict[str, str]:
    """Flatten the resolved config into `section.key -> value` strings (MLflow params)."""
    flat: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(node, list) and node and all(isinstance(x, dict) for x in node):
            for i, item in enumerate(node):
                walk(f"{prefix}.{i}", item)
        else:
            flat[prefix] = str(node)

    walk("", config.model_dump())
    return flat
