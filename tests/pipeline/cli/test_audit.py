"""`relapse audit` end to end: every section, numbers that match the MLflow run, subgroup
counts that add up, hashed identifiers, and the report logged back to MLflow."""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING

import polars as pl
import pytest

from pipeline.privacy import hash_key_from_env, keyed_hash

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]
SECTIONS = ("model-card", "tripod", "performance", "subgroups", "explanations", "drift", "patients")

if TYPE_CHECKING:
    pass


def _artifacts(client, run_id: str) -> set[tuple[str, int | None]]:
    return {(a.path, a.file_size) for a in client.list_artifacts(run_id)}


@pytest.fixture(scope="module")
def reviewed_runs(scored, workspace):
    """The training and scoring runs the audit reviews, with their artifacts before it runs."""
    from mlflow import MlflowClient
    client = MlflowClient(workspace.tracking_uri, registry_uri=workspace.tracking_uri)
    manifest = json.loads(scored[0].with_name(scored[0].name + ".manifest.json").read_text())
    runs = {
        "training": client.get_model_version_by_alias("relapse-risk", "champion").run_id,
        "scoring": manifest["scoring_run_id"],
    }
    return client, runs, {kind: _artifacts(client, run_id) for kind, run_id in runs.items()}


@pytest.fixture(scope="module")
def report(scored, workspace, reviewed_runs):
    out, _, _ = scored
    path = workspace.root / "report.html"
    result = workspace.run("audit", "--scores", str(out), "--data", str(workspace.data), "--out", str(path))
    return path.read_text(), result


def test_report_has_every_section_and_the_synthetic_notice(report):
    html, result = report
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    assert "SYNTHETIC DATA" in html and "never a sole decision maker" in html.lower()
    assert "http://" not in html and "https://" not in html
    assert "SIMULATED" in result.output


def test_numbers_match_the_training_run(report, workspace):
    from mlflow import MlflowClient
    html, _ = report
    client = MlflowClient(workspace.tracking_uri, registry_uri=workspace.tracking_uri)
    run_id = client.get_model_version_by_alias("relapse-risk", "champion").run_id
    metrics = client.get_run(run_id).data.metrics
    for name in ("auroc_acute", "auroc_early", "brier_consolidation", "logistic_auroc_pooled", "oracle_auroc_pooled"):
        assert f"{metrics[name]:.3f}" in html, name
    assert run_id in html


@pytest.fixture(scope="module")
def document(report, workspace) -> dict:
    path = workspace.root / "report.json"
    assert path.is_file(), "report.json is written beside report.html"
    return json.loads(path.read_text())


def test_report_json_validates_against_the_documented_schema(document, report):
    from pathlib import Path

    from tests.schema_check import errors

    schema = json.loads((Path(__file__).parents[3] / "docs" / "report.schema.json").read_text())
    assert errors(document, schema) == []
    assert "report.json" in report[1].output


def test_subgroup_patients_match_a_count_of_the_out_of_fold_rows(document, workspace, tmp_path):
    import mlflow
    from mlflow import MlflowClient
    client = MlflowClient(workspace.tracking_uri, registry_uri=workspace.tracking_uri)
    run_id = client.get_model_version_by_alias("relapse-risk", "champion").run_id
    mlflow.set_tracking_uri(workspace.tracking_uri)
    oof = pl.read_parquet(
        mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="oof_predictions.parquet", dst_path=str(tmp_path)
        )
    ).filter(pl.col("label").is_not_null())
    counted = {
        (r["phase"], r["sex"]): (r["patients"], r["event_patients"])
        for r in oof.group_by("phase", "sex").agg(
            pl.col("patient_id").n_unique().alias("patients"),
            pl.col("patient_id").filter(pl.col("label") == 1).n_unique().alias("event_patients"),
        ).to_dicts()
    }
    reported = {
        (r["phase"], r["level"]): (r["n_patients"], r["n_event_patients"])
        for r in document["subgroups"]
        if r["attribute"] == "sex"
    }
    assert reported == counted and len(reported) > 0
    for phase in document["phases"]:  # the model card's events are patients too
        rows = oof.filter(pl.col("phase") == phase["phase"])
        assert phase["event_patients"] == rows.filter(pl.col("label") == 1)["patient_id"].n_unique()
    everyone = {r["phase"]: r for r in document["subgroups"] if r["attribute"] == "all" and r["auroc"] is not None}
    assert everyone
    for phase in document["phases"]:  # one cohort, one interval: the "all" row is the phase table's
        if phase["phase"] in everyone:
            row, auroc = everyone[phase["phase"]], phase["metrics"]["auroc"]
            assert (row["auroc"], row["auroc_lo"], row["auroc_hi"]) == pytest.approx(
                (auroc["estimate"], auroc["lo"], auroc["hi"]), abs=1e-12), phase["phase"]


