"""Patient features known at intake: age, sex, ethnicity, deprivation, use history, housing.

Encoding (all Float64):
- numbers as they are; booleans as 0/1;
- `sex` and `housing` one-hot over the contract's fixed levels, `ethnicity` and categorical
  extra columns one-hot over the levels seen when the FeatureSpec was fitted;
- a missing value stays missing: every one-hot column of a null category is null;
- a category never seen at fit time (a new ethnicity at scoring) is known but matches no
  level, so all of its one-hot columns are 0.

Extra patient columns named in `features.demographic.extra` become features too: numeric and
boolean columns as numbers, text columns whose every value reads as a number as numbers
(CSV files arrive as text), any other text column one-hot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from features.config import DemographicConfig
from features.landmarks import LANDMARK_KEYS
from features.naming import distinct_values, level_columns, matching
from features.tables import HOUSING, SEXES, SPECS

NUMERIC = ("age_at_intake", "deprivation_decile", "ketamine_years", "prior_treatments")
FLAGS = ("polysubstance", "trauma_history")
FIXED_LEVELS: dict[str, tuple[str, ...]] = {"sex": SEXES, "housing": HOUSING}
LEARNED = ("ethnicity",)
_CONTRACT_COLUMNS = {c.name for c in SPECS["patients"].columns}
_KEY_COLUMNS = {*LANDMARK_KEYS, "as_of", "exclusion"}  # the landmark and scoring tables' keys


def fit_levels(patients: pl.DataFrame, cfg: DemographicConfig) -> dict[str, object]:
    """Learn what the spec must fix: categorical levels and which extra columns are numeric."""
    missing = [name for name in cfg.extra if name not in patients.columns]
    if missing:
        raise ValueError("features.demographic.extra names column(s) not in the patients table: " + ", ".join(missing))
    clash = [name for name in cfg.extra if name in _CONTRACT_COLUMNS]
    if clash:
        raise ValueError(f"features.demographic.extra names contract column(s) already used: {', '.join(clash)}")
    reserved = [name for name in cfg.extra if name.startswith("_") or name in _KEY_COLUMNS]
    if reserved:
        raise ValueError(
            f"features.demographic.extra names column(s) the tables' own columns use: {', '.join(reserved)} "
            "(names starting with '_' and the key columns are reserved); rename them in the patients table"
        )
    levels = {name: FIXED_LEVELS[name] for name in ("sex",)}
    levels["ethnicity"] = _observed_levels(patients["ethnicity"]) if "ethnicity" in patients.columns else ()
    levels["housing"] = FIXED_LEVELS["housing"]
    numeric, categorical = [], []
    for name in cfg.extra:
        if _is_numeric(patients[name]):
            numeric.append(name)
        else:
            categorical.append(name)
            levels[name] = _observed_levels(patients[name])
    return {
        "levels": levels,
        "extra_numeric": tuple(numeric),
        "extra_categorical": tuple(categorical),
    }


def _observed_levels(series: pl.Series) -> tuple[str, ...]:
    return distinct_values(series)  # "Asian" and "asian " are one level


def _is_numeric(series: pl.Series) -> bool:
    dtype = series.dtype
    if dtype.is_numeric() or dtype == pl.Boolean:
        return True
    if dtype == pl.String:
        present = series.drop_nulls().str.strip_chars()
        present = present.filter(present != "")
        return present.len() > 0 and present.cast(pl.Float64, strict=False).null_count() == 0
    raise ValueError(
        f"extra patient column '{series.name}' has type {dtype}; only numeric, boolean or text columns can be features"
    )


def feature_names(
    levels: Mapping[str, Sequence[str]],
    extra: Sequence[str],
    extra_numeric: Sequence[str],
    exclude: Sequence[str] = (),
) -> list[str]:
    """The demographic columns in output order; `extra` in config order; none from `exclude`
    (patient columns that are not predictors, e.g. a sensitive attribute)."""
    return [c for names in feature_sources(levels, extra, extra_numeric, exclude).values() for c in names]


def feature_sources(
    levels: Mapping[str, Sequence[str]],
    extra: Sequence[str],
    extra_numeric: Sequence[str],
    exclude: Sequence[str] = (),
) -> dict[str, list[str]]:
    """Each patients column the features read → its feature columns, in output order."""

    def columns(name: str) -> list[str]:
        if name in FIXED_LEVELS or name in LEARNED or (name in extra and name not in extra_numeric):
            return level_columns(name, levels[name])
        return [name]

    order = ["age_at_intake", "sex", "ethnicity", "deprivation_decile", "polysubstance", "ketamine_years"]
    order += ["prior_treatments", "trauma_history", "housing", *extra]
    return {name: columns(name) for name in order if name not in exclude}


def sensitive_columns(cfg: DemographicConfig) -> tuple[str, ...]:
    """The sensitive patient columns left out of the predictors (none when the config opts in)."""
    return () if cfg.sensitive_as_predictor else tuple(cfg.sensitive)


def check_sensitive(cfg: DemographicConfig) -> None:
    """Sensitive attributes must be patient columns the features read."""
    known = {*NUMERIC, *FLAGS, *FIXED_LEVELS, *LEARNED, *cfg.extra}
    unknown = [c for c in cfg.sensitive if c not in known]
    if unknown:
        raise ValueError(
            f"features.demographic.sensitive names column(s) that are not patient features: {', '.join(unknown)}"
        )


def one_hot(column: str, levels: Sequence[str]) -> list[pl.Expr]:
    """0/1 per level; null where the value is missing; an unseen value is 0 in every column.
    A learned level matches every spelling of it (`naming.text_key`); the contract's fixed
    levels are exact already (the contract refuses any other spelling)."""
    value = pl.col(column).cast(pl.String)
    levels_as = list(levels)
    if column not in FIXED_LEVELS:
        levels_as, key = matching(levels)
        value = key(value)
    return [
        pl.when(value.is_null()).then(None).otherwise((value == level).cast(pl.Float64)).alias(name)
        for level, name in zip(levels_as, level_columns(column, levels), strict=True)
    ]


def demographic_features(
    patients: pl.LazyFrame,
    levels: Mapping[str, Sequence[str]],
    extra: Sequence[str],
    extra_numeric: Sequence[str],
) -> pl.LazyFrame:
    """`patients` with the demographic feature columns added (names from `feature_names`)."""
    schema = patients.collect_schema()
    absent = [name for name in extra if name not in schema]
    if absent:
        raise ValueError(f"extra patient column(s) used by the model are missing: {', '.join(absent)}")
    exprs = [pl.col(c).cast(pl.Float64).alias(c) for c in NUMERIC]
    exprs += [pl.col(c).cast(pl.Float64).alias(c) for c in FLAGS]
    for column in ("sex", "ethnicity", "housing"):
        exprs += one_hot(column, levels[column])
    for name in extra:
        if name in extra_numeric:
            exprs.append(_as_number(name, schema[name]))
        else:
            exprs += one_hot(name, levels[name])
    return patients.with_columns(exprs)


def _as_number(name: str, dtype: pl.DataType) -> pl.Expr:
    """A numeric extra column as Float64; text that is not a number fails loudly at collect."""
    if dtype != pl.String:
        return pl.col(name).cast(pl.Float64).alias(name)
    text = pl.col(name).str.strip_chars()
    return pl.when(text != "").then(text).cast(pl.Float64, strict=True).alias(name)
