"""What every output column means, and the plain-language sentence for a feature's value.

`feature_registry(spec)` has a `FeatureInfo` for every column the landmark and scoring tables
can hold: the keys, the outcome columns and each feature, including the generated ones (one-hot
levels, HRV metrics, therapy modalities, instruments), each with its reason kind and concept
(`features.catalog`). `describe(name, value)` renders one sentence, e.g. "Serum BDNF has fallen
31% since the first sample", with the same renderer that scoring uses column-wise (`features.reasons`).
Sensitive attributes (`features.demographic.sensitive`, and ethnicity always) get the kind
`sensitive` whether or not they are predictors, so they are never a reason.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from features import assessments, hrv
from features.catalog import (
    BIOMARKER,
    FIXED,
    KEYS,
    MODIFIABLE,
    SENSITIVE,
    FeatureInfo,
    Template,
    signed,
)
from features.catalog_generated import assessment_entries, hrv_entries, one_hot_entries, readable, therapy_entries
from features.config import DEFAULT_SENSITIVE
from features.spec import FeatureSpec
from features.tables import HOUSING, SEXES


def feature_registry(spec: FeatureSpec) -> dict[str, FeatureInfo]:
    """A FeatureInfo for every key, outcome and feature column of tables built with `spec`."""
    cfg = spec.features_config
    hrv_cfg, therapy_cfg, bdnf_cfg = cfg.get("hrv", {}), cfg.get("therapy", {}), cfg.get("bdnf", {})
    entries = list(KEYS) + list(FIXED)
    bdnf_window = (
        f"over the last {bdnf_cfg['slope_window_days']} days" if "slope_window_days" in bdnf_cfg else "recently"
    )
    entries.append(
        FeatureInfo(
            "bdnf_slope_30d",
            "bdnf",
            "ng/mL per 30 days",
            f"Trend of serum BDNF {bdnf_window}, per 30 days",
            signed(
                f"Serum BDNF is rising by {{abs:.1f}} ng/mL a month {bdnf_window}",
                f"Serum BDNF is falling by {{abs:.1f}} ng/mL a month {bdnf_window}",
                f"Serum BDNF is steady {bdnf_window}",
            ),
            kind=BIOMARKER,
            concept="bdnf",
        )
    )
    levels = spec.categorical_levels
    for column, label in (("sex", "Sex"), ("ethnicity", "Ethnicity"), ("housing", "Housing")):
        entries += one_hot_entries(column, label, tuple(levels.get(column, ())), "demographic")
    for column in spec.extra_categorical:
        label = readable(column).capitalize()
        entries += one_hot_entries(column, label, tuple(levels.get(column, ())), "demographic")
    for column in spec.extra_numeric:
        label = readable(column).capitalize()
        entries.append(FeatureInfo(column, "demographic", "", label, f"{label}: {{value:g}}"))
    hrv_window = f"over the last {hrv_cfg['window_days']} days" if "window_days" in hrv_cfg else "recently"
    baseline = f"days 0-{hrv_cfg['baseline_days'] - 1}" if "baseline_days" in hrv_cfg else "the first weeks"
    for m in hrv.METRICS:
        entries += hrv_entries(m, hrv_window, baseline)
    entries.append(
        FeatureInfo(
            "hrv_recordings_per_week",
            "hrv",
            "recordings/week",
            f"Heart-rate recordings per week {hrv_window} (adherence)",
            f"{{value:.1f}} heart-rate recordings a week {hrv_window}",
            kind=MODIFIABLE,
        )
    )
    therapy_window = f"in the last {therapy_cfg['window_days']} days" if "window_days" in therapy_cfg else "recently"
    entries += therapy_entries(therapy_window)
    entries += assessment_entries(spec.instruments)
    # ethnicity stays sensitive even when a configured list leaves it out (a list given replaces the
    # default one, so `sensitive: [housing]` would otherwise make it a reason a nurse could read)
    sensitive = {*cfg.get("demographic", {}).get("sensitive", ()), *DEFAULT_SENSITIVE}
    entries = [
        dataclasses.replace(e, kind=SENSITIVE) if e.group == "demographic" and e.concept_name in sensitive else e
        for e in entries
    ]
    return {info.name: info for info in entries}


_ASSESSMENT = re.compile(r"^assess_(.+)_(latest|age_days|change_since_first)$")


@lru_cache(maxsize=16)
def _registry(spec: FeatureSpec) -> dict[str, FeatureInfo]:
    return feature_registry(spec)


def feature_info(name: str, spec: FeatureSpec | None = None) -> FeatureInfo:
    """The FeatureInfo of one column; KeyError for a column no table produces.

    Without the spec, learned levels are unknown and windows are described as "recent"; an
    instrument's name is then read from its column name.
    """
    registry = _registry(spec if spec is not None else _NO_SPEC)
    if name in registry:
        return registry[name]
    match = _ASSESSMENT.match(name)
    if spec is None and match:
        entries = assessment_entries((match.group(1),))
        return entries[assessments.STATS.index(match.group(2))]
    raise KeyError(f"no feature registry entry for column '{name}'")


def describe(name: str, value: Any, *, spec: FeatureSpec | None = None, row: Mapping[str, Any] | None = None) -> str:
    """The plain-language sentence for one column's value (one row of what scoring renders).

    >>> describe("bdnf_change_since_first_pct", -31.2)
    'Serum BDNF has fallen 31% since the first sample'
    >>> spec = FeatureSpec((), (), features_config={"therapy": {"window_days": 28}})
    >>> row = {"therapy_sessions_scheduled_window": 6.0}
    >>> describe("therapy_sessions_attended_window", 2.0, spec=spec, row=row)
    'Attended 2 of 6 therapy sessions scheduled in the last 28 days'
    >>> describe("therapy_sessions_attended_window", 2.0)
    'Therapy sessions attended recently: 2'
    """
    from features.reasons import compile_template, render_values

    info = feature_info(name, spec)
    template = info.template
    numeric = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
    if not numeric:
        text = template if isinstance(template, str) else template.get("any", "{value}")
        return text.format(value=value)
    compiled = compile_template(info)
    number = math.nan if value is None else float(value)
    refs = {c: np.array([_number((row or {}).get(c))]) for c in compiled.refs}
    return render_values(compiled, np.array([number]), refs)[0]


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


_NO_SPEC = FeatureSpec(
    feature_names=(),
    groups_used=(),
    categorical_levels={"sex": SEXES, "ethnicity": (), "housing": HOUSING},
)


__all__ = ["FeatureInfo", "Template", "describe", "feature_info", "feature_registry"]
