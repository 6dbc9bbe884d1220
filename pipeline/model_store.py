"""Registered models by URI and the champion alias: resolve any model URI (or a local model
folder) to its bundle and registry identity, read the candidate and champion a promotion compares,
and move `champion`. MLflow calls, through `pipeline.tracking.connect`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.artifacts import BUNDLE
from pipeline.config import MlflowConfig, load_yaml
from pipeline.tracking import connect, tracking_uri


@dataclass
class ResolvedModel:
    """A model URI resolved to its local bundle and its registry identity."""

    uri: str
    bundle_dir: Path
    name: str | None
    version: str | None
    run_id: str | None


class ModelNotFound(ValueError):
    """A model URI that names no model this store can give."""


def resolve_model(cfg: MlflowConfig, uri: str, dst: Path | None = None) -> ResolvedModel:
    """Download (or find) the bundle behind any MLflow model URI or a local model folder."""
    try:
        return _resolve(cfg, uri, dst)
    except ModelNotFound:
        raise
    except Exception as exc:  # noqa: BLE001  (MLflow raises many types: unknown alias, no server, bad URI)
        raise ModelNotFound(f"cannot load model '{uri}' from {tracking_uri(cfg)}: {exc}") from None


def _resolve(cfg: MlflowConfig, uri: str, dst: Path | None) -> ResolvedModel:
    local = Path(uri)
    if local.exists():
        return _resolve_local(cfg, local)
    if ":" not in uri:  # not a URI (models:/…, runs:/…): a folder that is not there
        raise ModelNotFound(f"model folder {uri} not found (a model URI reads models:/NAME/N, models:/NAME@alias or "
                            "runs:/RUN_ID/model)")
    mlflow = connect(cfg)
    client = mlflow.MlflowClient()
    name = version = run_id = None
    if uri.startswith("models:/"):
        ref = uri.removeprefix("models:/")
        if "@" in ref:
            name, alias = ref.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        else:
            name, _, number = ref.partition("/")
            mv = client.get_model_version(name, number)
        version, run_id = str(mv.version), mv.run_id
    elif uri.startswith("runs:/"):
        run_id = uri.removeprefix("runs:/").split("/", 1)[0]
        found = client.search_model_versions(f"run_id = '{run_id}'")
        if found:
            name, version = found[0].name, str(found[0].version)
    path = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst) if dst else None))
    return ResolvedModel(uri, path / "artifacts" / BUNDLE, name, version, run_id)


def _resolve_local(cfg: MlflowConfig, folder: Path) -> ResolvedModel:
    """A model folder, named by its absolute path (a manifest written from one folder is read from
    any other); a folder of a logged model is the registered version its run is, when this store
    holds it."""
    folder = folder.resolve()
    mlmodel = folder / "MLmodel"
    if mlmodel.is_file():
        meta = load_yaml(mlmodel.read_text()) or {}
        name, version = meta.get("model_name"), None
        if run_id := meta.get("run_id"):
            name, version = _registered_as(cfg, run_id, name)
        return ResolvedModel(str(folder), folder / "artifacts" / BUNDLE, name, version, run_id)
    return ResolvedModel(str(folder), folder, None, None, None)


def _registered_as(cfg: MlflowConfig, run_id: str, name: str | None) -> tuple[str | None, str | None]:
    """(name, version) of the registered version whose run is `run_id`, or (`name`, None) when
    this store holds none (a folder from another site) or cannot be asked."""
    try:
        found = connect(cfg).MlflowClient().search_model_versions(f"run_id = '{run_id}'")
    except Exception:  # noqa: BLE001  (no store, another store's run: unregistered here)
        return name, None
    return (found[0].name, str(found[0].version)) if found else (name, None)


class PromotionRefused(RuntimeError):
    """The candidate is not shown to be at least as good as the champion and --force was not given."""


@dataclass
class RegisteredVersion:
    version: str
    run_id: str
    fingerprint: str | None  # the training run's `data_fingerprint` tag
    learned_from: tuple[str, ...] = ()  # every cohort the version learned from: training, recalibration(s)
    recalibrated: bool = False  # a site recalibration: its run's out-of-fold rows are its parent's, without the layer
    held_out: bool = False  # trained with temporal validation: its latest intakes have no out-of-fold row


@dataclass
class PromotionVersions:
    name: str
    candidate: RegisteredVersion
    champion: RegisteredVersion | None


def promotion_versions(cfg: MlflowConfig, version: str) -> PromotionVersions:
    """The version to promote and the current champion (None when there is none)."""
    mlflow = connect(cfg)
    client = mlflow.MlflowClient()
    name = cfg.registered_model

    def registered(mv) -> RegisteredVersion:
        run = client.get_run(mv.run_id).data
        tags = run.tags
        return RegisteredVersion(str(mv.version), mv.run_id, tags.get("data_fingerprint"),
                                 _learned_from(client, mv.run_id), bool(tags.get("recalibration_data_fingerprint")),
                                 run.params.get("model.validation") == "temporal")

    candidate = registered(client.get_model_version(name, str(version)))
    try:
        champion = registered(client.get_model_version_by_alias(name, "champion"))
    except mlflow.exceptions.MlflowException:
        champion = None
    return PromotionVersions(name, candidate, champion)


def learned_from(cfg: MlflowConfig, run_id: str | None) -> tuple[str, ...]:
    """The data fingerprints of every cohort the model of `run_id` learned from: its training
    data and, for a recalibrated version, the local data of each recalibration."""
    return _learned_from(connect(cfg).MlflowClient(), run_id)


def _learned_from(client, run_id: str | None) -> tuple[str, ...]:
    # a recalibration run names its local data and its parent run, which names its own; a run this
    # store does not hold (a model folder from another site, a deleted parent) ends what is known
    from mlflow.exceptions import MlflowException

    seen: list[str] = []
    while run_id:
        try:
            tags = client.get_run(run_id).data.tags
        except MlflowException:
            break
        seen += [tags[k] for k in ("data_fingerprint", "recalibration_data_fingerprint") if tags.get(k)]
        run_id = tags.get("parent_run_id")
    return tuple(seen)


def registered_tags(cfg: MlflowConfig, name: str | None, version: str | None) -> dict[str, str]:
    """The tags of registered version `name`/`version` ({} for a model that is not registered)."""
    if not name or not version:
        return {}
    return dict(connect(cfg).MlflowClient().get_model_version(name, str(version)).tags)


def set_champion(cfg: MlflowConfig, version: str, tags: dict[str, str]) -> None:
    """Point alias `champion` at `version` and record on that version how the decision was made."""
    client = connect(cfg).MlflowClient()
    held = client.get_model_version(cfg.registered_model, str(version)).tags
    for key in sorted(k for k in held if k.startswith("promotion.") and k not in tags):  # an earlier decision's
        client.delete_model_version_tag(cfg.registered_model, str(version), key)
    for key, value in tags.items():
        client.set_model_version_tag(cfg.registered_model, str(version), key, value)
    client.set_registered_model_alias(cfg.registered_model, "champion", str(version))
