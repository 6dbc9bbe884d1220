"""What a catalogue entry is: `FeatureInfo`, its reason kinds and its template forms.

A template is a format string, or a mapping that picks one by the value: `missing` for an
unknown value, `fallback` when a `{row[...]}` field is unknown, `one` for exactly 1 (singular
nouns), then `positive`, `negative`, `zero`, else `any`. Fields: `{value}`, `{abs}` (magnitude),
`{pct}` (100 × value) and `{row[column]}` (another feature of the same row); formats `.0f`,
`.1f`, `g` (at most two decimals, trailing zeros dropped) and `d` (the whole part: an age of
17.9 reads 17, as a clinician counts completed years).

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


@dataclass(frozen=True)
class Domain:
    """The values a built feature can take: from `lo` (excluded when `above`) to `hi`, whole
    numbers only when `whole`. The builders never produce anything else; a value given to the
    model directly (a REST request) outside it did not come from data that passes the contract."""

    lo: float
    hi: float = float("inf")
    above: bool = False
    whole: bool = False

    def holds(self, value: float) -> bool:
        inside = (value > self.lo if self.above else value >= self.lo) and value <= self.hi
        return inside and (not self.whole or float(value).is_integer())

    def text(self) -> str:
        kind = "whole numbers " if self.whole else ""
        if self.hi == float("inf"):
            return f"{kind}{'above' if self.above else 'of at least'} {self.lo:g}"
        return f"{kind}from {self.lo:g} to {self.hi:g}"


_COUNTS = frozenset({"sessions", "samples", "episodes"})
_NON_NEGATIVE = frozenset({"days", "minutes", "years", "recordings/week"})
_LEVELS = frozenset({"ng/mL", "ms", "bpm", ""})  # a measured level (BDNF, HRV): positive, as in the contract


def domain(info: FeatureInfo) -> Domain | None:
    """The domain of a feature from its unit (None: any number, e.g. a change or a slope)."""
    change = "_change" in info.name or "_slope" in info.name
    if info.unit == "0/1":
        return Domain(0, 1, whole=True)
    if info.unit == "fraction":
        return Domain(0, 1)
    if info.unit in _COUNTS:
        return Domain(0, whole=True)
    if info.unit in _NON_NEGATIVE:
        return Domain(0)
    if info.unit == "decile":
        return Domain(1, 10, whole=True)
    if change or info.kind in ("key", "outcome"):
        return None
    if info.unit == "%":
        return Domain(0, 100)
    if info.unit in _LEVELS and info.kind == "biomarker":
        return Domain(0, above=True)
    return None
