"""`relapse train` and `relapse promote` end to end, checked through the MLflow client."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

from tests.pipeline.cli.conftest import Workspace, mlflow_server, write_config

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]
ARTIFACTS = {
    "metrics.csv",
    "phase_counts.csv",
    "feature_registry.json",
    "training_profile.json",
    "model_card.json",
    "oof_predictions.parquet",
    "shap_sample.parquet",
    "calibration_acute.png",
    "shap_summary_acute.png",
}

if TYPE_CHECKING:
    from mlflow import MlflowClient


def client(uri: str) -> MlflowClient:
    import mlflow
    from mlflow import MlflowClient
    mlflow.set_tracking_uri(uri)
    return MlflowClient(uri, registry_uri=uri)


def download_model(c: MlflowClient, version: str, dst: Path) -> Path:
    import mlflow
    mv = c.get_model_version("relapse-risk", version)
    return Path(mlflow.artifacts.download_artifacts(f"models:/relapse-risk/{mv.version}", dst_path=str(dst)))


def test_training_run_has_params_tags_datasets_metrics_artifacts_and_version(trained, workspace, tmp_path):
    import mlflow
    c = client(workspace.tracking_uri)
    mv = c.get_model_version_by_alias("relapse-risk", "challenger")
    run = c.get_run(mv.run_id)
    assert run.data.params["model.xgboost.max_depth"] == "2"
    assert run.data.params["model.n_folds"] == "3"
    tags = run.data.tags
    assert tags["synthetic_data"] == "true" and len(tags["git_commit"]) >= 7
    assert tags["version.xgboost"].startswith("3.")
    assert len(tags["data_sha256.patients"]) == 64
    names = {d.dataset.name for d in run.inputs.dataset_inputs}
    assert {"patients", "outcomes", "bdnf", "hrv", "rr_intervals", "therapy_sessions", "assessments"} == names
    metrics = run.data.metrics
    for phase in ("acute", "early", "consolidation"):
        for name in (
            f"auroc_{phase}",
            f"auroc_{phase}_lo",
            f"auroc_{phase}_hi",
            f"brier_{phase}",
            f"calibration_slope_{phase}",
            f"ece_{phase}",
            f"logistic_auroc_{phase}",
            f"oracle_auroc_{phase}",
            f"n_events_{phase}",
            f"epv_{phase}",
        ):
            assert name in metrics, name
        assert metrics[f"auroc_{phase}_lo"] <= metrics[f"auroc_{phase}"] <= metrics[f"auroc_{phase}_hi"]
    assert 0.5 < metrics["auroc_pooled"] < 1
    logged = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert ARTIFACTS <= logged
    table = pl.read_csv(
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="metrics.csv", dst_path=str(tmp_path))
    )
    row = table.filter((pl.col("phase") == "pooled") & (pl.col("model") == "xgboost") & (pl.col("metric") == "auroc"))
    assert row["estimate"].item() == pytest.approx(metrics["auroc_pooled"])
    assert "low events per predictor" in trained.output or "EPV" in trained.output


def test_registered_model_is_described_and_each_version_tagged(trained, workspace):
    c = client(workspace.tracking_uri)
    description = c.get_registered_model("relapse-risk").description
    for words in ("next 30 days", "never a sole decision maker"):
        assert words in description, words
    mv = c.get_model_version("relapse-risk", "1")
    for words in ("acute (days 0-13)", "maintenance (days 365-729)"):  # the version's own phases
        assert words in mv.description, words
    tags = mv.tags
    assert tags["synthetic_data"] == "true" and tags["training_run"] == mv.run_id
    run = c.get_run(mv.run_id)
    assert tags["data_fingerprint"] == run.data.tags["data_fingerprint"] and len(tags["data_fingerprint"]) == 64
    assert tags["feature_groups"] == run.data.tags["feature_groups"] and "bdnf" in tags["feature_groups"]
    metrics = run.data.metrics
    for phase in ("pooled", "acute", "early", "consolidation"):
        low, high = metrics[f"auroc_{phase}_lo"], metrics[f"auroc_{phase}_hi"]
        assert tags[f"auroc_{phase}"] == f"{metrics[f'auroc_{phase}']:.3f} (95% CI {low:.3f}-{high:.3f})", phase
    assert run.info.run_name.startswith(f"{workspace.data.name}-")


def test_piped_training_prints_one_line_per_step_and_no_mlflow_info(trained):
    lines = trained.output.splitlines()
    steps = [line for line in lines if line.startswith("[") and "s] " in line]
    for step in ("validating input tables", "phase 'all': fold 1 of 3 done", "phase 'all': final fit done",
                 "evaluating out-of-fold predictions", "logging the run and registering the model in MLflow"):
        assert sum(step in line for line in steps) == 1, step
    assert not [line for line in lines if " INFO " in line or "Successfully registered" in line]


def test_logged_model_holds_no_pickle_and_a_verified_bundle(trained, workspace, tmp_path):
    from models.bundle import ModelBundle

    folder = download_model(client(workspace.tracking_uri), "1", tmp_path)
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert path.suffix not in {".pkl", ".pickle", ".joblib"}, path
        assert not path.read_bytes()[:1] == b"\x80", f"{path} looks like a pickle"
    bundle = ModelBundle.load(folder / "artifacts" / "bundle")
    assert [p["name"] for p in bundle.phases] == ["acute", "early", "consolidation", "maintenance"]
    mlmodel = (folder / "MLmodel").read_text()
    assert "signature" in mlmodel and "served_model.py" in mlmodel


def test_same_data_config_and_seed_give_identical_metrics_and_boosters(trained, workspace, tmp_path):
    workspace.run("train", "--data", str(workspace.data))
    c = client(workspace.tracking_uri)
    first, second = (c.get_model_version("relapse-risk", v) for v in ("1", "2"))
    m1, m2 = (c.get_run(v.run_id).data.metrics for v in (first, second))
    assert m1 == m2
    b1 = download_model(c, "1", tmp_path / "a") / "artifacts" / "bundle"
    b2 = download_model(c, "2", tmp_path / "b") / "artifacts" / "bundle"
    boosters = sorted(p.relative_to(b1) for p in b1.rglob("*.ubj"))
    assert boosters
    for rel in boosters:
        assert (b1 / rel).read_bytes() == (b2 / rel).read_bytes(), rel


def test_promote_refuses_a_worse_version_unless_forced(workspace, tmp_path):
    uri = f"sqlite:///{tmp_path / 'promote.db'}"
    full = Workspace(tmp_path, workspace.data, write_config(tmp_path / "full.yaml", uri), uri)
    full.run("train", "--data", str(workspace.data))
    rates_only = "model:\n  min_events: 100000\n"  # every phase falls back to its event rate
    fallback = Workspace(tmp_path, workspace.data, write_config(tmp_path / "fallback.yaml", uri, rates_only), uri)
    trained = fallback.run("train", "--data", str(workspace.data))
    assert "constant_rate (in-sample)" in trained.output
    c = client(uri)
    rates = c.get_run(c.get_model_version("relapse-risk", "2").run_id).data.metrics
    assert "auroc_pooled" not in rates  # no fitted phase: nothing to pool, never an in-sample 0.5
    full.run("promote", "--version", "1")
    refused = full.run("promote", "--version", "2", expect=2)
    assert "does not replace the champion" in refused.output and "--force" in refused.output
    assert "phase 'acute': AUROC" in refused.output and "95% CI of the difference" in refused.output
    assert str(c.get_model_version_by_alias("relapse-risk", "champion").version) == "1"
    full.run("promote", "--version", "2", "--force")
    assert str(c.get_model_version_by_alias("relapse-risk", "champion").version) == "2"
    tags = c.get_model_version("relapse-risk", "2").tags
    assert tags["promotion.forced"] == "true" and "phase 'acute'" in tags["promotion.override"]
    assert tags["promotion.basis"] == "the same out-of-fold rows (same training data)"


def test_a_300_patient_cohort_trains_and_warns_about_events_per_predictor(workspace, tmp_path):
    uri = f"sqlite:///{tmp_path / 'small.db'}"
    small = Workspace(tmp_path, tmp_path / "data", write_config(tmp_path / "small.yaml", uri), uri)
    small.run("simulate", "--patients", "300", "--seed", "5", "--out", str(small.data))
    result = small.run("train", "--data", str(small.data))
    assert "EPV" in result.output and "warning" in result.output
    run = client(uri).get_run(client(uri).get_model_version("relapse-risk", "1").run_id)
    assert run.data.metrics["warnings"] >= 1
    assert "EPV" in run.data.tags["warnings"]


def test_training_against_a_real_mlflow_server(workspace, tmp_path):
    server, uri = mlflow_server(
        tmp_path, f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination", str(tmp_path / "artifacts")
    )
    try:
        remote = Workspace(tmp_path, workspace.data, write_config(tmp_path / "remote.yaml", uri), uri)
        remote.run("train", "--data", str(workspace.data))
        c = client(uri)
        mv = c.get_model_version_by_alias("relapse-risk", "challenger")
        assert "auroc_pooled" in c.get_run(mv.run_id).data.metrics
        assert any((tmp_path / "artifacts").rglob("manifest.json")), "artifacts went through the server"
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode is not None
    os.environ.pop("MLFLOW_TRACKING_URI", None)
