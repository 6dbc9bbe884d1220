"""`relapse recalibrate` end to end on a cohort whose baseline relapse rate is doubled."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.pipeline.cli.conftest import FAST_MODEL, Workspace
from tests.pipeline.cli.test_train import client, download_model

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]
SIMULATION = Path(__file__).parents[3] / "configs" / "simulation.yaml"


def doubled_rates(path: Path) -> Path:
    """A simulation override with every phase's baseline daily relapse rate doubled."""
    phases = yaml.safe_load(SIMULATION.read_text())["phases"]
    for phase in phases:
        phase["daily_relapse_rate"] *= 2
    path.write_text(yaml.safe_dump({"phases": phases}))
    return path


@pytest.fixture(scope="module")
def own_store(workspace, tmp_path_factory):
    """A model store of its own (recalibrate moves alias challenger), version 1 trained on the
    shared cohort with temporal validation, and a shifted cohort."""
    root = tmp_path_factory.mktemp("recal")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    config = root / "fast.yaml"
    temporal = "  validation: temporal\n  temporal_share: 0.25\n"
    config.write_text(FAST_MODEL + temporal + f"mlflow:\n  tracking_uri: {uri}\n")
    ws = Workspace(root, workspace.data, config, uri)
    ws.run("train", "--data", str(ws.data))
    shifted = root / "shifted"
    ws.run("simulate", "--patients", "500", "--seed", "13", "--out", str(shifted),
           "--config", str(doubled_rates(root / "shift.yaml")))
    return ws, shifted


@pytest.fixture(scope="module")
def recalibrated(own_store):
    """Version 1 evaluated on the shifted cohort, then recalibrated on it: (evaluation run id,
    the new version)."""
    ws, shifted = own_store
    before = ws.run("evaluate", "--model", "models:/relapse-risk/1", "--data", str(shifted))
    run_id = re.search(r"evaluation run ([0-9a-f]{32})", before.output).group(1)
    result = ws.run("recalibrate", "--model", "models:/relapse-risk/1", "--data", str(shifted))
    return run_id, re.search(r"version (\d+) \(parent version 1", result.output).group(1)


def test_recalibration_registers_a_child_version_with_the_same_boosters(own_store, recalibrated, tmp_path):
    ws, shifted = own_store
    run_id, version = recalibrated
    c = client(ws.tracking_uri)
    assert c.get_run(run_id).data.metrics["oe_ratio_pooled_lo"] > 1  # risk clearly under-predicted
    assert version == "2"
    mv = c.get_model_version("relapse-risk", version)
    assert "challenger" in mv.aliases and mv.tags["parent_version"] == "1"
    assert mv.tags["missing_inputs"] == "none"  # the local cohort had every input the model reads
    assert {mv.tags[f"recalibration_{p}"] for p in ("acute", "early", "consolidation", "maintenance")} <= {
        "none", "intercept", "intercept_slope"}
    assert mv.tags["recalibration_consolidation"] != "none"
    assert len(mv.tags["recalibration_data_fingerprint"]) == 64 and "version 1" in mv.description
    parent_tags = c.get_model_version("relapse-risk", "1").tags  # trained on and ranking as its parent
    for key in ("data_fingerprint", "feature_groups", "auroc_pooled", "auroc_acute"):
        assert mv.tags[key] == parent_tags[key], key
    assert "acute (days 0-13)" in mv.description
    parent, child = (download_model(c, v, tmp_path / v) / "artifacts" / "bundle" for v in ("1", version))
    parent_manifest, child_manifest = (json.loads((b / "manifest.json").read_text()) for b in (parent, child))
    boosters = {k for k in parent_manifest if k.startswith("phases/") or k == "shared.ubj"} | {"calibrators.json"}
    assert "shared.ubj" in boosters
    assert {k: child_manifest[k] for k in boosters} == {k: parent_manifest[k] for k in boosters}
    assert "recalibration.json" in child_manifest and "recalibration.json" not in parent_manifest
    metrics = c.get_run(mv.run_id).data.metrics
    assert abs(metrics["after_oe_ratio_pooled"] - 1) < abs(metrics["before_oe_ratio_pooled"] - 1)
    artifacts = {a.path for a in c.list_artifacts(mv.run_id)}
    assert {"recalibration.json", "evaluation_metrics.csv", "metrics.csv", "model_card.json"} <= artifacts


def test_temporal_validation_reports_the_latest_intakes_beside_cross_validation(own_store):
    ws, _ = own_store
    c = client(ws.tracking_uri)
    run = c.get_run(c.get_model_version("relapse-risk", "1").run_id)
    metrics = run.data.metrics
    assert run.data.params["model.validation"] == "temporal"
    for name in ("auroc_pooled", "temporal_auroc_pooled", "temporal_oe_ratio_pooled_lo", "temporal_brier_early"):
        assert name in metrics
    assert 0.5 < metrics["temporal_auroc_pooled"] <= 1
    # held-out patients are not in the development set: fewer patients than the cohort's 800
    assert sum(metrics[f"n_patients_{p}"] for p in ("acute",)) < 800


