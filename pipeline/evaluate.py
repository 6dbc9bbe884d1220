"""`relapse evaluate`: measure a registered model on a labelled cohort it was not trained on.

read → landmark rows built as in training (the model's FeatureSpec, phases, spacing and
horizon; shard by shard above `shards.patients_per_shard` patients, as training builds them;
the IPCW weights re-estimated from this cohort's own censoring, KM or censoring
model as the model was trained with) → the model's final
risk (`serving.LoadedModel.risk`) → `pipeline.reports.validation` (metrics with
patient-bootstrap CIs, calibration curves with bands, decision curves, subgroups) → one run in
the MLflow experiment `<experiment>-evaluation`. Nothing is written before every step has
succeeded; bad input stops with the contract's message.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from features.shards import landmark_table_bounded
from models.config import ModelConfig
from pipeline import artifacts, io, model_store, tracking, tracking_eval
from pipeline.artifacts import EvaluationArtifacts
from pipeline.config import Config
from pipeline.privacy import hash_key_from_env, with_hashed_ids
from pipeline.reports.validation import ValidationResult, metric_names, summary, validation_result
from pipeline.serving import LoadedModel, load_model
from pipeline.train import SUBGROUP_COLUMNS
from pipeline.weights import with_censoring_weights

Validation = Literal["external", "temporal"]
Progress = Callable[[str], None]


@dataclass
class EvaluateSummary:
    run_id: str
    model_name: str | None
    model_version: str | None
    result: ValidationResult
    synthetic: bool
    unmeasured: list[str]  # the model's phases without a labelled landmark row in this cohort
    lacking: list[str]  # what the model reads that the cohort lacks (`LoadedModel.lacking`)
    unchecked: bool = False  # this store does not know the model's training run: in-sample data cannot be refused


def model_landmarks(model: LoadedModel, tables: dict[str, pl.DataFrame], patients_per_shard: int) -> pl.DataFrame:
    """The cohort's landmark table with the model's phases, landmarks, feature settings and
    spec, built as training builds it: in one pass, or shard by shard (the same frame, row for
    row; the censoring curve and end of follow-up from the whole cohort) when the cohort has
    more than `patients_per_shard` patients, so the intermediate frames stay bounded by a shard."""
    return landmark_table_bounded(tables, model.phases, model.landmarks, model.features, model.spec,
                                  patients_per_shard)


def landmark_rows(model: LoadedModel, tables: dict[str, pl.DataFrame], cfg: ModelConfig,
                  patients_per_shard: int) -> pl.DataFrame:
    """The cohort's uncensored landmark rows inside the model's scorable phases, built as in
    training (`model_landmarks`: keys, label, the model's feature columns, and the IPCW weight
    re-estimated from this cohort's censoring with the weighting the model was trained with;
    `cfg` gives the censoring model's settings)."""
    landmarks = model_landmarks(model, tables, patients_per_shard)
    method = model.bundle.metadata.get("censoring_weights", cfg.censoring_weights)
    landmarks = with_censoring_weights(landmarks, tables["outcomes"], model.spec,
                                       cfg.model_copy(update={"censoring_weights": method}),
                                       model.landmarks.horizon_days)
    scorable = [p for p, pm in model.bundle.phase_models.items() if pm.scorable]
    rows = landmarks.filter(~pl.col("censored") & pl.col("phase").is_in(scorable))
    if rows.height == 0:
        raise ValueError("the cohort has no uncensored landmark rows inside the model's phases: nothing to evaluate")
    return rows


def labelled_rows(model: LoadedModel, rows: pl.DataFrame, patients: pl.DataFrame) -> pl.DataFrame:
    """Landmark rows reduced to keys, label and weight, with the model's risk and the patient
    attributes the subgroup table uses."""
    attributes = patients.select("patient_id", *[c for c in SUBGROUP_COLUMNS if c in patients.columns])
    return (
        rows.select("patient_id", "landmark_date", "day", "phase", "label", "ipcw_weight")
        .with_columns(pl.Series("risk", model.risk(rows), pl.Float64))
        .join(attributes, on="patient_id", how="left", maintain_order="left")
    )


def read_cohort(data_dir: Path) -> tuple[dict[str, pl.DataFrame], dict[str, str], bool]:
    """Validated tables (no `_row`), their file hashes and whether the folder is simulated."""
    validated, paths = io.load_tables(data_dir, required=("patients", "outcomes"))
    return io.drop_row_index(validated.tables), io.hash_files(paths), io.read_simulation_metadata(data_dir) is not None


def evaluation_tags(model: LoadedModel, hashes: dict[str, str], validation: str, synthetic: bool,
                    lacking: list[str]) -> dict[str, str]:
    r = model.resolved
    return {
        **lacking_tag(lacking),
        "model_name": str(model.name),
        "model_version": str(r.version if r else None),
        "model_run_id": str(r.run_id if r else None),
        "model_uri": r.uri if r else "",
        "data_fingerprint": io.data_fingerprint(hashes),
        "validation": validation,
        "synthetic_data": str(synthetic).lower(),
        **{f"data_sha256.{name}": sha for name, sha in hashes.items()},
    }


def lacking_tag(lacking: list[str]) -> dict[str, str]:
    """`missing_inputs`: what the model reads that the cohort lacked ("none" when nothing)."""
    return {"missing_inputs": "; ".join(lacking)[:5000] or "none"}


def check_not_learned_from(model: LoadedModel, fingerprint: str, data_dir: Path, config: Config) -> bool:
    """Refuse a cohort the model learned from (its training data, or data it was recalibrated
    on, by file fingerprint): its metrics there are in-sample, not a validation. False when this
    store knows nothing the model learned from (a model folder from another store), so nothing
    could be checked."""
    r = model.resolved
    known = model_store.learned_from(config.mlflow, r.run_id) if r is not None else ()
    if fingerprint in known:
        raise ValueError(
            f"{data_dir} is data {model.name} version {r.version} learned from (its training or recalibration "
            "cohort): metrics there are in-sample, not a validation; the out-of-fold metrics `relapse train` "
            "reported are the honest ones, or use a cohort the model has not seen"
        )
    return bool(known)


# Above this share of a cohort's labelled landmark rows being training rows (same patient id, by
# keyed hash, and landmark date), the cohort is the training data or holds it. A cohort of other
# patients shares a few rows only by chance: simulated cohorts reuse ids P00001..., and a pair
# meets on a landmark date when their intakes fall a whole number of weeks apart (~1 in 7).
IN_SAMPLE_SHARE = 0.5


def trained_on_share(config: Config, run_id: str | None, rows: pl.DataFrame, work: Path) -> float:
    """The share of `rows` (patient_id, landmark_date) that are rows the model of `run_id` was
    trained on, from that run's out-of-fold predictions (keyed-hash ids, the key of this
    environment); 0 when the run or its predictions cannot be read."""
    if run_id is None or rows.height == 0:
        return 0.0
    try:
        path = tracking.download_run_file(config.mlflow, run_id, artifacts.OOF_PREDICTIONS, work)
        trained = pl.read_parquet(path, columns=["patient_id", "landmark_date"]).unique()
    except Exception:  # noqa: BLE001  (MLflow raises many types for a missing run or artifact)
        return 0.0
    keys = rows.select("patient_id", pl.col("landmark_date").cast(trained.schema["landmark_date"]))
    keyed = with_hashed_ids(keys, hash_key_from_env())
    return keyed.join(trained, on=["patient_id", "landmark_date"], how="semi").height / rows.height


def check_not_trained_on(model: LoadedModel, rows: pl.DataFrame, data_dir: Path, config: Config, work: Path) -> None:
    """Refuse a cohort most of whose labelled landmark rows are the model's training rows, whatever
    its files look like (re-saved as CSV, reordered, a table dropped, or the training data inside
    a larger cohort)."""
    r = model.resolved
    share = trained_on_share(config, r.run_id if r else None, rows, work)
    if share > IN_SAMPLE_SHARE:
        raise ValueError(
            f"{data_dir}: {share:.0%} of its labelled landmark rows are rows {model.name} version "
            f"{r.version if r else None} was trained on (the same patient and landmark date): metrics there are "
            "in-sample, not a validation; use a cohort of other patients"
        )


def evaluate(
    data_dir: Path,
    model_uri: str,
    config: Config,
    validation: Validation = "external",
    progress: Progress = lambda _: None,
) -> EvaluateSummary:
    """Score `model_uri` on the labelled cohort in `data_dir` and log one evaluation run.

    `validation` only labels the run ("external": another site or population; "temporal":
    later patients of the development site); the computation is the same.
    """
    tracking.check_reachable(config.mlflow)  # an unreachable store fails before any work
    progress("validating input tables")
    tables, hashes, synthetic = read_cohort(data_dir)
    with tempfile.TemporaryDirectory(prefix="relapse-evaluate-") as tmp:
        work = Path(tmp)
        progress("loading the model")
        model = load_model(model_uri, work / "model", config.mlflow)
        checked = check_not_learned_from(model, io.data_fingerprint(hashes), data_dir, config)
        progress("building landmark rows and scoring them")
        landmarks = landmark_rows(model, tables, config.model, config.shards.patients_per_shard)
        rows = labelled_rows(model, landmarks, tables["patients"])
        check_not_trained_on(model, rows, data_dir, config, work / "trained")
        progress("computing metrics with patient-bootstrap intervals")
        result = validation_result(rows, [p.name for p in model.phases], config.model.bootstrap_samples,
                                   config.model.seed, validation, model.constant_phases)
        lacking = model.lacking(tables)
        tags = evaluation_tags(model, hashes, validation, synthetic, lacking) | {
            "learned_from_checked": str(checked).lower()}
        io.write_evaluation_artifacts(_artifacts(result, tags), work / "artifacts")
        record = tracking_eval.EvaluationRecord(
            run_name=f"evaluate-{validation}-v{tags['model_version']}",
            params={"model_uri": model_uri, "data_dir": str(data_dir), "validation": validation,
                    "bootstrap_samples": config.model.bootstrap_samples},
            tags=tags,
            metrics=metric_names(result.metrics, result.counts),
            artifact_dir=work / "artifacts",
        )
        progress("logging the evaluation run in MLflow")
        run_id = tracking.guarded(config.mlflow, "logging the evaluation run",
                                  lambda: tracking_eval.log_evaluation(config.mlflow, record))
    measured = set(rows["phase"].unique().to_list())
    unmeasured = [p.name for p in model.phases if p.name not in measured]
    return EvaluateSummary(run_id, model.name, tags["model_version"], result, synthetic, unmeasured, lacking,
                           unchecked=not checked)


def _artifacts(result: ValidationResult, tags: dict[str, str]) -> EvaluationArtifacts:
    return EvaluationArtifacts(
        metrics=result.metrics,
        counts=result.counts,
        calibration=result.calibration,
        decision_curves=result.decision_curves,
        subgroups=result.subgroups,
        summary={"tags": tags, "metrics": summary(result.metrics), "counts": result.counts.to_dicts()},
        figures=result.figures,
    )
