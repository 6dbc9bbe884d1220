"""Typed configuration: `configs/default.yaml` deep-merged with a user's override file.

Each pure package owns the sections it consumes (`features.config`: phases, landmarks, feature
groups; `models.config`: the model section); this module adds the stage sections (scoring,
shards, MLflow), composes them into `Config` and loads it. Validated once at the CLI boundary; each
stage receives only its own section. Unknown keys and wrong types are rejected with the key
path and the file that set it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from features.config import FeaturesConfig, LandmarkConfig, Phase, Strict, check_phases
from features.coverage import CHECKABLE
from features.reasons import DEFAULT_MIN_EFFECT, MAX_REASONS
from models.config import ModelConfig

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


HORIZON_DAYS = 30


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the key and the file."""


class ScoringConfig(Strict):
    """`min_effect`: a reason is shown only when it moves the (raw) risk by at least this much
    (probability; 0.005 = 0.5 percentage points). `require_groups`: feature groups whose absence
    from the scoring data refuses the run instead of warning (`relapse score --require-groups`)."""

    reasons: int = Field(ge=0, le=MAX_REASONS)
    batch_patients: int = Field(gt=0)
    risk_bands: dict[str, float]
    min_effect: float = Field(DEFAULT_MIN_EFFECT, ge=0, lt=1)
    require_groups: list[str] = []

    @model_validator(mode="after")
    def _known_groups(self) -> ScoringConfig:
        unknown = sorted(set(self.require_groups) - set(CHECKABLE))
        if unknown:
            raise ValueError(f"require_groups: unknown group(s) {unknown}; known: {', '.join(CHECKABLE)}")
        return self

    @model_validator(mode="after")
    def _bands_ascending(self) -> ScoringConfig:
        bounds = list(self.risk_bands.values())
        rising = all(a < b for a, b in zip(bounds, bounds[1:], strict=False))
        if not bounds or bounds[0] != 0.0 or not rising or bounds[-1] >= 1:
            raise ValueError("risk_bands must start at 0.0 and rise strictly below 1.0 (two bands cannot share a "
                             "lower bound)")
        return self


class ShardsConfig(Strict):
    """Cohorts with more patients than `patients_per_shard` get their feature tables built in
    ceil(patients / patients_per_shard) patient shards (`pipeline.sharded`, `features.shards`):
    the same table, with peak memory set by the shard instead of the cohort."""

    patients_per_shard: int = Field(gt=0)


class MlflowConfig(Strict):
    experiment: str = Field(min_length=1)
    registered_model: str = Field(min_length=1)
    tracking_uri: str | None = None


class Config(Strict):
    phases: list[Phase]
    landmarks: LandmarkConfig
    features: FeaturesConfig
    model: ModelConfig
    scoring: ScoringConfig
    shards: ShardsConfig
    mlflow: MlflowConfig

    @model_validator(mode="after")
    def _phases_contiguous(self) -> Config:
        check_phases(self.phases)
        return self

    @model_validator(mode="after")
    def _a_30_day_risk(self) -> Config:
        # The product predicts relapse in the next 30 days: its output is `risk_30d`, and its bands,
        # texts, intended use and the simulator's true risk are all 30-day ones, so a model with
        # another horizon would be mislabelled everywhere (the feature builders take any horizon).
        if self.landmarks.horizon_days != HORIZON_DAYS:
            raise ValueError(f"landmarks.horizon_days must be {HORIZON_DAYS}: every output is a {HORIZON_DAYS}-day "
                             f"risk (risk_{HORIZON_DAYS}d), so another horizon would be mislabelled")
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


# libyaml's parser where PyYAML was built with it (its wheels are): about 9x the pure-Python
# one on the shipped config files, which every command and many tests read.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """YAML text as Python values, safely (no arbitrary objects), with libyaml when present."""
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader)


def read_yaml(path: Path) -> dict[str, Any]:
    """A config file's mapping of keys ({} for an empty file), or a ConfigError naming the file."""
    try:
        data = load_yaml(path.read_text())
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
    """Whether the override file sets the key at `loc` (pydantic's error location: keys as
    text, "[key]" for an error in a mapping's key)."""
    node: Any = override
    for part in loc:
        if part == "[key]":
            return True
        if isinstance(node, dict) and (found := [k for k in node if k == part or str(k) == str(part)]):
            node = node[found[0]]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return False
    return True


# Mappings a user's file replaces whole rather than merges key by key: their keys are names the
# user chooses (the risk bands), so merged the default names would stay beside the user's own.
REPLACED_MAPPINGS = (("scoring", "risk_bands"),)


def merge_config(defaults: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` deep-merged over `defaults` (`deep_merge`), but for `REPLACED_MAPPINGS`.

    >>> merge_config({"scoring": {"risk_bands": {"low": 0.0, "high": 0.2}, "reasons": 3}},
    ...              {"scoring": {"risk_bands": {"calm": 0.0, "alert": 0.3}}})["scoring"]
    {'risk_bands': {'calm': 0.0, 'alert': 0.3}, 'reasons': 3}
    """
    merged = deep_merge(defaults, override)
    for section, key in REPLACED_MAPPINGS:
        given = override.get(section)
        if isinstance(given, dict) and key in given:
            merged[section][key] = given[key]
    return merged


def load_config(path: Path | None = None) -> Config:
    """Load the defaults, deep-merge the user's file over them, and validate the result."""
    defaults = read_yaml(DEFAULT_CONFIG)
    override = read_yaml(Path(path)) if path is not None else {}
    try:
        return Config.model_validate(merge_config(defaults, override))
    except ValidationError as exc:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(
            config_errors(exc, path, override, DEFAULT_CONFIG))) from None


def config_errors(exc: ValidationError, path: Path | None, override: dict[str, Any], defaults: Path) -> list[str]:
    """One line per error: the file that set the key (the user's when it sets it, else the
    defaults'), the key, and what is wrong."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        source = path if path is not None and _key_origin(override, loc) else defaults
        if err["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key '{key}'")
        else:
            lines.append(f"{source}: '{key}': {err['msg'].removeprefix('Value error, ')}")
    return lines


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
