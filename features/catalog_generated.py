"""Catalogue entries for the columns the builders generate: one-hot levels, the summaries of
each HRV metric, therapy counts per modality and the questionnaire instruments found in the data.
The fixed columns' entries are in `features.catalog`.
"""

from __future__ import annotations

from features import assessments, therapy
from features.catalog import ATTENDANCE
from features.kinds import (
    BIOMARKER,
    MEASUREMENT_AGE,
    MODIFIABLE,
    RISK_FACTOR,
    SYMPTOM,
    FeatureInfo,
    Template,
    count,
    flag,
    signed,
)
from features.naming import level_columns, slug

# label, unit, format: "RMSSD (beat-to-beat heart-rate variability)" reads better than the acronym alone
_HRV_LABELS = {
    "rmssd": ("heart-rate variability (RMSSD)", "ms", ".0f"),
    "sdnn": ("heart-rate variability (SDNN)", "ms", ".0f"),
    "lf_hf": ("stress balance of heart rhythm (LF/HF ratio)", "", "g"),
    "mean_hr": ("resting heart rate", "bpm", ".0f"),
    "pnn50": ("heart-rate variability (pNN50)", "%", ".0f"),
}
_MODALITY_LABELS = {
    "cbt": "CBT",
    "mbi": "mindfulness (MBI)",
    "emdr": "EMDR",
    "other": "other therapy",
}
# instruments by name slug: the words a clinician uses, and the unit of a change
INSTRUMENT_LABELS = {
    "phq9": "depression score (PHQ-9)",
    "phq_9": "depression score (PHQ-9)",
    "gad7": "anxiety score (GAD-7)",
    "gad_7": "anxiety score (GAD-7)",
    "pcl5": "PTSD checklist (PCL-5) score",
    "pcl_5": "PTSD checklist (PCL-5) score",
    "craving_vas": "craving (0–100 scale)",
}


def readable(name: str) -> str:
    """A data value or column name as words: "craving_vas" → "craving vas"."""
    return name.replace("_", " ").strip() or name


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def one_hot_entries(
    column: str, label: str, levels: tuple[str, ...], group: str, kind: str = RISK_FACTOR
) -> list[FeatureInfo]:
    """One entry per level; the levels share one concept, so their SHAP values sum to the variable.

    The sentence names the patient's level ("Housing: unstable"); a level not seen at training
    (every column 0) reads "another category", never "is not <level>".
    """
    return [
        FeatureInfo(
            name,
            group,
            "0/1",
            f"{label} is {level}",
            {"positive": f"{label}: {level}", "zero": f"{label}: another category",
             "missing": f"{label}: not recorded"},
            kind=kind,
            concept=column,
            level=level,
        )
        for level, name in zip(levels, level_columns(column, levels), strict=True)
    ]


def hrv_entries(m: str, window: str, baseline: str) -> list[FeatureInfo]:
    """The five summaries of one HRV metric; one concept, so a patient gets one HRV reason per metric."""
    label, unit, fmt = _HRV_LABELS[m]
    u = f" {unit}" if unit and unit != "%" else unit
    cap = _cap(label)
    concept = f"hrv_{m}"

    def entry(suffix: str, unit_: str, description: str, template: Template) -> FeatureInfo:
        return FeatureInfo(f"hrv_{m}_{suffix}", "hrv", unit_, description, template, kind=BIOMARKER, concept=concept)

    return [
        entry("latest", unit, f"Latest {label}", f"Latest {label} is {{value:{fmt}}}{u}"),
        entry("window_mean", unit, f"Mean {label} {window}", f"{cap} averaged {{value:{fmt}}}{u} {window}"),
        entry(
            "window_slope_30d",
            f"{unit or 'ratio'} per 30 days",
            f"Trend of {label} {window}, per 30 days",
            signed(
                f"{cap} is rising by {{abs:{fmt}}}{u} a month {window}",
                f"{cap} is falling by {{abs:{fmt}}}{u} a month {window}",
                f"{cap} is steady {window}",
            ),
        ),
        entry(
            "change_from_baseline",
            unit,
            f"Mean {label} {window} minus the patient's baseline ({baseline})",
            signed(
                f"{cap} is {{abs:{fmt}}}{u} above the patient's own baseline",
                f"{cap} is {{abs:{fmt}}}{u} below the patient's own baseline",
                f"{cap} is at the patient's own baseline",
            ),
        ),
        entry(
            "change_from_baseline_pct",
            "%",
            f"Mean {label} {window} relative to the patient's baseline ({baseline}), in %",
            signed(
                f"{cap} is {{abs:.0f}}% above the patient's own baseline",
                f"{cap} is {{abs:.0f}}% below the patient's own baseline",
                f"{cap} is at the patient's own baseline",
            ),
        ),
    ]


