"""The reason policy: which SHAP contributions a clinician is shown, and their sentences, column-wise.

Rules (the registry gives each feature a kind and a concept, `features.catalog`):
- **kinds**: only `REASON_KINDS` are shown (risk factor, history, modifiable, biomarker,
  symptom); measurement ages, data counts and sensitive attributes never are, as a reason or as
  the protective factor;
- **one reason per concept**: SHAP values are additive, so a concept's contribution is the sum of
  its features' (the one-hot levels of a categorical add back to the variable; attendance counts,
  rates and recency add to "therapy attendance"). A concept is shown once, in the sentence of its
  member with the largest |SHAP| (for a categorical, the patient's own level), so a patient never
  gets opposite reasons about one thing;
- **minimum effect**: a concept is shown only when removing its contribution would move the risk
  by at least `min_effect` (probability, default 0.005 = 0.5 percentage points);
- **what the data could not show**: features of a group absent from the scoring data are never
  shown, so no reason says "not recorded" because a whole table was missing.

Rendering is column-wise: rows are grouped by (feature, template variant) and each group's
sentences are built once with Polars string expressions, with no per-row Python.
"""

from __future__ import annotations

import math
import string
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from features.kinds import REASON_KINDS, TEMPLATE_KEYS, FeatureInfo

DEFAULT_MIN_EFFECT = 0.005
# At most this many reasons a patient: a nurse acts on a few, and each slot is five output columns
# (a request for a million would fill the memory before a single score was written).
MAX_REASONS = 20
FORMATS = ("", ".0f", ".1f", "g", "d")  # d: the whole part (an age in completed years: 17.9 is 17)
_FIELDS = ("value", "abs", "pct")
# input sources a scoring run may lack, beyond the feature groups: the raw beats behind pNN50
BEAT_SOURCE = "hrv_beats"


@dataclass(frozen=True)
class Piece:
    literal: str
    field: str | None  # value, abs, pct or a referenced column
    fmt: str = "g"


@dataclass(frozen=True)
class Compiled:
    """A feature's templates parsed once: variant → pieces, and the other columns they read."""

    variants: Mapping[str, tuple[Piece, ...]]
    refs: tuple[str, ...]

    @property
    def shown(self) -> tuple[float, int] | None:
        """(scale, decimals) of the number the signed variants print, so that the sign is read from
        the value as shown: -0.04 printed as "0.0" is "unchanged", not "has fallen 0.0"."""
        for key in ("positive", "negative"):
            for piece in self.variants.get(key, ()):
                if piece.field in ("value", "abs", "pct"):
                    return (100.0 if piece.field == "pct" else 1.0), _DECIMALS.get(piece.fmt, 2)
        return None


_DECIMALS = {".0f": 0, ".1f": 1, "d": 0}  # every other format prints 2 decimals at most (`_number`)


def compile_template(info: FeatureInfo) -> Compiled:
    """Parse a feature's template(s); ValueError for an unknown field, format or variant."""
    raw = {"any": info.template} if isinstance(info.template, str) else dict(info.template)
    unknown = set(raw) - TEMPLATE_KEYS
    if unknown:
        raise ValueError(f"{info.name}: unknown template keys {sorted(unknown)}")
    raw.setdefault("missing", f"{info.description}: not recorded")
    raw.setdefault("fallback", f"{info.description}: {{value:g}}")
    variants = {key: _parse(info.name, text) for key, text in raw.items()}
    refs = tuple(dict.fromkeys(p.field for v in variants.values() for p in v if p.field not in (None, *_FIELDS)))
    return Compiled(variants, refs)


def _parse(name: str, text: str) -> tuple[Piece, ...]:
    pieces = []
    for literal, field, fmt, _ in string.Formatter().parse(text):
        if field is not None and field.startswith("row[") and field.endswith("]"):
            field = field[4:-1]
        elif field is not None and field not in _FIELDS:
            raise ValueError(f"{name}: template field '{field}' is not value, abs, pct or row[column]")
        if field is None:
            pieces.append(Piece(literal, None))
            continue
        if fmt not in FORMATS:
            raise ValueError(f"{name}: template format '{fmt}' is not one of {FORMATS}")
        pieces.append(Piece(literal, field, fmt or "g"))
    return tuple(pieces)


