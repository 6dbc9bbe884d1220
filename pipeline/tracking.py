"""The one module that talks to MLflow: runs, datasets, the logged model, the registry.

Tracking URI: `mlflow.tracking_uri` from the config, else the standard MLFLOW_TRACKING_URI, else
an embedded SQLite store `mlflow.db` in the working folder (artifacts beside it in `mlruns/`).
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import tempfile
import warnings
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from pipeline import registry, signals
from pipeline.artifacts import BUNDLE, MODEL, SCORING_MANIFEST, WARNINGS
from pipeline.config import MlflowConfig

SERVED_MODEL_CODE = Path(__file__).with_name("served_model.py")


def _mlflow():
    import mlflow  # imported lazily: the CLI's other commands start fast

    for noise in (
        ".*type hints to the `predict` method.*",  # our model takes and returns data frames
        ".*Inferred schema contains integer column.*",  # `day` is never missing
        ".*dataset source can be interpreted in multiple ways.*",
    ):
        warnings.filterwarnings("ignore", message=noise)
    return mlflow


def tracking_uri(cfg: MlflowConfig) -> str:
    return cfg.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def connect(cfg: MlflowConfig):
    """Point MLflow at the configured store and return the `mlflow` module."""
    bound_retries()
    mlflow = _mlflow()
    uri = tracking_uri(cfg)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow


def use_experiment(mlflow, cfg: MlflowConfig, name: str):
    """Set (creating if needed) an experiment; a local SQLite store keeps artifacts beside it."""
    uri = tracking_uri(cfg)
    if mlflow.get_experiment_by_name(name) is None and uri.startswith("sqlite:///"):
        store = Path(uri.removeprefix("sqlite:///")).resolve().parent
        mlflow.create_experiment(name, artifact_location=(store / "mlruns").as_uri())
    return mlflow.set_experiment(name)


@dataclass
class DatasetInput:
    name: str
    frame: pl.DataFrame
    source: str
    digest: str  # SHA-256 of the file the table came from


@dataclass
class TrainingRecord:
    """Everything a training run logs; built by the train stage, logged here in one go."""

    run_name: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float]
    datasets: list[DatasetInput]
    artifact_dir: Path  # every file below it is logged as a run artifact
    bundle_dir: Path  # the model bundle (boosters, calibrators, spec, manifest)
    input_example: pl.DataFrame
    output_example: pl.DataFrame
    feature_names: list[str]
    warnings: list[str] = field(default_factory=list)
    description: str = ""  # the registered model's description (see pipeline.registry)
    version_tags: dict[str, str] = field(default_factory=dict)  # tags of the new registered version


@dataclass
class TrainingOutcome:
    run_id: str
    model_uri: str
    version: str
    experiment_id: str


def log_training(cfg: MlflowConfig, record: TrainingRecord) -> TrainingOutcome:
    """Log a training run and register its model as a new version with alias `challenger`,
    described and tagged at registration."""
    mlflow = connect(cfg)
    experiment = use_experiment(mlflow, cfg, cfg.experiment)
    with mlflow.start_run(run_name=record.run_name) as run:
        mlflow.log_params(record.params)
        mlflow.set_tags(record.tags)
        for ds in record.datasets:
            dataset = mlflow.data.from_polars(ds.frame, source=ds.source, name=ds.name, digest=ds.digest[:16])
            mlflow.log_input(dataset, context="training", tags={"sha256": ds.digest})
        mlflow.log_metrics(record.metrics)
        if record.warnings:
            mlflow.set_tag("warnings", "\n".join(record.warnings)[:5000])
            mlflow.log_text("\n".join(record.warnings) + "\n", WARNINGS)
        mlflow.log_artifacts(str(record.artifact_dir))
        info = _log_served_model(mlflow, cfg, record)
        tags = record.version_tags | {"training_run": run.info.run_id}
        version = register_complete(
            mlflow,
            cfg,
            info.model_uri,
            "challenger",
            describe=lambda client, v: registry.describe_version(
                client, cfg.registered_model, v, record.description, tags
            ),
        )
        return TrainingOutcome(run.info.run_id, info.model_uri, version, experiment.experiment_id)


def _log_served_model(mlflow, cfg: MlflowConfig, record: TrainingRecord):
    """The pyfunc from code, carrying the project's packages, its pinned requirements and the REST signature."""
    with tempfile.TemporaryDirectory(prefix="relapse-code-") as code, _registry_notes_quiet(), _no_bytecode():
        return mlflow.pyfunc.log_model(
            name=MODEL,
            python_model=str(SERVED_MODEL_CODE),
            artifacts={BUNDLE: str(record.bundle_dir)},
            code_paths=registry.stage_code(Path(code)),
            signature=registry.serving_signature(record.feature_names, record.output_example),
            input_example=record.input_example.to_pandas(),
            pip_requirements=registry.pip_requirements(),
        )


@contextmanager
def _no_bytecode():
    """MLflow loads the saved model to check its input example before uploading it; keep that import
    from writing `__pycache__` into the model's code."""
    before, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        yield
    finally:
        sys.dont_write_bytecode = before


REGISTRY_NOTES = re.compile(r"^(Successfully registered model |Registered model .* already exists|Created version )")


@contextmanager
def _registry_notes_quiet():
    """MLflow prints 'Successfully registered model…' and 'Created version…' straight to stderr, not
    as log records (and toggles its own stream while logging a model); hold those two notes back
    unless MLflow's INFO logging is on (`relapse --verbose`), and pass everything else through."""
    if logging.getLogger("mlflow").isEnabledFor(logging.INFO):
        yield
        return
    held = io.StringIO()
    try:
        with redirect_stderr(held):
            yield
    finally:
        for line in held.getvalue().splitlines(keepends=True):
            if not REGISTRY_NOTES.match(line):
                sys.stderr.write(line)


