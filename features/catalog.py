"""The catalogue of output columns: meaning, unit, reason kind, concept and sentence.

Entries for fixed columns are listed; entries for generated columns (one-hot levels, HRV
metrics, therapy modalities, instruments) are made by the functions below. `features.kinds`
says what an entry holds (kinds, concepts, template forms); `features.registry` assembles the
entries for a FeatureSpec; `features.reasons` renders them column-wise.
"""

from __future__ import annotations

from features import assessments, therapy
from features.kinds import (  # noqa: F401  (re-exported: the catalogue's vocabulary)
    BIOMARKER,
    HISTORY,
    KINDS,
    MEASUREMENT_AGE,
    MODIFIABLE,
    REASON_KINDS,
    RISK_FACTOR,
    SENSITIVE,
    SYMPTOM,
    TEMPLATE_KEYS,
    FeatureInfo,
    Template,
    count,
    flag,
    signed,
)
from features.naming import level_columns, slug


def _key(name: str, description: str, template: Template, group: str = "key") -> FeatureInfo:
    return FeatureInfo(name, group, "", description, template, kind=group)


KEYS = [
    _key("patient_id", "Patient identifier", "Patient {value}"),
    _key("landmark_date", "Landmark date: features use records dated on or before it", "Landmark date {value}"),
    _key("as_of", "Scoring date: features use records dated on or before it", "Scored as of {value}"),
    _key("day", "Days since intake", "Day {value} of treatment"),
    _key("phase", "Recovery phase containing the day", "In the {value} phase"),
    _key("exclusion", "Why a patient is not scored (null when scored)", "Not scored: {value}"),
    _key(
        "label",
        "Relapse within the horizon after the landmark",
        flag("Relapsed within the horizon", "No relapse within the horizon"),
        "outcome",
    ),
    _key("censored", "Follow-up ended inside the horizon without relapse", "Censored: {value}", "outcome"),
    _key("ipcw_weight", "Inverse probability of censoring weight", "IPCW weight {value}", "outcome"),
]

_BDNF = "bdnf"
_ATTENDANCE = "therapy_attendance"