def _number(expr: pl.Expr, fmt: str) -> pl.Expr:
    if fmt == "d":
        return expr.floor().cast(pl.Int64).cast(pl.String)
    if fmt == ".0f":
        return expr.round(0).cast(pl.Int64).cast(pl.String)
    text = (expr.round(1 if fmt == ".1f" else 2) + 0.0).cast(pl.String)  # + 0.0 turns -0.0 into 0.0
    if fmt == ".1f":
        return text
    trimmed = text.str.strip_chars_end("0").str.strip_chars_end(".")
    return pl.when(text.str.contains(".", literal=True)).then(trimmed).otherwise(text)


def _sentence(pieces: tuple[Piece, ...]) -> pl.Expr:
    parts: list[pl.Expr] = []
    for piece in pieces:
        if piece.literal:
            parts.append(pl.lit(piece.literal))
        if piece.field is not None:
            column = pl.col("value")
            if piece.field == "abs":
                column = column.abs()
            elif piece.field == "pct":
                column = column * 100.0
            elif piece.field != "value":
                column = pl.col(piece.field)
            parts.append(_number(column, piece.fmt))
    return pl.concat_str(parts) if parts else pl.lit("")


VARIANTS = ("any", "zero", "negative", "positive", "one", "fallback", "missing")  # later ones win


