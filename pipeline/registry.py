"""What the logged model carries and what the registry says about it: the serving signature, the
project code shipped with the model, its requirements, the registered model's description and
each version's tags, and the identity (run id, version) a loaded model reports.

Decisions:
- **Self-contained model**: the project is not on a package index, so the model carries its own
  code: `features/`, `models/` and `pipeline/` are logged as MLflow `code_paths` (copied without
  bytecode caches) and MLflow puts them on `sys.path` when it loads the model. `requirements.txt`
  pins the third-party packages those modules import, at the versions trained with, so a fresh
  virtual environment built from it alone loads and serves the model.
- **Signature**: `day` is required; `patient_id`, `as_of` and every feature column are optional
  (`ColSpec(required=False)`), so a request may leave out what a clinic does not record and the
  model treats it as unknown. `day` is declared `Any` so that the model itself judges it: MLflow
  would cast a JSON `12.5` to a `long` 12 before the model sees it, and refuse a Python integer
  for a `double`; the model answers 400 for anything but a whole number inside some phase.
  Features are `double`: a REST value that is not a number gets MLflow's one-line 400 naming the
  column.
- **Identity at load**: the run id comes from the model's own `MLmodel` file, so it is known
  offline. The registered version does not exist yet when the model files are written, so it is
  looked up in the registry at load time (versions whose run is this run) when a tracking store
  is configured (`MLFLOW_TRACKING_URI`, as `mlflow models serve -m models:/...` needs anyway);
  without one it is null.
"""

from __future__ import annotations

import os
import shutil
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.config import load_yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CODE_PACKAGES = ("features", "models", "pipeline")
# Third-party packages imported by the code the served model runs (pandas: MLflow's frames).
REQUIREMENTS = ("mlflow", "polars", "pyarrow", "numpy", "pandas", "xgboost", "scikit-learn", "scipy", "pydantic",
                "pyyaml")
OPTIONAL_KEYS = ("patient_id", "as_of")


def pip_requirements() -> list[str]:
    """Every package the served model imports, pinned to the version installed here."""
    return [f"{name}=={package_version(name)}" for name in REQUIREMENTS]


def stage_code(dst: Path) -> list[str]:
    """Copy the project packages (sources only) into `dst`; returns the paths for `code_paths`."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
    paths = []
    for name in CODE_PACKAGES:
        target = dst / name
        shutil.copytree(PROJECT_ROOT / name, target, ignore=ignore)
        paths.append(str(target))
    return paths


def serving_signature(feature_names: list[str], output_example: pl.DataFrame):
    """The REST contract: `day` required, identifiers and every feature optional."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    inputs = Schema(
        [
            ColSpec(AnyType(), "day"),
            *(ColSpec("string", key, required=False) for key in OPTIONAL_KEYS),
            *(ColSpec("double", name, required=False) for name in feature_names),
        ]
    )
    identity = pl.DataFrame(schema={c: pl.String for c in ("model_name", "model_version", "run_id")})
    outputs = infer_signature(output_example.head(0).hstack(identity).to_pandas()).inputs
    return ModelSignature(inputs=inputs, outputs=outputs)


MODEL_DESCRIPTION = (
    "Calibrated probability of relapse in the next 30 days for a person in treatment for ketamine addiction, "
    "from days since intake and the clinic's records. One XGBoost model per recovery phase; a trained version's "
    "description names its phases and its feature_groups tag the feature groups it was trained with (a "
    "recalibrated version's description names its parent). Each "
    "score comes with a risk band and plain-language SHAP reasons. Decision support only: never a sole decision "
    "maker; read every score with the clinician's own assessment. Versions tagged synthetic_data=true were "
    "trained on simulated data and are for demonstration and testing only."
)


def version_description(phases: list[dict[str, Any]]) -> str:
    """One version's description: the phases it was trained for (versions may differ; the registered
    model's own description, `MODEL_DESCRIPTION`, holds only what every version shares)."""
    spans = ", ".join(f"{p['name']} (days {p['start_day']}-{p['end_day']})" for p in phases)
    return f"Relapse in the next 30 days; one XGBoost model per recovery phase: {spans}."


def describe_version(client, name: str, version: str, description: str, tags: dict[str, str]) -> None:
    """Set the registered model's shared description, one version's own description and its tags."""
    client.update_registered_model(name, description=MODEL_DESCRIPTION)
    client.update_model_version(name, version, description=description)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def model_identity(model_dir: Path, name: str | None) -> dict[str, str | None]:
    """run_id from the model's MLmodel file; the registered version from the registry when one is set."""
    mlmodel = model_dir / "MLmodel"
    meta = load_yaml(mlmodel.read_text()) if mlmodel.is_file() else {}
    run_id = (meta or {}).get("run_id")
    return {"model_name": name, "model_version": _registered_version(name, run_id), "run_id": run_id}


def _registered_version(name: str | None, run_id: str | None) -> str | None:
    if not (name and run_id and os.environ.get("MLFLOW_TRACKING_URI")):
        return None
    try:
        from mlflow import MlflowClient

        found = MlflowClient().search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except Exception:  # noqa: BLE001  (an unreachable registry leaves the version unknown, never stops serving)
        return None
    return str(max(int(v.version) for v in found)) if found else None