def test_scoring_the_training_cohort_raises_at_most_one_drift_flag(document):
    drift = document["drift"]
    assert drift and {r["flag"] for r in drift} <= {"none", "minor", "major"}
    flagged = [(r["phase"], r["feature"], r["psi"]) for r in drift if r["flag"] != "none"]
    assert len(flagged) <= 1, flagged
    assert sum(r["missing_shift"] for r in drift) <= 1
    assert any(r["psi"] is not None for r in drift)  # judged, not merely skipped


def test_drift_leaves_out_the_scored_patients_past_their_follow_up(document, scored, workspace):
    from datetime import date

    from tests.pipeline.cli.conftest import AS_OF

    scores = pl.read_parquet(scored[0]).filter(pl.col("phase").is_not_null())
    outcomes = pl.read_parquet(workspace.data / "outcomes.parquet")
    ended = outcomes.filter(pl.col("last_followup_date") < date.fromisoformat(AS_OF))["patient_id"]
    past = scores.filter(pl.col("patient_id").is_in(ended.implode())).height
    assert past > 0 and document["scoring"]["n_past_follow_up"] == past
    manifest = json.loads(scored[0].with_name(scored[0].name + ".manifest.json").read_text())
    assert manifest["patients"]["scored_past_last_followup"] == past  # one rule for score and the audit
    compared = sum(r["n_scored"] for r in document["drift"] if r["feature"] == "age_at_intake")
    assert compared == scores.height - past  # age is never missing: every compared patient counts once


def test_checklist_statuses_and_fallbacks_are_honest(document):
    tripod = {t["item"]: t for t in document["tripod"]}
    assert tripod["20a"]["status"] == "answered" and tripod["10"]["status"] == "answered"
    assert tripod["5b"]["status"] == "answered"
    assert tripod["12f"]["status"] == "manual" and tripod["16"]["status"] == "partial"
    kinds = {p["phase"]: p["model_kind"] for p in document["phases"]}
    included = document["pooled"]["phases_included"]
    assert included == [p for p, k in kinds.items() if k == "xgboost"]
    for phase in document["phases"]:
        if phase["model_kind"] == "constant_rate":
            assert phase["in_sample"] and phase["metrics"]["auroc"]["estimate"] is None


def test_patient_pages_show_hashed_ids_only(report, scored, workspace):
    html, _ = report
    scores = pl.read_parquet(scored[0]).sort("risk_30d", descending=True).head(10)
    key = hash_key_from_env()
    for pid in scores["patient_id"]:
        assert keyed_hash(pid, key) in html
        assert not re.search(rf"\b{re.escape(pid)}\b", html), pid


def test_report_is_logged_to_its_own_audit_run_and_the_reviewed_runs_are_unchanged(report, reviewed_runs):
    _, result = report
    client, runs, before = reviewed_runs
    audit_id = re.search(r"logged to audit run ([0-9a-f]{32})", result.output).group(1)
    audit_run = client.get_run(audit_id)
    assert client.get_experiment(audit_run.info.experiment_id).name.endswith("-audit")
    tags = audit_run.data.tags
    assert tags["training_run_id"] == runs["training"] and tags["scoring_run_id"] == runs["scoring"]
    assert tags["model_name"] == "relapse-risk" and tags["model_version"] == "1"
    assert tags["synthetic_data"] == "true"
    assert "report.html" in {a.path for a in client.list_artifacts(audit_id)}
    assert audit_id not in runs.values()
    for kind, run_id in runs.items():
        assert _artifacts(client, run_id) == before[kind], kind