def test_a_model_folder_is_its_version_in_its_own_store_and_unregistered_elsewhere(own_store, tmp_path,
                                                                                   monkeypatch):
    import shutil

    from pipeline.config import load_config
    from pipeline.model_store import resolve_model

    ws, shifted = own_store
    folder = download_model(client(ws.tracking_uri), "1", tmp_path / "m")
    monkeypatch.chdir(folder.parent)
    here = resolve_model(load_config(ws.config).mlflow, folder.name)  # a relative path
    assert (here.name, here.version) == ("relapse-risk", "1") and here.uri == str(folder.resolve())
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(folder, elsewhere)
    mlmodel = elsewhere / "MLmodel"
    mlmodel.write_text(re.sub(r"run_id: \S+", "run_id: " + "0" * 32, mlmodel.read_text()))
    result = ws.run("recalibrate", "--model", str(elsewhere), "--data", str(shifted), expect=2)
    assert "not a registered model version" in result.output
    unknown = ws.run("evaluate", "--model", str(elsewhere), "--data", str(ws.data))  # its own training data
    assert "could not be checked" in unknown.output and "in-sample" in unknown.output
    run = client(ws.tracking_uri).get_run(re.search(r"evaluation run ([0-9a-f]{32})", unknown.output).group(1))
    assert run.data.tags["learned_from_checked"] == "false"
    missing = ws.run("evaluate", "--model", str(tmp_path / "nowhere"), "--data", str(shifted), expect=2)
    assert "model folder" in missing.output and "not found" in missing.output


def test_the_audit_of_a_recalibrated_version_answers_model_updating(own_store, recalibrated, tmp_path):
    ws, _ = own_store
    _, version = recalibrated
    report = tmp_path / "audit.html"
    ws.run("audit", "--out", str(report), "--model", f"models:/relapse-risk/{version}")
    tripod = {t["item"]: t for t in json.loads(report.with_suffix(".json").read_text())["tripod"]}
    mv = client(ws.tracking_uri).get_model_version("relapse-risk", version)
    assert tripod["12f"]["status"] == "answered"
    assert 'id="performance-recalibrated"' in report.read_text()  # the performance figures are the parent's
    answer = tripod["12f"]["answer"]
    assert f"Version {version}" in answer and "version 1" in answer
    assert mv.tags["recalibration_data_fingerprint"][:12] in answer
    for phase in ("acute", "early", "consolidation", "maintenance"):
        method = mv.tags[f"recalibration_{phase}"].replace("_", " and ")
        assert f"{phase}: {method}" in answer


def test_a_second_recalibration_composes_its_layer_and_names_the_whole_chain(own_store, recalibrated, tmp_path):
    ws, _ = own_store
    _, version = recalibrated
    again = tmp_path / "shifted-again"
    ws.run("simulate", "--patients", "500", "--seed", "14", "--out", str(again),
           "--config", str(doubled_rates(tmp_path / "shift.yaml")))
    result = ws.run("recalibrate", "--model", f"models:/relapse-risk/{version}", "--data", str(again))
    child = re.search(r"version (\d+) \(parent version " + version, result.output).group(1)
    c = client(ws.tracking_uri)
    first, second = (c.get_model_version("relapse-risk", v).tags for v in (version, child))
    for phase in ("acute", "early", "consolidation", "maintenance"):
        step, layer = second[f"recalibration_{phase}"], second[f"recalibration_layer_{phase}"]
        earlier = first[f"recalibration_layer_{phase}"]
        expected = "intercept_slope" if "intercept_slope" in (step, earlier) else (
            "intercept" if "intercept" in (step, earlier) else "none")
        assert layer == expected, phase  # the composed layer, not this step's choice alone
    report = tmp_path / "audit.html"
    ws.run("audit", "--out", str(report), "--model", f"models:/relapse-risk/{child}")
    answer = {t["item"]: t for t in json.loads(report.with_suffix(".json").read_text())["tripod"]}["12f"]["answer"]
    assert f"Version {child} is a site recalibration of version {version}" in answer
    assert f"latest first: version 1 on local data {first['recalibration_data_fingerprint'][:12]}" in answer
    assert "giving with the earlier recalibration(s)" in answer
    assert "the tables and figures below are version 1's out-of-fold estimates" in " ".join(report.read_text().split())


def test_the_cohort_a_version_was_recalibrated_on_is_not_evidence_for_promoting_it(own_store, recalibrated):
    ws, shifted = own_store
    _, version = recalibrated
    c = client(ws.tracking_uri)
    try:
        c.get_model_version_by_alias("relapse-risk", "champion")
    except Exception:  # noqa: BLE001  (no champion yet: the parent becomes one, on no evidence)
        ws.run("promote", "--version", "1")
    result = ws.run("promote", "--version", version, "--data", str(shifted), expect=2)
    assert f"is data version {version} learned from" in result.output and "in-sample" in result.output
    alone = ws.run("promote", "--version", version, expect=2)  # its run's out-of-fold rows are the parent's
    assert "site recalibration" in alone.output and "compare the parent with itself" in alone.output
    assert "--force" in alone.output


def test_a_cross_validated_retrain_is_compared_with_the_temporal_one_on_the_rows_both_hold(own_store, tmp_path):
    ws, _ = own_store
    cv = tmp_path / "cv.yaml"
    cv.write_text(FAST_MODEL + f"mlflow:\n  tracking_uri: {ws.tracking_uri}\n")
    plain = Workspace(ws.root, ws.data, cv, ws.tracking_uri)
    trained = plain.run("train", "--data", str(plain.data))
    version = re.search(r"registered relapse-risk version (\d+)", trained.output).group(1)
    c = client(ws.tracking_uri)
    try:
        c.get_model_version_by_alias("relapse-risk", "champion")
    except Exception:  # noqa: BLE001  (no champion yet: the temporal version 1 becomes one)
        ws.run("promote", "--version", "1")
    c.set_registered_model_alias("relapse-risk", "champion", "1")  # the temporal version
    result = plain.run("promote", "--version", version, "--force")
    assert "the out-of-fold rows both runs hold" in result.output and "version 1 held out its latest intakes" in (
        result.output)
    assert "challenger − champion" in result.output
