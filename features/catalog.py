"""The catalogue of output columns: meaning, unit, reason kind, concept and sentence.

Entries for fixed columns are listed here; entries for generated columns (one-hot levels, HRV
metrics, therapy modalities, instruments) are made by `features.catalog_generated`. `features.kinds`
says what an entry holds (kinds, concepts, template forms); `features.registry` assembles the
entries for a FeatureSpec; `features.reasons` renders them column-wise.
"""

from __future__ import annotations

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
ATTENDANCE = "therapy_attendance"

FIXED = [
    FeatureInfo("age_at_intake", "demographic", "years", "Age at intake", "Aged {value:d} at intake"),
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
        "Use of other substances besides ketamine",  # a noun: "…: not recorded" must not read as a yes
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
        "First serum BDNF",
        "First serum BDNF sample was {value:.1f} ng/mL",
        kind=BIOMARKER,
        concept=_BDNF,
    ),
    FeatureInfo(
        "bdnf_change_since_first",
        "bdnf",
        "ng/mL",
        "Change in serum BDNF since the first sample",
        signed(
            "Serum BDNF has risen {abs:.1f} ng/mL since the first sample",
            "Serum BDNF has fallen {abs:.1f} ng/mL since the first sample",
            "Serum BDNF is unchanged since the first sample",
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
            "Serum BDNF has risen {abs:.0f}% since the first sample",
            "Serum BDNF has fallen {abs:.0f}% since the first sample",
            "Serum BDNF is unchanged since the first sample",
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
        concept=ATTENDANCE,
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
        concept=ATTENDANCE,
    ),
]