def _session_counts(prefix: str, label: str, concept: str, suffix: str, when: str) -> list[FeatureInfo]:
    """Sessions scheduled and attended (one modality or all), since intake or in the window."""
    scheduled = f"{prefix}_scheduled{suffix}"
    return [
        FeatureInfo(
            scheduled,
            "therapy",
            "sessions",
            f"{_cap(label)} sessions scheduled {when}",
            count(
                f"1 {label} session scheduled {when}",
                f"{{value:.0f}} {label} sessions scheduled {when}",
                f"No {label} session scheduled {when}",
            ),
            kind=MODIFIABLE,
            concept=concept,
        ),
        FeatureInfo(
            f"{prefix}_attended{suffix}",
            "therapy",
            "sessions",
            f"{_cap(label)} sessions attended {when}",
            {
                "any": f"Attended {{value:.0f}} of {{row[{scheduled}]:.0f}} {label} sessions scheduled {when}",
                "fallback": f"{_cap(label)} sessions attended {when}: {{value:.0f}}",
            },
            kind=MODIFIABLE,
            concept=concept,
        ),
    ]


def therapy_entries(window: str) -> list[FeatureInfo]:
    """Therapy engagement. Concepts: overall attendance (counts, rates, recency and minutes, since
    intake and in the window) is one; each modality's counts and its start in the phase are one."""
    groups = [("therapy_sessions", "therapy", ATTENDANCE)]
    groups += [(f"therapy_{g}", lab, f"therapy_{g}") for g, lab in _MODALITY_LABELS.items()]
    periods = (("", "since intake"), ("_window", window))
    out = [e for prefix, label, concept in groups for suffix, when in periods
           for e in _session_counts(prefix, label, concept, suffix, when)]
    for suffix, when in (("", "since intake"), ("_window", window)):
        out.append(
            FeatureInfo(
                f"therapy_attendance_rate{suffix}",
                "therapy",
                "fraction",
                f"Share of scheduled therapy sessions attended {when}",
                {
                    "any": f"Attended {{pct:.0f}}% of scheduled therapy sessions {when}",
                    "missing": f"No therapy session scheduled {when}",
                },
                kind=MODIFIABLE,
                concept=ATTENDANCE,
            )
        )
    for g in therapy.STARTED:
        label = _MODALITY_LABELS[g]
        out.append(
            FeatureInfo(
                f"therapy_{g}_started_in_phase",
                "therapy",
                "0/1",
                f"First attended {label} session falls in the current phase",
                flag(
                    f"Started {label} in the current recovery phase",
                    f"Has not started {label} in the current recovery phase",
                ),
                kind=MODIFIABLE,
                concept=f"therapy_{g}",
            )
        )
    return out


def instrument_label(instrument: str) -> str:
    """Plain words for an instrument: the known ones spelled out, others as written (underscores as spaces)."""
    return INSTRUMENT_LABELS.get(slug(instrument), readable(instrument))


def assessment_entries(instruments: tuple[str, ...]) -> list[FeatureInfo]:
    """Per instrument: latest score and change since first (one concept), and the measurement age."""
    out = []
    for instrument, prefix in zip(instruments, assessments.instrument_prefixes(instruments), strict=True):
        label = instrument_label(instrument)
        out += [
            FeatureInfo(
                f"{prefix}_latest",
                "assessments",
                "score",
                f"Latest {label}",
                f"Latest {label} is {{value:g}}",
                kind=SYMPTOM,
                concept=prefix,
            ),
            FeatureInfo(
                f"{prefix}_age_days",
                "assessments",
                "days",
                f"Days since the latest {label}",
                count(
                    f"Latest {label} is 1 day old",
                    f"Latest {label} is {{value:.0f}} days old",
                    f"{_cap(label)} taken today",
                ),
                kind=MEASUREMENT_AGE,
            ),
            FeatureInfo(
                f"{prefix}_change_since_first",
                "assessments",
                "points",
                f"Change in {label} since first assessed",
                signed(
                    f"{_cap(label)} has risen by {{abs:g}} since first assessed",
                    f"{_cap(label)} has fallen by {{abs:g}} since first assessed",
                    f"{_cap(label)} is unchanged since first assessed",
                ),
                kind=SYMPTOM,
                concept=prefix,
            ),
        ]
    return out
