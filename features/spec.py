"""FeatureSpec: what training fixed so scoring builds exactly the same columns.

It holds the ordered feature names, the categorical levels and instruments learned from the
training data, the feature groups used / absent / disabled, and a copy of the `features`
config the columns were built with (scoring with a different one is refused). `to_dict` gives
plain JSON types; `from_dict` reads them back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import polars as pl

from features import assessments, bdnf, demographic, hrv, therapy
from features.config import FeaturesConfig
from features.naming import distinct_values
from features.tables import OPTIONAL_MEASUREMENTS, SPECS

GROUPS = ("demographic", "bdnf", "hrv", "therapy", "assessments")
GROUP_TABLES: dict[str, tuple[str, ...]] = {
    "demographic": ("patients",),
    "bdnf": ("bdnf",),
    "hrv": ("hrv", "rr_intervals"),
    "therapy": ("therapy_sessions",),
    "assessments": ("assessments",),
}
SPEC_VERSION = 1

Tables = Mapping[str, pl.LazyFrame | pl.DataFrame]


@dataclass(frozen=True)
class FeatureSpec:
    """The feature columns and encodings fixed at training time (JSON-serialisable)."""

    feature_names: tuple[str, ...]
    groups_used: tuple[str, ...]
    groups_absent: tuple[str, ...] = ()  # enabled, but the training data had no such table
    groups_disabled: tuple[str, ...] = ()
    categorical_levels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    extra_numeric: tuple[str, ...] = ()
    extra_categorical: tuple[str, ...] = ()
    hrv_metrics: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()
    # optional patients columns the features read that had a value in training (absent or empty
    # at scoring, their features are unknown for every patient: `coverage.unread_inputs`)
    patient_columns: tuple[str, ...] = ()
    # optional measurement columns of the record tables ("hrv.lf_hf", `tables.OPTIONAL_MEASUREMENTS`)
    # that held a value in training: absent or empty at scoring, their features are unknown too
    measured_columns: tuple[str, ...] = ()
    features_config: dict[str, Any] = field(default_factory=dict)
    version: int = SPEC_VERSION

    def __hash__(self) -> int:
        return self._hash

    @cached_property
    def _hash(self) -> int:
        """Hashed once per spec: the registry caches by spec, and hashing walks the whole config."""
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    @property
    def extra(self) -> tuple[str, ...]:
        """The extra patient columns in config order."""
        return tuple(self.features_config.get("demographic", {}).get("extra", ()))

    def required_inputs(self) -> dict[str, tuple[str, ...]]:
        """Each patients column the contract requires with a value (age, sex) → the feature columns
        built from it: batch scoring never gives these features unknown, so the model never saw
        them missing."""
        if "demographic" not in self.groups_used:
            return {}
        sources = demographic.feature_sources(self.categorical_levels, self.extra, self.extra_numeric)
        present = set(self.feature_names)
        return {
            column: tuple(names)
            for column, names in sources.items()
            if column in _REQUIRED_VALUE and names and set(names) <= present
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        data["categorical_levels"] = {k: list(v) for k, v in self.categorical_levels.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        if data.get("version") != SPEC_VERSION:
            raise ValueError(f"feature spec version {data.get('version')!r} is not {SPEC_VERSION}")
        values = dict(data)
        for key in (
            "feature_names",
            "groups_used",
            "groups_absent",
            "groups_disabled",
            "extra_numeric",
            "extra_categorical",
            "hrv_metrics",
            "instruments",
            "patient_columns",
            "measured_columns",
        ):
            values[key] = tuple(values.get(key, ()))
        values["categorical_levels"] = {k: tuple(v) for k, v in values.get("categorical_levels", {}).items()}
        return cls(**values)


def fit_feature_spec(tables: Tables, features: FeaturesConfig) -> FeatureSpec:
    """Learn the feature columns from training tables and the `features` config section."""
    if "patients" not in tables:
        raise ValueError("the patients table is required to build features")
    present = {name for name, frame in tables.items() if _height(frame) > 0}
    used, absent, disabled = [], [], []
    for group in GROUPS:
        if not getattr(features, group).enabled:
            disabled.append(group)
        elif any(t in present for t in GROUP_TABLES[group]):
            used.append(group)
        else:
            absent.append(group)
    learned: dict[str, Any] = {"levels": {}, "extra_numeric": (), "extra_categorical": ()}
    if "demographic" in used:
        learned = demographic.fit_levels(_collect(tables["patients"]), features.demographic)
    metrics = _hrv_metrics(tables, present) if "hrv" in used else ()
    instruments = _instruments(tables["assessments"]) if "assessments" in used else ()
    if "assessments" in used and not instruments:
        used.remove("assessments")
        absent.append("assessments")
    names: list[str] = []
    patient_columns: list[str] = []
    if "demographic" in used:
        demographic.check_sensitive(features.demographic)
        sources = demographic.feature_sources(
            learned["levels"],
            features.demographic.extra,
            learned["extra_numeric"],
            exclude=demographic.sensitive_columns(features.demographic),
        )
        names += [c for columns in sources.values() for c in columns]
        patient_columns = _with_values(_collect(tables["patients"]), [c for c in sources if c not in _REQUIRED])
    if "bdnf" in used:
        names += bdnf.FEATURES
    if "hrv" in used:
        names += hrv.feature_names(metrics)
    if "therapy" in used:
        names += therapy.FEATURES
    if "assessments" in used:
        names += assessments.feature_names(instruments)
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"feature names collide: {', '.join(dupes)} (rename the extra patient column)")
    return FeatureSpec(
        feature_names=tuple(names),
        groups_used=tuple(g for g in GROUPS if g in used),
        groups_absent=tuple(g for g in GROUPS if g in absent),
        groups_disabled=tuple(disabled),
        categorical_levels={k: tuple(v) for k, v in learned["levels"].items()},
        extra_numeric=tuple(learned["extra_numeric"]),
        extra_categorical=tuple(learned["extra_categorical"]),
        hrv_metrics=tuple(metrics),
        instruments=tuple(instruments),
        patient_columns=tuple(patient_columns),
        measured_columns=_measured(tables, {t for g in used for t in GROUP_TABLES[g]} & present),
        features_config=features.model_dump(mode="json"),
    )


def check_config(spec: FeatureSpec, features: FeaturesConfig) -> None:
    """Refuse a `features` config other than the one `spec` was fitted with."""
    current = _flatten(features.model_dump(mode="json"))
    fitted = _flatten(_with_defaults(spec.features_config))
    differ = sorted(k for k in current.keys() | fitted.keys() if current.get(k) != fitted.get(k))
    if differ:
        shown = "; ".join(f"features.{k}: fitted {fitted.get(k)!r}, now {current.get(k)!r}" for k in differ)
        raise ValueError(f"the features config differs from the one the feature spec was fitted with: {shown}")


def _with_defaults(fitted: dict[str, Any]) -> dict[str, Any]:
    """A spec's config with keys added since it was fitted set to their defaults (as it behaved)."""
    try:
        return FeaturesConfig.model_validate(fitted).model_dump(mode="json")
    except ValueError:
        return fitted


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: node}