def test_missing_or_unreadable_inputs_are_clear_errors(trained, workspace, tmp_path):
    report = str(tmp_path / "r.html")
    missing = workspace.run(
        "audit", "--scores", str(tmp_path / "missing.parquet"), "--data", str(workspace.data), "--out", report,
        expect=2,
    )
    assert "missing.parquet: file not found" in missing.output and "Traceback" not in missing.output
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    broken.with_name("broken.parquet.manifest.json").write_text("{not json")
    unreadable = workspace.run("audit", "--scores", str(broken), "--data", str(workspace.data), "--out", report,
                               expect=2)
    assert "broken.parquet" in unreadable.output and "Traceback" not in unreadable.output
    no_data = workspace.run("audit", "--out", report, "--scores", str(broken), "--data", str(tmp_path / "nope"),
                            expect=2)
    assert "folder not found" in no_data.output
    assert not (tmp_path / "r.html").exists()


def test_named_patients_in_clear_with_include_ids(scored, workspace, tmp_path):
    out, _, _ = scored
    pid = pl.read_parquet(out)["patient_id"][0]
    path = workspace.root / "named.html"
    workspace.run(
        "audit",
        "--scores",
        str(out),
        "--data",
        str(workspace.data),
        "--out",
        str(path),
        "--patient",
        pid,
        "--include-ids",
    )
    assert pid in path.read_text()
    failed = workspace.run("audit", "--scores", str(out), "--out", str(path), expect=2)
    assert "--data" in failed.output
    data = ["--data", str(workspace.data)]
    for given in (data, ["--patient", pid], [*data, "--patient", pid]):
        ignored = workspace.run("audit", *given, "--out", str(tmp_path / "ignored.html"), expect=2)
        assert "need --scores" in ignored.output or "needs --scores" in ignored.output
    assert not (tmp_path / "ignored.html").exists()


def test_the_audit_explains_the_scores_as_written_or_refuses(scored, workspace, tmp_path):
    import shutil

    out, _, _ = scored
    report = tmp_path / "r.html"
    copy = tmp_path / "scores.parquet"
    shutil.copy(out, copy)
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    manifest["model"]["version"] = "99"  # written by a version that is not the champion (here: none)
    copy.with_name(copy.name + ".manifest.json").write_text(json.dumps(manifest))
    other = workspace.run("audit", "--scores", str(copy), "--data", str(workspace.data), "--out", str(report),
                          expect=2)
    assert "relapse-risk/99" in other.output  # the model that wrote them, not the champion, is asked for
    data = tmp_path / "data"
    shutil.copytree(workspace.data, data)
    (data / "bdnf.parquet").unlink()  # the cohort as it is now, not as it was scored
    changed = workspace.run("audit", "--scores", str(out), "--data", str(data), "--out", str(report), expect=2)
    assert f"--data {data} is not the cohort the scores were computed from" in changed.output
    assert "input tables changed since scoring: bdnf" in changed.output
    edited = tmp_path / "edited.parquet"  # a risk edited, and the manifest beside it made to agree
    pl.read_parquet(out).with_columns(pl.col("risk_30d").max().alias("risk_30d")).write_parquet(edited)
    agreeing = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    agreeing["output"]["sha256"] = hashlib.sha256(edited.read_bytes()).hexdigest()
    edited.with_name(edited.name + ".manifest.json").write_text(json.dumps(agreeing))
    refused = workspace.run("audit", "--scores", str(edited), "--data", str(workspace.data), "--out", str(report),
                            expect=2)
    assert f"not the one its scoring run {agreeing['scoring_run_id']} logged to MLflow" in refused.output
    agreeing["scoring_run_id"] = "0" * 32  # and the manifest made to name a run nobody logged
    edited.with_name(edited.name + ".manifest.json").write_text(json.dumps(agreeing))
    forged = workspace.run("audit", "--scores", str(edited), "--data", str(workspace.data), "--out", str(report),
                           expect=2)
    assert f"its scoring run {'0' * 32} is not in the MLflow store" in forged.output
    assert not report.exists() and not report.with_suffix(".json").exists()