FIXED = [
    FeatureInfo("age_at_intake", "demographic", "years", "Age at intake", "Aged {value:.0f} at intake"),
    FeatureInfo(
        "deprivation_decile",
        "demographic",
        "decile",
        "Area deprivation decile (1 = most deprived)",
        "Lives in deprivation decile {value:.0f} (1 = most deprived, 10 = least)",
    ),
    FeatureInfo(
        "polysubstance",
        "demographic",
        "0/1",
        "Uses other substances besides ketamine",
        flag("Uses other substances besides ketamine", "Uses no other substance besides ketamine"),
        kind=HISTORY,
    ),
    FeatureInfo(
        "ketamine_years",
        "demographic",
        "years",
        "Years of ketamine use before intake",
        {"one": "1 year of ketamine use before intake", "any": "{value:.1f} years of ketamine use before intake"},
        kind=HISTORY,
    ),
    FeatureInfo(
        "prior_treatments",
        "demographic",
        "episodes",
        "Previous treatment episodes",
        count("1 previous treatment episode", "{value:.0f} previous treatment episodes", "No previous treatment"),
        kind=HISTORY,
    ),
    FeatureInfo(
        "trauma_history",
        "demographic",
        "0/1",
        "History of trauma or PTSD",
        flag("Has a history of trauma", "No history of trauma"),
        kind=HISTORY,
    ),
    FeatureInfo(
        "bdnf_latest", "bdnf", "ng/mL", "Latest serum BDNF", "Latest serum BDNF is {value:.1f} ng/mL",
        kind=BIOMARKER, concept=_BDNF,
    ),
    FeatureInfo(
        "bdnf_latest_age_days",
        "bdnf",
        "days",
        "Days since the latest BDNF sample",
        count("Latest BDNF sample is 1 day old", "Latest BDNF sample is {value:.0f} days old", "BDNF sampled today"),
        kind=MEASUREMENT_AGE,
    ),
    FeatureInfo(
        "bdnf_first",
        "bdnf",
        "ng/mL",
        "First (intake) serum BDNF",
        "Serum BDNF at intake was {value:.1f} ng/mL",
        kind=BIOMARKER,
        concept=_BDNF,
    ),
    FeatureInfo(
        "bdnf_change_since_first",
        "bdnf",
        "ng/mL",
        "Change in serum BDNF since the first sample",
        signed(
            "Serum BDNF has risen {abs:.1f} ng/mL since intake",
            "Serum BDNF has fallen {abs:.1f} ng/mL since intake",
            "Serum BDNF is unchanged since intake",
        ),
        kind=BIOMARKER,
        concept=_BDNF,
    ),
    FeatureInfo(
        "bdnf_change_since_first_pct",
        "bdnf",
        "%",
        "Change in serum BDNF since the first sample, in %",
        signed(
            "Serum BDNF has risen {abs:.0f}% since intake",
            "Serum BDNF has fallen {abs:.0f}% since intake",
            "Serum BDNF is unchanged since intake",
        ),
        kind=BIOMARKER,
        concept=_BDNF,
    ),
    FeatureInfo(
        "bdnf_n_samples",
        "bdnf",
        "samples",
        "BDNF samples so far",
        count("1 BDNF sample so far", "{value:.0f} BDNF samples so far", "No BDNF sample yet"),
        kind=MEASUREMENT_AGE,
    ),
    FeatureInfo(
        "hrv_latest_age_days",
        "hrv",
        "days",
        "Days since the latest heart-rate recording",
        count(
            "Latest heart-rate recording is 1 day old",
            "Latest heart-rate recording is {value:.0f} days old",
            "Heart rate recorded today",
        ),
        kind=MEASUREMENT_AGE,
    ),
    FeatureInfo(
        "therapy_days_since_attended",
        "therapy",
        "days",
        "Days since the last attended therapy session",
        {
            "missing": "Has not attended a therapy session yet",
            "zero": "Attended a therapy session today",
            "one": "Last attended a therapy session yesterday",
            "any": "Last attended a therapy session {value:.0f} days ago",
        },
        kind=MODIFIABLE,
        concept=_ATTENDANCE,
    ),
    FeatureInfo(
        "therapy_minutes_attended",
        "therapy",
        "minutes",
        "Minutes of therapy attended since intake",
        count(
            "1 minute of therapy attended since intake",
            "{value:.0f} minutes of therapy attended since intake",
            "No therapy attended since intake",
        ),
        kind=MODIFIABLE,
        concept=_ATTENDANCE,
    ),
]

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


def therapy_entries(window: str) -> list[FeatureInfo]:
    """Therapy engagement. Concepts: overall attendance (counts, rates, recency and minutes, since
    intake and in the window) is one; each modality's counts and its start in the phase are one."""
    out = []
    groups = [("therapy_sessions", "therapy", _ATTENDANCE)]
    groups += [(f"therapy_{g}", lab, f"therapy_{g}") for g, lab in _MODALITY_LABELS.items()]
    for prefix, label, concept in groups:
        for suffix, when in (("", "since intake"), ("_window", window)):
            scheduled = f"{prefix}_scheduled{suffix}"
            attended = f"{prefix}_attended{suffix}"
            out.append(
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
                )
            )
            out.append(
                FeatureInfo(
                    attended,
                    "therapy",
                    "sessions",
                    f"{_cap(label)} sessions attended {when}",
                    {
                        "any": f"Attended {{value:.0f}} of {{row[{scheduled}]:.0f}} {label} sessions scheduled {when}",
                        "fallback": f"{_cap(label)} sessions attended {when}: {{value:.0f}}",
                    },
                    kind=MODIFIABLE,
                    concept=concept,
                )
            )
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
                concept=_ATTENDANCE,
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
