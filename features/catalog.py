"""The catalogue of output columns: meaning, unit and the sentence that explains a value.

Entries for fixed columns are listed; entries for generated columns (one-hot levels, HRV
metrics, therapy modalities, instruments) are made by the functions below. A template is a
format string, or a mapping that picks one by the value's sign (`positive`, `negative`, `zero`,
else `any`), with `missing` for an unknown value and `fallback` when a `{row[...]}` field is not
available. `features.registry` assembles the entries for a FeatureSpec and renders them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from features import assessments, therapy
from features.naming import level_columns

Template = str | Mapping[str, str]


@dataclass(frozen=True)
class FeatureInfo:
    name: str
    group: str
    unit: str
    description: str
    template: Template


def signed(rise: str, fall: str, same: str) -> dict[str, str]:
    return {"positive": rise, "negative": fall, "zero": same}


def flag(yes: str, no: str) -> dict[str, str]:
    return {"positive": yes, "zero": no}


KEYS = [
    FeatureInfo("patient_id", "key", "", "Patient identifier", "Patient {value}"),
    FeatureInfo(
        "landmark_date",
        "key",
        "date",
        "Landmark date: features use records dated on or before it",
        "Landmark date {value}",
    ),
    FeatureInfo(
        "as_of",
        "key",
        "date",
        "Scoring date: features use records dated on or before it",
        "Scored as of {value}",
    ),
    FeatureInfo("day", "key", "days", "Days since intake", "Day {value} of treatment"),
    FeatureInfo("phase", "key", "", "Recovery phase containing the day", "In the {value} phase"),
    FeatureInfo(
        "exclusion",
        "key",
        "",
        "Why a patient is not scored (null when scored)",
        "Not scored: {value}",
    ),
    FeatureInfo(
        "label",
        "outcome",
        "0/1",
        "Relapse within the horizon after the landmark",
        flag("Relapsed within the horizon", "No relapse within the horizon"),
    ),
    FeatureInfo(
        "censored",
        "outcome",
        "0/1",
        "Follow-up ended inside the horizon without relapse",
        "Censored: {value}",
    ),
    FeatureInfo(
        "ipcw_weight",
        "outcome",
        "",
        "Inverse probability of censoring weight",
        "IPCW weight {value:.3f}",
    ),
]

FIXED = [
    FeatureInfo("age_at_intake", "demographic", "years", "Age at intake", "Aged {value:.0f} at intake"),
    FeatureInfo(
        "deprivation_decile",
        "demographic",
        "decile",
        "Area deprivation decile (1 = most deprived)",
        "Lives in deprivation decile {value:.0f} (1 = most deprived)",
    ),
    FeatureInfo(
        "polysubstance",
        "demographic",
        "0/1",
        "Uses other substances besides ketamine",
        flag("Uses other substances besides ketamine", "No other substance use recorded"),
    ),
    FeatureInfo(
        "ketamine_years",
        "demographic",
        "years",
        "Years of ketamine use before intake",
        "{value:.1f} years of ketamine use before intake",
    ),
    FeatureInfo(
        "prior_treatments",
        "demographic",
        "episodes",
        "Previous treatment episodes",
        "{value:.0f} previous treatment episode(s)",
    ),
    FeatureInfo(
        "trauma_history",
        "demographic",
        "0/1",
        "History of trauma or PTSD",
        flag("Has a history of trauma", "No trauma history recorded"),
    ),
    FeatureInfo("bdnf_latest", "bdnf", "ng/mL", "Latest serum BDNF", "Latest BDNF is {value:.1f} ng/mL"),
    FeatureInfo(
        "bdnf_latest_age_days",
        "bdnf",
        "days",
        "Days since the latest BDNF sample",
        "Latest BDNF sample is {value:.0f} days old",
    ),
    FeatureInfo(
        "bdnf_first",
        "bdnf",
        "ng/mL",
        "First (intake) serum BDNF",
        "First (intake) BDNF was {value:.1f} ng/mL",
    ),
    FeatureInfo(
        "bdnf_change_since_first",
        "bdnf",
        "ng/mL",
        "Change in BDNF since the first sample",
        signed(
            "BDNF has risen {abs:.1f} ng/mL since intake",
            "BDNF has fallen {abs:.1f} ng/mL since intake",
            "BDNF is unchanged since intake",
        ),
    ),
    FeatureInfo(
        "bdnf_change_since_first_pct",
        "bdnf",
        "%",
        "Change in BDNF since the first sample, in %",
        signed(
            "BDNF has risen {abs:.0f}% since intake",
            "BDNF has fallen {abs:.0f}% since intake",
            "BDNF is unchanged since intake",
        ),
    ),
    FeatureInfo(
        "bdnf_n_samples",
        "bdnf",
        "samples",
        "BDNF samples so far",
        "{value:.0f} BDNF sample(s) so far",
    ),
    FeatureInfo(
        "hrv_latest_age_days",
        "hrv",
        "days",
        "Days since the latest heart-rate recording",
        "Latest heart-rate recording is {value:.0f} days old",
    ),
    FeatureInfo(
        "therapy_days_since_attended",
        "therapy",
        "days",
        "Days since the last attended therapy session",
        "Last attended a therapy session {value:.0f} days ago",
    ),
    FeatureInfo(
        "therapy_minutes_attended",
        "therapy",
        "minutes",
        "Minutes of therapy attended since intake",
        "{value:.0f} minutes of therapy attended since intake",
    ),
]

_HRV_LABELS = {
    "rmssd": ("RMSSD", "ms", ".0f"),
    "sdnn": ("SDNN", "ms", ".0f"),
    "lf_hf": ("LF/HF ratio", "", ".2f"),
    "mean_hr": ("resting heart rate", "bpm", ".0f"),
    "pnn50": ("pNN50", "%", ".0f"),
}
_MODALITY_LABELS = {
    "cbt": "CBT",
    "mbi": "mindfulness (MBI)",
    "emdr": "EMDR",
    "other": "other therapy",
}


def one_hot_entries(column: str, label: str, levels: tuple[str, ...], group: str) -> list[FeatureInfo]:
    return [
        FeatureInfo(
            name,
            group,
            "0/1",
            f"{label} is {level}",
            flag(f"{label}: {level}", f"{label} is not {level}"),
        )
        for level, name in zip(levels, level_columns(column, levels), strict=True)
    ]


def hrv_entries(m: str, window: str, baseline: str) -> list[FeatureInfo]:
    label, unit, fmt = _HRV_LABELS[m]
    u = f" {unit}" if unit and unit != "%" else unit
    cap = label[0].upper() + label[1:]
    return [
        FeatureInfo(
            f"hrv_{m}_latest",
            "hrv",
            unit,
            f"Latest {label}",
            f"Latest {label} is {{value:{fmt}}}{u}",
        ),
        FeatureInfo(
            f"hrv_{m}_window_mean",
            "hrv",
            unit,
            f"Mean {label} {window}",
            f"{cap} averaged {{value:{fmt}}}{u} {window}",
        ),
        FeatureInfo(
            f"hrv_{m}_window_slope_30d",
            "hrv",
            f"{unit or 'ratio'} per 30 days",
            f"Trend of {label} {window}, per 30 days",
            signed(
                f"{cap} is rising by {{abs:{fmt}}}{u} a month {window}",
                f"{cap} is falling by {{abs:{fmt}}}{u} a month {window}",
                f"{cap} is steady {window}",
            ),
        ),
        FeatureInfo(
            f"hrv_{m}_change_from_baseline",
            "hrv",
            unit,
            f"Mean {label} {window} minus the patient's baseline ({baseline})",
            signed(
                f"{cap} is {{abs:{fmt}}}{u} above the patient's baseline",
                f"{cap} is {{abs:{fmt}}}{u} below the patient's baseline",
                f"{cap} is at the patient's baseline",
            ),
        ),
        FeatureInfo(
            f"hrv_{m}_change_from_baseline_pct",
            "hrv",
            "%",
            f"Mean {label} {window} relative to the patient's baseline ({baseline}), in %",
            signed(
                f"{cap} is {{abs:.0f}}% above the patient's baseline",
                f"{cap} is {{abs:.0f}}% below the patient's baseline",
                f"{cap} is at the patient's baseline",
            ),
        ),
    ]


def therapy_entries(window: str) -> list[FeatureInfo]:
    out = []
    for prefix, label in [
        ("therapy_sessions", "therapy"),
        *((f"therapy_{g}", lab) for g, lab in _MODALITY_LABELS.items()),
    ]:
        for suffix, when in (("", "since intake"), ("_window", window)):
            scheduled = f"{prefix}_scheduled{suffix}"
            attended = f"{prefix}_attended{suffix}"
            out.append(
                FeatureInfo(
                    scheduled,
                    "therapy",
                    "sessions",
                    f"{label[0].upper() + label[1:]} sessions scheduled {when}",
                    f"{{value:.0f}} {label} session(s) scheduled {when}",
                )
            )
            out.append(
                FeatureInfo(
                    attended,
                    "therapy",
                    "sessions",
                    f"{label[0].upper() + label[1:]} sessions attended {when}",
                    {
                        "any": f"Attended {{value:.0f}} of {{row[{scheduled}]:.0f}} {label} sessions {when}",
                        "fallback": f"Attended {{value:.0f}} {label} session(s) {when}",
                    },
                )
            )
    for suffix, when in (("", "since intake"), ("_window", window)):
        out.append(
            FeatureInfo(
                f"therapy_attendance_rate{suffix}",
                "therapy",
                "fraction",
                f"Share of scheduled therapy sessions attended {when}",
                f"Attended {{pct:.0f}}% of scheduled therapy sessions {when}",
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
            )
        )
    return out


def assessment_entries(instruments: tuple[str, ...]) -> list[FeatureInfo]:
    out = []
    for instrument, prefix in zip(instruments, assessments.instrument_prefixes(instruments), strict=True):
        out += [
            FeatureInfo(
                f"{prefix}_latest",
                "assessments",
                "score",
                f"Latest {instrument} score",
                f"Latest {instrument} score is {{value:g}}",
            ),
            FeatureInfo(
                f"{prefix}_age_days",
                "assessments",
                "days",
                f"Days since the latest {instrument}",
                f"Latest {instrument} is {{value:.0f}} days old",
            ),
            FeatureInfo(
                f"{prefix}_change_since_first",
                "assessments",
                "points",
                f"Change in {instrument} since first assessed",
                signed(
                    f"{instrument} score has risen {{abs:g}} points since first assessed",
                    f"{instrument} score has fallen {{abs:g}} points since first assessed",
                    f"{instrument} score is unchanged since first assessed",
                ),
            ),
        ]
    return out
