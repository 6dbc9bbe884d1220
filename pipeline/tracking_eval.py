"""MLflow for the validation jobs: evaluation and ablation runs, and registering a recalibrated
version. Split from `pipeline.tracking` by job; the connection, experiments, the served-model
logging and verified registration are that module's, reused here."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.artifacts import MODEL
from pipeline.config import MlflowConfig
from pipeline.tracking import (
    TrainingOutcome,
    _log_served_model,
    connect,
    download_run_artifacts,
    register_complete,
    use_experiment,
)


@dataclass
class EvaluationRecord:
    """Everything an evaluation (or ablation) run logs; built by its stage, logged here in one go."""

    run_name: str
    params: dict[str, Any]
    tags: dict[str, str]
    metrics: dict[str, float]
    artifact_dir: Path  # every file below it is logged as a run artifact


def log_evaluation(cfg: MlflowConfig, record: EvaluationRecord, kind: str = "evaluation") -> str:
    """Log one evaluation as a run of the `<experiment>-<kind>` experiment (evaluation, or
    ablation for the feature-group comparison); returns its id. All or nothing: a run whose
    logging fails or is interrupted is deleted."""
    mlflow = connect(cfg)
    use_experiment(mlflow, cfg, f"{cfg.experiment}-{kind}")
    run_id = None
    try:
        with mlflow.start_run(run_name=record.run_name) as run:
            run_id = run.info.run_id
            mlflow.log_params(record.params)
            mlflow.set_tags(record.tags)
            mlflow.log_metrics(record.metrics)
            mlflow.log_artifacts(str(record.artifact_dir))
    except BaseException:
        if run_id is not None:  # ended (as failed) by leaving the `with`, then removed
            _delete_run_quietly(mlflow, run_id)
        raise
    return run_id


def _delete_run_quietly(mlflow, run_id: str) -> None:
    """Best-effort removal of a run left half-logged by a failure or an interrupt, so no
    evaluation run is found without its artifacts (the store may be the thing that failed)."""
    try:
        mlflow.MlflowClient().delete_run(run_id)
    except Exception:  # noqa: BLE001, S110
        pass


@dataclass
class RecalibrationRecord:
    """A recalibrated model to register: the new bundle, its lineage, and what was measured."""

    run_name: str
    parent_version: str
    parent_run_id: str | None
    tags: dict[str, str]  # run and model-version tags (parent_version, recalibration_<phase>, ...)
    description: str
    metrics: dict[str, float]  # evaluation before and after on the local cohort
    artifact_dir: Path
    bundle_dir: Path
    input_example: pl.DataFrame
    output_example: pl.DataFrame
    feature_names: list[str]


def register_recalibrated(cfg: MlflowConfig, record: RecalibrationRecord) -> TrainingOutcome:
    """Log the recalibrated bundle as the served pyfunc (as training does) in a run of the main
    experiment and register it as a new version with alias `challenger` through
    `tracking.register_complete` (the bundle verified first; a version whose tags or alias fail
    is deleted). The version gets the record's tags and a description naming its parent; the
    registered model's own description is left alone. The parent run's artifacts (metrics,
    model card, profile) are copied into the new run so the audit finds the training evidence."""
    mlflow = connect(cfg)
    experiment = use_experiment(mlflow, cfg, cfg.experiment)
    with mlflow.start_run(run_name=record.run_name) as run:
        mlflow.set_tags(record.tags)
        mlflow.log_metrics(record.metrics)
        if record.parent_run_id:
            _copy_parent_artifacts(mlflow, cfg, record.parent_run_id)
        mlflow.log_artifacts(str(record.artifact_dir))
        info = _log_served_model(mlflow, cfg, record)
        tags = record.tags | {"training_run": run.info.run_id}

        def describe(client, version: str) -> None:
            for key, value in tags.items():
                client.set_model_version_tag(cfg.registered_model, version, key, value)
            client.update_model_version(cfg.registered_model, version, description=record.description)

        version = register_complete(mlflow, cfg, info.model_uri, "challenger", describe=describe)
        return TrainingOutcome(run.info.run_id, info.model_uri, version, experiment.experiment_id)


def _copy_parent_artifacts(mlflow, cfg: MlflowConfig, parent_run_id: str) -> None:
    with tempfile.TemporaryDirectory(prefix="relapse-parent-") as tmp:
        parent = download_run_artifacts(cfg, parent_run_id, Path(tmp))
        for item in parent.iterdir():
            if item.name == MODEL:
                continue
            if item.is_dir():
                mlflow.log_artifacts(str(item), item.name)
            else:
                mlflow.log_artifact(str(item))
