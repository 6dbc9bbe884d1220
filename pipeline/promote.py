"""`relapse promote` (the stage): move alias `champion` to a version only on evidence.

The evidence is a paired comparison on the same labelled rows (`models.comparison`), per phase:
- both versions trained on the same data (equal `data_fingerprint` tags): each run's out-of-fold
  predictions, joined on keyed-hash patient id and landmark date. Both are out-of-fold, so
  neither model is scored on rows it learned from. The rows must match one to one with equal
  labels (same landmark and horizon settings), else the runs are not comparable (a run trained
  with temporal validation holds rows for the earlier patients only: the rows both hold are
  compared); and neither may be a site recalibration, whose run holds its parent's out-of-fold
  rows without the layer;
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from models.comparison import Comparison, compare
from pipeline import artifacts, io, model_store, tracking
from pipeline.config import Config
from pipeline.evaluate import IN_SAMPLE_SHARE, landmark_rows, trained_on_share
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
    lacking: list[str] = field(default_factory=list)  # what each version reads that the --data cohort lacks


def promote(config: Config, version: str, force: bool = False, data_dir: Path | None = None) -> PromotionResult:
    versions = model_store.promotion_versions(config.mlflow, version)
    challenger, champion = versions.candidate, versions.champion
    if champion is not None and champion.version == challenger.version:
        return PromotionResult(versions.name, challenger.version, None, "nothing (already champion)", None, False)
    if champion is None:
        model_store.set_champion(config.mlflow, challenger.version, {"promotion.basis": "no champion to compare with"})
        return PromotionResult(versions.name, challenger.version, None, "nothing (no champion yet)", None, False)
    lacking: list[str] = []
    with tempfile.TemporaryDirectory(prefix="relapse-promote-") as tmp:
        try:
            rows, basis = _paired_rows(config, versions, data_dir, Path(tmp), lacking)
        except NotComparable as exc:
            if not force:
                raise PromotionRefused(f"{exc}; use --force to promote anyway") from None
            return _forced(config, versions, f"not compared: {exc}", None, str(exc))
    comparison = compare(rows, config.model.bootstrap_samples, config.model.seed, config.model.min_events)
    noted = f" (compared without what the cohort lacks: {'; '.join(lacking)})" if lacking else ""
    if comparison.refused and not force:
        raise PromotionRefused(
            f"version {challenger.version} does not replace the champion (version {champion.version}) on {basis}: "
            + "; ".join(comparison.reasons) + noted + "; use --force to promote anyway"
        )
    if comparison.refused:
        return _forced(config, versions, basis, comparison, "; ".join(comparison.reasons) + noted, lacking)
    model_store.set_champion(config.mlflow, challenger.version, {
        "promotion.basis": basis, "promotion.compared_with": champion.version, "promotion.forced": "false",
        **_gate(config, lacking),
    })
    return PromotionResult(versions.name, challenger.version, champion.version, basis, comparison, False, lacking)


def _gate(config: Config, lacking: Sequence[str] = ()) -> dict[str, str]:
    """The comparison's settings, recorded beside the decision they produced, and what the
    evaluation cohort lacked of the versions' inputs."""
    return {"promotion.bootstrap_samples": str(config.model.bootstrap_samples),
            "promotion.min_events": str(config.model.min_events),
            **({"promotion.missing_inputs": "; ".join(lacking)[:5000]} if lacking else {})}


class NotComparable(ValueError):
    """The two versions share no labelled rows that can be compared fairly."""


def _forced(config, versions, basis: str, comparison: Comparison | None, override: str,
            lacking: Sequence[str] = ()) -> PromotionResult:
    model_store.set_champion(config.mlflow, versions.candidate.version, {
        "promotion.basis": basis, "promotion.compared_with": versions.champion.version,
        "promotion.forced": "true", "promotion.override": override[:5000], **_gate(config, lacking),
    })
    return PromotionResult(versions.name, versions.candidate.version, versions.champion.version, basis,
                           comparison, True, list(lacking))


def _paired_rows(config: Config, versions, data_dir: Path | None, work: Path,
                 lacking: list[str]) -> tuple[pl.DataFrame, str]:
    """The rows both versions are compared on, and on what; with `data_dir`, what each version
    reads that the cohort lacks is appended to `lacking`."""
    challenger, champion = versions.candidate, versions.champion
    if data_dir is not None:
        return _evaluation_rows(config, versions, data_dir, work, lacking), f"evaluation cohort {data_dir}"
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
    # a temporal hold-out leaves its latest intakes without out-of-fold rows: the rows of the
    # patients both developed on are compared (every one of the smaller run's rows, matched)
    held_out = [v.version for v in (challenger, champion) if v.held_out]
    sizes = (ours.height, theirs.height)
    matched = rows.height / max(min(sizes) if held_out else max(sizes), 1)
    if matched < SAME_ROWS_SHARE or (rows["label"] != rows["_label"]).any():
        raise NotComparable(
            f"the two runs' out-of-fold rows do not match one to one ({matched:.0%} shared, labels must agree): "
            "different landmark or horizon settings, or a different hash key; pass --data with an evaluation cohort"
        )
    if held_out:
        return rows.drop("_label"), (
            f"the out-of-fold rows both runs hold (same training data; version {' and '.join(held_out)} held out "
            "its latest intakes for temporal validation, which are left out)")
    return rows.drop("_label"), "the same out-of-fold rows (same training data)"


def _evaluation_rows(config: Config, versions, data_dir: Path, work: Path, lacking: list[str]) -> pl.DataFrame:
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
        lacking += [f"version {v.version}: {what}" for what in model.lacking(tables)]
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
    """The cohort's uncensored landmark rows, built and weighted as `relapse evaluate` builds them
    for this model (its own phases, landmarks, feature settings and censoring weights), with its
    final risk."""
    rows = landmark_rows(model, tables, config.model, config.shards.patients_per_shard)
    return rows.select("patient_id", "landmark_date", "phase", "label", "ipcw_weight").with_columns(
        pl.Series(column, model.risk(rows), pl.Float64)
    )
