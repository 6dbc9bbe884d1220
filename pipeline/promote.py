"""`relapse promote` (the stage): move alias `champion` to a version only on evidence.

The evidence is a paired comparison on the same labelled rows (`models.comparison`), per phase:
- both versions trained on the same data (equal `data_fingerprint` tags): each run's out-of-fold
  predictions, joined on keyed-hash patient id and landmark date. Both are out-of-fold, so
  neither model is scored on rows it learned from. The rows must match one to one with equal
  labels (same landmark and horizon settings), else the runs are not comparable; and neither may
  be a site recalibration, whose run holds its parent's out-of-fold rows without the layer;
- with `--data DIR` (an evaluation cohort): the cohort's landmark table is built with each
  model's own feature settings and both models score the same uncensored rows. A cohort that
  either version learned from (its training data, or the local data it was recalibrated on) is
  refused as in-sample for that model.
Two runs on different cohorts without `--data` are never compared: their rows are different
patients and any difference would mix cohort with model. That refuses promotion unless
`--force`. `--force` promotes whatever the evidence and records on the version the tags
`promotion.forced` and `promotion.override` (the refusal it overrode).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from features import ENGINE
from features.build import landmark_table
from models.comparison import Comparison, compare
from pipeline import artifacts, io, model_store, tracking
from pipeline.config import Config
from pipeline.evaluate import IN_SAMPLE_SHARE, trained_on_share
from pipeline.model_store import PromotionRefused
from pipeline.privacy import hash_key_from_env, with_hashed_ids
from pipeline.serving import LoadedModel, load_model

SAME_ROWS_SHARE = 0.99


@dataclass
class PromotionResult:
    name: str
    version: str
    previous_champion: str | None
    basis: str  # what the comparison was made on
    comparison: Comparison | None
    forced: bool


def promote(config: Config, version: str, force: bool = False, data_dir: Path | None = None) -> PromotionResult:
    versions = model_store.promotion_versions(config.mlflow, version)
    challenger, champion = versions.candidate, versions.champion
    if champion is not None and champion.version == challenger.version:
        return PromotionResult(versions.name, challenger.version, None, "nothing (already champion)", None, False)
    if champion is None:
        model_store.set_champion(config.mlflow, challenger.version, {"promotion.basis": "no champion to compare with"})
        return PromotionResult(versions.name, challenger.version, None, "nothing (no champion yet)", None, False)
    with tempfile.TemporaryDirectory(prefix="relapse-promote-") as tmp:
        try:
            rows, basis = _paired_rows(config, versions, data_dir, Path(tmp))
        except NotComparable as exc:
            if not force:
                raise PromotionRefused(f"{exc}; use --force to promote anyway") from None
            return _forced(config, versions, f"not compared: {exc}", None, str(exc))
    comparison = compare(rows, config.model.bootstrap_samples, config.model.seed, config.model.min_events)
    if comparison.refused and not force:
        raise PromotionRefused(
            f"version {challenger.version} does not replace the champion (version {champion.version}) on {basis}: "
            + "; ".join(comparison.reasons) + "; use --force to promote anyway"
        )
    if comparison.refused:
        return _forced(config, versions, basis, comparison, "; ".join(comparison.reasons))
    model_store.set_champion(config.mlflow, challenger.version, {
        "promotion.basis": basis, "promotion.compared_with": champion.version, "promotion.forced": "false",
        **_gate(config),
    })
    return PromotionResult(versions.name, challenger.version, champion.version, basis, comparison, False)


def _gate(config: Config) -> dict[str, str]:
    """The comparison's settings, recorded beside the decision they produced."""
    return {"promotion.bootstrap_samples": str(config.model.bootstrap_samples),
            "promotion.min_events": str(config.model.min_events)}


class NotComparable(ValueError):
    """The two versions share no labelled rows that can be compared fairly."""


def _forced(config, versions, basis: str, comparison: Comparison | None, override: str) -> PromotionResult:
    model_store.set_champion(config.mlflow, versions.candidate.version, {
        "promotion.basis": basis, "promotion.compared_with": versions.champion.version,
        "promotion.forced": "true", "promotion.override": override[:5000], **_gate(config),
    })
    return PromotionResult(versions.name, versions.candidate.version, versions.champion.version, basis,
                           comparison, True)