def variant_codes(compiled: Compiled, values: np.ndarray, refs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The template variant of each value, as an index into VARIANTS: missing, else fallback (a
    referenced column unknown), else one, else the sign's, else any (or the first one given)."""
    v = compiled.variants
    default = "any" if "any" in v else next(k for k in v if k not in ("missing", "fallback"))
    out = np.full(values.shape, VARIANTS.index(default), dtype=np.int8)
    shown = values if compiled.shown is None else np.round(values * compiled.shown[0], compiled.shown[1])
    masks = {"zero": shown == 0, "negative": shown < 0, "positive": shown > 0, "one": values == 1}
    if compiled.refs:
        masks["fallback"] = np.any([np.isnan(refs[c]) for c in compiled.refs], axis=0)
    masks["missing"] = np.isnan(values)
    for key, mask in masks.items():
        if key in v:
            out[mask] = VARIANTS.index(key)
    return out


def render_values(compiled: Compiled, values: np.ndarray, refs: Mapping[str, np.ndarray]) -> pl.Series:
    """Sentences for one feature's values (refs: the referenced columns, NaN where unknown), one
    Polars expression per template variant, the strings never leaving Polars."""
    codes = variant_codes(compiled, values, refs)
    frame = pl.DataFrame({"value": values, **refs}, schema={c: pl.Float64 for c in ("value", *refs)})
    present = np.unique(codes)
    if len(present) == 1:
        return frame.select(_sentence(compiled.variants[VARIANTS[present[0]]])).to_series()
    out = _no_sentences(len(values))
    for code in present:
        rows = np.flatnonzero(codes == code)
        out.scatter(rows, frame[rows].select(_sentence(compiled.variants[VARIANTS[code]])).to_series())
    return out


def _no_sentences(n: int) -> pl.Series:
    return pl.repeat(None, n, dtype=pl.String, eager=True)


@dataclass(frozen=True, eq=False)
class ReasonPolicy:
    """Per feature (columns of X and of the SHAP matrix): concept, group and compiled templates;
    per concept: whether it may be shown. Built once per model (`reason_policy`)."""

    feature_names: tuple[str, ...]
    concepts: tuple[str, ...]
    member: np.ndarray  # [k] concept index of each feature
    groups: tuple[str, ...]  # [k] feature group
    one_hot: np.ndarray  # [k] a level of a categorical concept
    shown: np.ndarray  # [c] the concept's kind is meant for action
    compiled: tuple[Compiled, ...]

    @property
    def membership(self) -> np.ndarray:
        """[k, c] 0/1: shap @ membership sums each concept's contributions."""
        m = np.zeros((len(self.feature_names), len(self.concepts)))
        m[np.arange(len(self.feature_names)), self.member] = 1.0
        return m

    def unavailable_concepts(self, missing: Collection[str]) -> np.ndarray:
        """[c] concepts with a feature from a missing group (or, for `hrv_beats`, a pNN50 feature),
        or with a feature named in `missing` itself (its input is absent: `coverage.unread_inputs`)."""
        missing = set(missing)
        bad = np.array([g in missing or n in missing for n, g in zip(self.feature_names, self.groups, strict=True)],
                       dtype=bool)
        if BEAT_SOURCE in missing:
            bad |= np.array([n.startswith("hrv_pnn50_") for n in self.feature_names], dtype=bool)
        out = np.zeros(len(self.concepts), dtype=bool)
        out[self.member[bad]] = True
        return out

    def groups_of(self, names: Collection[str]) -> set[str]:
        """Feature groups every one of whose features is among `names`."""
        chosen = set(names)
        pairs = list(zip(self.feature_names, self.groups, strict=True))
        return {g for g in set(self.groups) if all(n in chosen for n, h in pairs if h == g)}


def reason_policy(feature_names: tuple[str, ...], registry: Mapping[str, FeatureInfo]) -> ReasonPolicy:
    """The policy for a model's feature columns, from the registry (hashed and compiled once)."""
    infos = [registry[n] for n in feature_names]
    concepts = tuple(dict.fromkeys(i.concept_name for i in infos))
    index = {c: j for j, c in enumerate(concepts)}
    kinds: dict[str, set[str]] = {}
    for info in infos:
        kinds.setdefault(info.concept_name, set()).add(info.kind)
    return ReasonPolicy(
        feature_names=tuple(feature_names),
        concepts=concepts,
        member=np.array([index[i.concept_name] for i in infos], dtype=np.int64),
        groups=tuple(i.group for i in infos),
        one_hot=np.array([bool(i.level) for i in infos], dtype=bool),
        # a concept is shown only when every member's kind is meant for action
        shown=np.array([kinds[c] <= REASON_KINDS for c in concepts], dtype=bool),
        compiled=tuple(compile_template(i) for i in infos),
    )


@dataclass(frozen=True)
class Choice:
    """Chosen concepts per row: `reasons` [n, r] and `protective` [n] (-1: none), with every
    concept's summed SHAP [n, c] and effect on the probability [n, c]."""

    reasons: np.ndarray
    protective: np.ndarray
    concept_shap: np.ndarray
    effect: np.ndarray


def choose(
    policy: ReasonPolicy,
    shap: np.ndarray,
    margin: np.ndarray,
    n_reasons: int,
    min_effect: float,
    unavailable: Collection[str] = (),
) -> Choice:
    """The largest risk-raising concepts and the most risk-lowering one, after the rules above."""
    cs = shap @ policy.membership
    n = len(cs)
    if not policy.concepts:
        return Choice(np.full((n, 0), -1), np.full(n, -1), cs, cs.copy())
    m = margin[:, None]
    effect = 1.0 / (1.0 + np.exp(-m)) - 1.0 / (1.0 + np.exp(-(m - cs)))
    eligible = policy.shown & ~policy.unavailable_concepts(unavailable)
    eligible = eligible[None, :] & (np.abs(effect) >= min_effect)
    r = min(max(n_reasons, 1), len(policy.concepts))
    up = np.where(eligible & (cs > 0), cs, -np.inf)
    order = np.argsort(-up, axis=1, kind="stable")[:, :r]
    reasons = np.where(np.isfinite(np.take_along_axis(up, order, axis=1)), order, -1)
    down = np.where(eligible & (cs < 0), -cs, -np.inf)
    best = np.argmax(down, axis=1)
    protective = np.where(np.isfinite(down[np.arange(n), best]), best, -1)
    return Choice(reasons, protective, cs, effect)


def representatives(policy: ReasonPolicy, concepts: np.ndarray, shap: np.ndarray, X: np.ndarray) -> np.ndarray:
    """[n, m] the feature that speaks for each row's concept in every column of `concepts` (the
    reasons and the protective factor of a batch; -1 where none): the patient's level of a
    categorical, else the member with the largest |SHAP|. The rows' feature weights are computed
    once for all the columns."""
    picks = np.full(concepts.shape, -1)
    if not len(concepts):
        return picks
    weight = np.abs(shap) + 1e12 * (policy.one_hot[None, :] & (X == 1))
    for i in range(concepts.shape[1]):
        concept = concepts[:, i]
        mine = policy.member[None, :] == concept[:, None]
        pick = np.argmax(np.where(mine, weight, -1.0), axis=1)
        picks[:, i] = np.where(concept >= 0, pick, -1)
    return picks


def render(policy: ReasonPolicy, feature: np.ndarray, X: np.ndarray) -> pl.Series:
    """The sentence for X[i, feature[i]] on each row (null where feature is -1), grouped by
    feature and variant: one Polars expression per group."""
    out = _no_sentences(len(feature))
    names = {n: j for j, n in enumerate(policy.feature_names)}
    for j in np.unique(feature[feature >= 0]):
        rows = np.flatnonzero(feature == j)
        compiled = policy.compiled[j]
        refs = {c: X[rows, names[c]] if c in names else np.full(len(rows), math.nan) for c in compiled.refs}
        out.scatter(rows, render_values(compiled, X[rows, j], refs))
    return out