def download_run_file(cfg: MlflowConfig, run_id: str, path: str, dst: Path) -> Path:
    """One artifact of a run, downloaded into `dst`."""
    mlflow = connect(cfg)
    dst.mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(dst)))


@dataclass
class ScoringRecord:
    """Everything a scoring run logs; built by the score stage, logged here in one go."""

    run_name: str
    params: dict[str, Any]
    tags: dict[str, str]
    metrics: dict[str, float]
    manifest: dict[str, Any]  # the scoring manifest, without patient identifiers


def log_scoring(cfg: MlflowConfig, record: ScoringRecord) -> str:
    """Log one scoring job as a run of the `<experiment>-scoring` experiment; returns its id."""
    mlflow = connect(cfg)
    use_experiment(mlflow, cfg, f"{cfg.experiment}-scoring")
    with mlflow.start_run(run_name=record.run_name) as run:
        mlflow.log_params(record.params)
        mlflow.set_tags(record.tags)
        mlflow.log_metrics(record.metrics)
        mlflow.log_dict(record.manifest, SCORING_MANIFEST)
        return run.info.run_id


def download_run_artifacts(cfg: MlflowConfig, run_id: str, dst: Path) -> Path:
    mlflow = connect(cfg)
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="", dst_path=str(dst)))


def log_audit(
    cfg: MlflowConfig, run_name: str, tags: dict[str, str], report: Path, extra: list[Path] | None = None
) -> str:
    """Log an audit report (and `extra` files beside it, e.g. report.json) to a new run of the
    `<experiment>-audit` experiment; returns its id. The runs it reviewed are named in its tags
    and left untouched."""
    mlflow = connect(cfg)
    use_experiment(mlflow, cfg, f"{cfg.experiment}-audit")
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tags(tags)
        mlflow.log_artifact(str(report))
        for path in extra or []:
            mlflow.log_artifact(str(path))
        return run.info.run_id


# --- outages: reachability before work, bounded retries, no half-registered version ----------

RETRY_DEFAULTS = {  # MLflow's own HTTP retry settings; its defaults can wait minutes on a dead server
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # waits of about 1, 2, 4 s between tries
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
REACH_TRIES, REACH_TIMEOUT_S = 3, 5.0


class TrackingUnavailable(ValueError):
    """The MLflow store cannot be reached or failed mid-job; the message names its URI."""


def bound_retries() -> None:
    """Bound MLflow's retries on transient HTTP errors (an environment variable set by the user wins)."""
    for name, value in RETRY_DEFAULTS.items():
        os.environ.setdefault(name, value)


def check_reachable(cfg: MlflowConfig, sleep=None) -> None:
    """Fail before any work when the tracking store cannot be used.

    A server (http/https) must answer its `/health` endpoint within `REACH_TRIES` tries with
    a growing pause (0.5, 1 s); a SQLite store's folder must exist. Other schemes are left to MLflow.
    """
    import time
    import urllib.error
    import urllib.request

    uri = tracking_uri(cfg)
    if uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        if not folder.is_dir():
            raise TrackingUnavailable(f"MLflow store {uri}: folder {folder} does not exist; nothing was done")
        return
    if not uri.startswith(("http://", "https://")):
        return
    reason = ""
    for attempt in range(REACH_TRIES):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=REACH_TIMEOUT_S):
                return
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code}"
        except OSError as exc:
            reason = str(getattr(exc, "reason", exc))
        if attempt + 1 < REACH_TRIES:
            (sleep or time.sleep)(0.5 * 2**attempt)
    raise TrackingUnavailable(
        f"MLflow tracking server {uri} is unreachable ({reason}); nothing was done. "
        "Start the server or point mlflow.tracking_uri / MLFLOW_TRACKING_URI at a running one"
    )


def guarded(cfg: MlflowConfig, what: str, action):
    """Run an MLflow step; any failure (server gone, store error) becomes `TrackingUnavailable`."""
    try:
        return action()
    except TrackingUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001  (MLflow and requests raise many types)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrackingUnavailable(f"MLflow at {tracking_uri(cfg)} failed while {what}: {first[:300]}") from None


def register_complete(mlflow, cfg: MlflowConfig, model_uri: str, alias: str, describe=lambda client, v: None) -> str:
    """Register a logged model as a new version only once its artifacts are all readable.

    The model is downloaded and its bundle verified (every file against its SHA-256) before the
    version is created; if describing it (`describe(client, version)`) or setting the alias then
    fails or is interrupted, the version is deleted, so the registry never holds a version whose
    artifacts are incomplete.
    """
    import tempfile

    from models.bundle import ModelBundle

    with tempfile.TemporaryDirectory(prefix="relapse-verify-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        ModelBundle.load(local / "artifacts" / BUNDLE)
    client = mlflow.MlflowClient()
    with _registry_notes_quiet():
        version = str(mlflow.register_model(model_uri, cfg.registered_model).version)
    try:
        describe(client, version)
        client.set_registered_model_alias(cfg.registered_model, alias, version)
    except BaseException:
        delete_version_quietly(client, cfg.registered_model, version)
        raise
    signals.record_published([f"models:/{cfg.registered_model}/{version}"])
    return version


def delete_version_quietly(client, name: str, version: str) -> None:
    """Best-effort removal of a version being rolled back (the store may be the thing that failed)."""
    try:
        client.delete_model_version(name, version)
    except Exception:  # noqa: BLE001, S110
        pass