def _paired_rows(config: Config, versions, data_dir: Path | None, work: Path) -> tuple[pl.DataFrame, str]:
    challenger, champion = versions.candidate, versions.champion
    if data_dir is not None:
        return _evaluation_rows(config, versions, data_dir, work), f"evaluation cohort {data_dir}"
    recalibrated = [v.version for v in (challenger, champion) if v.recalibrated]
    if recalibrated:
        raise NotComparable(
            f"version {' and '.join(recalibrated)} {'is a' if len(recalibrated) == 1 else 'are'} site "
            f"recalibration{'s' if len(recalibrated) > 1 else ''}: a recalibrated version's out-of-fold rows are its "
            "parent's, without the recalibration, so comparing them would compare the parent with itself; pass --data "
            "with a labelled cohort from the local population that was not used to recalibrate"
        )
    if not challenger.fingerprint or challenger.fingerprint != champion.fingerprint:
        raise NotComparable(
            f"version {challenger.version} and the champion (version {champion.version}) were trained on "
            f"different data (fingerprints {str(challenger.fingerprint)[:12]} and {str(champion.fingerprint)[:12]}), "
            "so their out-of-fold rows are different patients; pass --data with an evaluation cohort "
            "neither was trained on to compare them on the same rows"
        )
    frames = [
        pl.read_parquet(
            tracking.download_run_file(config.mlflow, v.run_id, artifacts.OOF_PREDICTIONS, work / v.version)
        )
        for v in (challenger, champion)
    ]
    keys = ["patient_id", "landmark_date"]
    ours = frames[0].select(*keys, "phase", "label", "ipcw_weight", pl.col("risk").alias("risk_challenger"))
    theirs = frames[1].select(*keys, pl.col("label").alias("_label"), pl.col("risk").alias("risk_champion"))
    rows = ours.join(theirs, on=keys, how="inner")
    matched = rows.height / max(ours.height, theirs.height, 1)
    if matched < SAME_ROWS_SHARE or (rows["label"] != rows["_label"]).any():
        raise NotComparable(
            f"the two runs' out-of-fold rows do not match one to one ({matched:.0%} shared, labels must agree): "
            "different landmark or horizon settings, or a different hash key; pass --data with an evaluation cohort"
        )
    return rows.drop("_label"), "the same out-of-fold rows (same training data)"


def _evaluation_rows(config: Config, versions, data_dir: Path, work: Path) -> pl.DataFrame:
    validated, paths = io.load_tables(data_dir, required=("patients", "outcomes"))
    fingerprint = io.data_fingerprint(io.hash_files(paths))
    for v in (versions.candidate, versions.champion):
        if fingerprint in v.learned_from:
            raise NotComparable(f"{data_dir} is data version {v.version} learned from (its training or recalibration "
                                "cohort): it would be scored in-sample")
    tables = io.drop_row_index(validated.tables)
    scored = []
    for label, v in (("risk_challenger", versions.candidate), ("risk_champion", versions.champion)):
        model = load_model(f"models:/{versions.name}/{v.version}", work / f"model-{v.version}", config.mlflow)
        scored.append(_score_landmarks(model, tables, config, label))
        share = trained_on_share(config, v.run_id, scored[-1], work / f"trained-{v.version}")
        if share > IN_SAMPLE_SHARE:
            raise NotComparable(f"{data_dir}: {share:.0%} of its labelled landmark rows are rows version {v.version} "
                                "was trained on (the same patient and landmark date): it would be scored in-sample")
    keys = ["patient_id", "landmark_date"]
    rows = scored[0].join(scored[1].select(*keys, "risk_champion"), on=keys, how="inner")
    if rows.height == 0:
        raise NotComparable(f"{data_dir} has no labelled landmark rows")
    return with_hashed_ids(rows, hash_key_from_env())


def _score_landmarks(model: LoadedModel, tables, config: Config, column: str) -> pl.DataFrame:
    """The cohort's uncensored landmark rows, built with the model's own feature settings, scored by it."""
    frame = landmark_table(tables, model.phases, config.landmarks, model.features, model.spec).collect(engine=ENGINE)
    scorable = [name for name, pm in model.bundle.phase_models.items() if pm.scorable]
    frame = frame.filter(~pl.col("censored") & pl.col("phase").is_in(scorable))
    names = model.bundle.feature_names
    X = frame.select(names).to_numpy().astype(np.float64)
    risk = model.bundle.predict(X, frame["phase"].to_numpy(), frame["day"].to_numpy())["risk"]
    return frame.select("patient_id", "landmark_date", "phase", "label", "ipcw_weight").with_columns(
        pl.Series(column, risk, pl.Float64)
    )
