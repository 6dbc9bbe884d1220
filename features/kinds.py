"""What a catalogue entry is: `FeatureInfo`, its reason kinds and its template forms.

A template is a format string, or a mapping that picks one by the value: `missing` for an
unknown value, `fallback` when a `{row[...]}` field is unknown, `one` for exactly 1 (singular
nouns), then `positive`, `negative`, `zero`, else `any`. Fields: `{value}`, `{abs}` (magnitude),
`{pct}` (100 × value) and `{row[column]}` (another feature of the same row); formats `.0f`,
`.1f` and `g` (at most two decimals, trailing zeros dropped).

Every feature has a **kind** (what a clinician can do with it) and a **concept** (the source
variable or clinical idea it measures; the reason policy shows at most one reason per concept):
- `risk_factor`: known at intake, context for the plan (age, sex, deprivation, housing);
- `history`: use and treatment history (years of use, prior treatments, trauma, other substances);
- `modifiable`: engagement the team can change (therapy attendance, modality, monitoring);
- `biomarker`: serum BDNF and heart-rate variability;
- `symptom`: questionnaire scores;
- `measurement_age`: how old the latest measurement is, or how many there are (a data gap,
  never a reason: staleness is not a risk or a protection to act on);
- `sensitive`: an attribute kept for the fairness audit (ethnicity by default), never a reason;
- `key` and `outcome`: table keys and labels, not features.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

Template = str | Mapping[str, str]

RISK_FACTOR, HISTORY, MODIFIABLE, BIOMARKER = "risk_factor", "history", "modifiable", "biomarker"
SYMPTOM, MEASUREMENT_AGE, SENSITIVE = "symptom", "measurement_age", "sensitive"
KINDS = (RISK_FACTOR, HISTORY, MODIFIABLE, BIOMARKER, SYMPTOM, MEASUREMENT_AGE, SENSITIVE, "key", "outcome")
REASON_KINDS = frozenset({RISK_FACTOR, HISTORY, MODIFIABLE, BIOMARKER, SYMPTOM})
TEMPLATE_KEYS = frozenset({"missing", "fallback", "one", "positive", "negative", "zero", "any"})


@dataclass(frozen=True)
class FeatureInfo:
    name: str
    group: str
    unit: str
    description: str
    template: Template
    kind: str = RISK_FACTOR
    concept: str = ""  # empty: the feature is a concept of its own
    level: str = ""  # for a one-hot column: the category it stands for

    @property
    def concept_name(self) -> str:
        return self.concept or self.name


def signed(rise: str, fall: str, same: str) -> dict[str, str]:
    return {"positive": rise, "negative": fall, "zero": same}


def flag(yes: str, no: str) -> dict[str, str]:
    return {"positive": yes, "zero": no}


def count(one: str, many: str, none: str) -> dict[str, str]:
    """A count sentence with the right plural: "1 previous treatment episode", "3 … episodes"."""
    return {"one": one, "any": many, "zero": none}
