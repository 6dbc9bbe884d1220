"""A trained model ready to score, and scoring a batch of tables with it.

Shared by batch scoring (`pipeline.score`), the audit's patient pages (`pipeline.audit`), the
train stage's serving example and the served MLflow model (`pipeline/served_model.py`), so every
path gives the same risks and the same reason sentences.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from features import ENGINE
from features.build import EXCLUSIONS as FEATURE_EXCLUSIONS
from features.build import scoring_table
from features.config import FeaturesConfig, LandmarkConfig, Phase
from features.coverage import missing_groups, unread_inputs
from features.kinds import FeatureInfo, domain
from features.reasons import DEFAULT_MIN_EFFECT, ReasonPolicy, reason_policy
from features.registry import describe, feature_registry
from features.spec import FeatureSpec
from features.tables import SPECS
from models.bundle import ModelBundle
from models.scoring import explain_scores
from pipeline import model_store
from pipeline.config import MlflowConfig
from pipeline.contract import range_rule, rule_text

KEYS = ("patient_id", "as_of", "day", "phase")
# `no_model_for_phase`: the patient is in a phase the training data never reached (no at-risk
# row, status `no_data`), so no model can speak for it; counted, never guessed.
NO_MODEL = "no_model_for_phase"
EXCLUSIONS = (*FEATURE_EXCLUSIONS, NO_MODEL)
IDENTITY = ("model_name", "model_version", "run_id")


@dataclass
class LoadedModel:
    """A verified bundle with the feature settings it was trained with and its registry identity."""

    bundle: ModelBundle
    spec: FeatureSpec
    features: FeaturesConfig
    phases: list[Phase]
    policy: ReasonPolicy
    resolved: model_store.ResolvedModel | None = None

    @classmethod
    def from_bundle(cls, bundle: ModelBundle, resolved: model_store.ResolvedModel | None = None) -> LoadedModel:
        """Load once: the feature registry and reason policy are built here, not per row."""
        spec = FeatureSpec.from_dict(bundle.feature_spec)
        features = FeaturesConfig.model_validate(spec.features_config)
        policy = reason_policy(tuple(bundle.feature_names), feature_registry(spec))
        return cls(bundle, spec, features, [Phase(**p) for p in bundle.phases], policy, resolved)

    @property
    def name(self) -> str | None:
        return self.bundle.metadata.get("model_name", self.resolved.name if self.resolved else None)

    def describe(self, name: str, value: object, row: Mapping[str, object]) -> str:
        """The plain-language reason sentence for one feature value of a row."""
        return describe(name, value, spec=self.spec, row=row)

    def explain(
        self,
        rows: pl.DataFrame,
        n_reasons: int,
        bands: Mapping[str, float],
        min_effect: float = DEFAULT_MIN_EFFECT,
        unavailable: Collection[str] = (),
    ) -> tuple[pl.DataFrame, np.ndarray]:
        """Risk, band and reasons for rows holding `phase` and the feature columns; `unavailable`
        names feature groups absent from the data and features whose input is (`unavailable`):
        none of them is ever given as a reason."""
        return explain_scores(self.bundle, rows, n_reasons, bands, self.policy, min_effect, unavailable)

    def missing_groups(self, tables) -> dict[str, str]:
        """Feature groups the model was trained with that `tables` cannot feed, with why."""
        return missing_groups(self.spec, tables)

    def unavailable(self, tables) -> tuple[dict[str, str], dict[str, str], tuple[str, ...]]:
        """What `tables` cannot feed: the missing groups and the unread inputs (`coverage`), each
        with why, and what `explain` must never give as a reason (those groups, those features)."""
        groups = missing_groups(self.spec, tables)
        inputs = unread_inputs(self.spec, tables)
        never = (*groups, *(name for _, names in inputs.values() for name in names))
        return groups, {label: why for label, (why, _) in inputs.items()}, never

    def beyond_trained_days(self, scored: pl.DataFrame) -> dict[str, list[int]]:
        """Per phase, how many of the `scored` rows (phase, day) lie more than one landmark spacing
        past the last day the phase's training rows reached, the latest such day, and that last
        trained day: their risk is
        extrapolated (a cohort with short follow-up trains a phase on its first days only). Empty
        for a model trained before the days were recorded."""
        last = self.bundle.metadata.get("trained_days") or {}
        if not last or scored.height == 0:
            return {}
        limits = pl.DataFrame({"phase": list(last), "_last": [d[1] for d in last.values()]})
        past = (scored.select("phase", "day").join(limits, on="phase", how="inner")
                .filter(pl.col("day") > pl.col("_last") + self.landmarks.spacing_days)
                .group_by("phase").agg(pl.len().alias("n"), pl.col("day").max().alias("latest")))
        return {r["phase"]: [int(r["n"]), int(r["latest"]), int(last[r["phase"]][1])]
                for r in past.iter_rows(named=True)}

    def lacking(self, tables) -> list[str]:
        """What the model reads that `tables` lack, one sentence each (`coverage_notes`)."""
        groups, inputs, _ = self.unavailable(tables)
        return coverage_notes(groups, inputs)

    def risk(self, rows: pl.DataFrame) -> np.ndarray:
        """The final risk (calibrated, then site-recalibrated) for rows holding `phase` and the
        feature columns: the number `explain` reports, without the reasons."""
        X = rows.select(self.bundle.feature_names).to_numpy().astype(np.float64)
        return self.bundle.predict(X, rows["phase"].to_numpy(), rows["day"].to_numpy())["risk"]

    @property
    def constant_phases(self) -> list[str]:
        """The phases whose model is a constant fallback rate (status `constant`)."""
        return self.bundle.constant_phases

    @property
    def landmarks(self) -> LandmarkConfig:
        """The landmark spacing and horizon the model was trained with."""
        meta = self.bundle.metadata
        return LandmarkConfig(spacing_days=meta["landmark_spacing_days"], horizon_days=meta["horizon_days"])


def coverage_notes(missing: Mapping[str, str], unread: Mapping[str, str]) -> list[str]:
    """The missing groups and unread inputs (`LoadedModel.unavailable`, or a scoring manifest's)
    as sentences, for the warning of every command that scores data: its features are unknown
    for every patient there."""
    notes = [f"feature group '{g}' the model was trained with is missing from the data ({why})"
             for g, why in missing.items()]
    return notes + [f"{label}, which the model was trained with, is not in the data ({why})"
                    for label, why in unread.items()]


def load_model(uri: str, dst: Path, mlflow_config: MlflowConfig) -> LoadedModel:
    """Resolve a model URI (or local folder) into `dst` and verify its bundle's hashes."""
    dst.mkdir(parents=True)
    resolved = model_store.resolve_model(mlflow_config, uri, dst)
    return LoadedModel.from_bundle(ModelBundle.load(resolved.bundle_dir), resolved)


@dataclass
class BatchRows:
    rows: pl.DataFrame  # the rows the model scores: the scoring keys and features, at risk only
    excluded: dict[str, int]  # patients not scored, by reason


@dataclass
class BatchScores:
    scored: pl.DataFrame  # the output rows
    shap: pl.DataFrame  # patient_id, phase, shap__<feature>..., base_value, margin
    features: pl.DataFrame  # patient_id and the feature values the model saw
    excluded: dict[str, int]  # patients not scored, by reason


def score_tables(
    model: LoadedModel,
    tables,
    as_of: date,
    n_reasons: int,
    bands: Mapping[str, float],
    min_effect: float = DEFAULT_MIN_EFFECT,
    unavailable: Collection[str] | None = None,
) -> BatchScores:
    """Score validated tables (no `_row`) as of a date: `scoring_rows`, then `explain_rows`.
    `unavailable`: the feature groups and features whose input the whole input lacks (None: found
    from `tables` by `LoadedModel.unavailable`; batch scoring finds them once for all batches)."""
    if unavailable is None:
        unavailable = model.unavailable(tables)[2]
    return explain_rows(model, scoring_rows(model, tables, as_of), n_reasons, bands, min_effect, unavailable)


def scoring_rows(model: LoadedModel, tables, as_of: date) -> BatchRows:
    """The as-of feature rows of validated tables (no `_row`) the model can score, and the
    patients it cannot, by reason (a phase without a model among them)."""
    plan = scoring_table(tables, model.phases, model.features, model.spec, as_of, only_at_risk=True)
    frame = plan.collect(engine=ENGINE)
    unscorable = [p for p, pm in model.bundle.phase_models.items() if not pm.scorable]
    frame = frame.with_columns(
        pl.when(pl.col("exclusion").is_null() & pl.col("phase").is_in(unscorable))
        .then(pl.lit(NO_MODEL))
        .otherwise(pl.col("exclusion"))
        .alias("exclusion")
    )
    excluded = dict(frame.group_by("exclusion").len().drop_nulls("exclusion").iter_rows())
    return BatchRows(frame.filter(pl.col("exclusion").is_null()), excluded)


def explain_rows(
    model: LoadedModel,
    batch: BatchRows,
    n_reasons: int,
    bands: Mapping[str, float],
    min_effect: float,
    unavailable: Collection[str],
) -> BatchScores:
    """Risk, band, reasons and SHAP values of `scoring_rows`' rows, with the model's identity."""
    rows = batch.rows
    scores, shap = model.explain(rows, n_reasons, bands, min_effect, unavailable)
    r = model.resolved
    identity = [
        pl.lit(model.name, pl.String).alias("model_name"),
        pl.lit(r.version if r else None, pl.String).alias("model_version"),
        pl.lit(r.run_id if r else None, pl.String).alias("run_id"),
    ]
    scored = rows.select(KEYS).hstack(scores).with_columns(identity)
    names = model.bundle.feature_names
    shap_wide = (
        rows.select("patient_id", "phase")
        .hstack(pl.DataFrame(shap, schema=[f"shap__{n}" for n in names]))
        .with_columns(scores["base_value"], scores["margin"])
    )
    return BatchScores(scored, shap_wide, rows.select("patient_id", *names), batch.excluded)


class RequestError(ValueError):
    """A REST request the model cannot answer; the message names the column, the rule and the rows."""


MAX_SHOWN = 5


def check_request(columns: Mapping[str, list], feature_names: list[str], phases: list[Phase],
                  registry: Mapping[str, FeatureInfo] | None = None,
                  required: Mapping[str, Sequence[str]] | None = None) -> pl.DataFrame:
    """A REST request (column name → values) as rows to score: Int64 `day`, String `patient_id` and
    `as_of` when given, every feature as Float64 (null where left out). `day` must be a whole number
    inside some phase; `as_of` an ISO date (YYYY-MM-DD) or null; a feature must be a number or null,
    and a feature that is a patients column of the data contract must lie in its range (an age of
    -30 or a deprivation decile of 50 is refused, as batch scoring refuses the table row). With the
    model's feature `registry`, every feature must also lie in the domain the builders give it
    (`features.kinds.domain`: a 0/1 flag, a fraction, a whole count, a positive BDNF or HRV level),
    and a patient has at most one level of each category (`sex_female` and `sex_male` not both 1),
    so a value batch scoring could never produce is refused, not explained. A category given as one
    level set to 1 has its other levels 0, as batch scoring builds it. `required` (patients column →
    its features, `FeatureSpec.required_inputs`) names the inputs every patient has (age, sex): the
    model never saw them unknown, so a row without them is refused rather than scored as an
    extrapolation. Anything else raises `RequestError`."""
    if "day" not in columns:
        raise RequestError("column 'day' is required: days since intake")
    days = list(columns["day"])
    _require(days, lambda v: _is_number(v) and float(v).is_integer(), "'day' must be a whole number of days")
    first, last = phases[0].start_day, phases[-1].end_day
    _require(days, lambda v: first <= v <= last, f"'day' is outside every recovery phase (days {first}-{last})")
    out = {k: pl.Series(k, [None if _is_missing(v) else str(v) for v in columns[k]], pl.String)
           for k in ("patient_id", "as_of") if k in columns}
    out["day"] = pl.Series("day", [int(v) for v in days], pl.Int64)
    if "as_of" in columns:
        _require(list(columns["as_of"]), lambda v: _is_missing(v) or _is_iso_date(v),
                 "'as_of' must be a date, YYYY-MM-DD")
    for name in feature_names:
        values = [None if _is_missing(v) else v for v in columns.get(name, [None] * len(days))]
        _require(values, lambda v: v is None or _is_number(v), f"'{name}' must be a number or null")
        out[name] = pl.Series(name, [None if v is None else float(v) for v in values], pl.Float64)
    frame = pl.DataFrame(out)
    for c in SPECS["patients"].columns:  # a feature that is a patients column keeps the contract's range
        rule = range_rule(c) if c.name in feature_names and c.allowed is None else None
        if rule is not None:
            inside = frame.select(rule.fill_null(True)).to_series().to_list()
            _refuse([(i, v) for i, (v, ok) in enumerate(zip(frame[c.name], inside, strict=True)) if not ok],
                    f"'{c.name}' has values that {rule_text(c)} of patients.{c.name}")
    if registry is not None:
        _check_domains(frame, feature_names, registry)
        frame = _complete_levels(frame, feature_names, registry)
    for column, names in (required or {}).items():
        if list(names) == [column]:
            _require(frame[column].to_list(), lambda v: v is not None,
                     f"'{column}' is required: patients.{column} always has a value, so the model never saw it unknown")
        else:
            _refuse([(i, v) for i, v in enumerate(_level_sums(frame, names)) if v != 1],
                    f"{', '.join(names)}: patients.{column} is required, so one of them must be 1 (their sum is given)")
    return frame


def _check_domains(frame: pl.DataFrame, feature_names: list[str], registry: Mapping[str, FeatureInfo]) -> None:
    for name in feature_names:
        info = registry.get(name)
        if info is not None and (d := domain(info)) is not None:
            _require(frame[name].to_list(), lambda v, d=d: v is None or d.holds(v),
                     f"'{name}' ({info.unit or 'a level'}) takes {d.text()}")
    for concept, names in _categories(feature_names, registry).items():
        _refuse([(i, v) for i, v in enumerate(_level_sums(frame, names)) if v > 1],
                f"{', '.join(names)}: a patient has one {concept}, so at most one of them is 1 (their sum is given)")


def _complete_levels(
    frame: pl.DataFrame, feature_names: list[str], registry: Mapping[str, FeatureInfo]
) -> pl.DataFrame:
    """Where one level of a category is 1, its other levels left out are 0 (a patient has one)."""
    levels = _categories(feature_names, registry)
    known = [pl.any_horizontal(pl.col(n) == 1 for n in names).fill_null(False) for names in levels.values()]
    return frame.with_columns(
        pl.when(one).then(pl.col(n).fill_null(0)).otherwise(pl.col(n)).alias(n)
        for one, names in zip(known, levels.values(), strict=True)
        for n in names
    )


def _categories(feature_names: list[str], registry: Mapping[str, FeatureInfo]) -> dict[str, list[str]]:
    """Each one-hot category (concept) → its level columns among `feature_names`."""
    levels: dict[str, list[str]] = {}
    for name in feature_names:
        if (info := registry.get(name)) is not None and info.level:
            levels.setdefault(info.concept_name, []).append(name)
    return levels


def _level_sums(frame: pl.DataFrame, names: Sequence[str]) -> list[float]:
    return frame.select(pl.sum_horizontal(pl.col(n).fill_null(0) for n in names)).to_series().to_list()


def _is_iso_date(value: object) -> bool:
    try:
        return isinstance(value, str) and len(value) == 10 and date.fromisoformat(value) is not None
    except ValueError:
        return False


def _is_number(value: object) -> bool:
    numeric = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    return numeric and bool(np.isfinite(value))


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float | np.floating) and np.isnan(value))


def _require(values: list, ok, rule: str) -> None:
    _refuse([(i, v) for i, v in enumerate(values) if not ok(v)], rule)


def _refuse(bad: list[tuple[int, object]], rule: str) -> None:
    """RequestError naming the rule and the first rows (index, value) that break it, if any."""
    if bad:
        shown = ", ".join(f"row {i}: {v!r}" for i, v in bad[:MAX_SHOWN])
        more = f" and {len(bad) - MAX_SHOWN} more" if len(bad) > MAX_SHOWN else ""
        raise RequestError(f"column {rule}: {shown}{more}")