def _collect(frame: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


def _height(frame: pl.LazyFrame | pl.DataFrame) -> int:
    return frame.height if isinstance(frame, pl.DataFrame) else frame.select(pl.len()).collect().item()


def _hrv_metrics(tables: Tables, present: set[str]) -> tuple[str, ...]:
    found: set[str] = set()
    if "hrv" in present:
        frame = tables["hrv"].lazy()
        schema = frame.collect_schema()
        columns = [c for c in (hrv.METRICS[m] for m in hrv.SUMMARY_METRICS) if c in schema]
        counts = frame.select(pl.col(columns).count()).collect().row(0, named=True)
        found |= {m for m in hrv.SUMMARY_METRICS if counts.get(hrv.METRICS[m], 0) > 0}
    if "rr_intervals" in present:
        found |= set(hrv.BEAT_METRICS)
    return tuple(m for m in hrv.METRICS if m in found)


_REQUIRED = {c.name for c in SPECS["patients"].columns if c.required}
_REQUIRED_VALUE = {c.name for c in SPECS["patients"].columns if c.required and not c.nullable}


def _measured(tables: Tables, read: set[str]) -> tuple[str, ...]:
    """The `OPTIONAL_MEASUREMENTS` of the tables in `read` that hold a value in some row."""
    out = []
    for name in OPTIONAL_MEASUREMENTS:
        table, column = name.split(".")
        if table in read and column in (frame := tables[table].lazy()).collect_schema():
            if frame.select(pl.col(column).is_not_null().any()).collect().item():
                out.append(name)
    return tuple(out)


def _with_values(patients: pl.DataFrame, columns: list[str]) -> list[str]:
    """The `columns` of `patients` that hold a value in some row, in order."""
    return [c for c in columns if c in patients.columns and patients[c].null_count() < patients.height]


def _instruments(frame: pl.LazyFrame | pl.DataFrame) -> tuple[str, ...]:
    """The instruments taken, one spelling of each (`naming.distinct_values`)."""
    return distinct_values(frame.lazy().select(pl.col("instrument").drop_nulls().unique()).collect().to_series())
