"""`relapse evaluate` end to end: a model from one simulated cohort measured on another."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.pipeline.cli.test_train import client
from tests.schema_check import errors

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]
PHASES = ("acute", "early", "consolidation")
SCHEMA = json.loads((Path(__file__).parents[3] / "docs" / "report.schema.json").read_text())


@pytest.fixture(scope="module")
def second_cohort(workspace):
    out = workspace.root / "second"
    if not out.exists():
        workspace.run("simulate", "--patients", "500", "--seed", "12", "--out", str(out))
    return out


def run_id(output: str) -> str:
    return re.search(r"evaluation run ([0-9a-f]{32})", output).group(1)


def test_evaluation_run_is_tagged_and_named_like_training(trained, workspace, second_cohort):
    result = workspace.run("evaluate", "--model", "models:/relapse-risk/1", "--data", str(second_cohort))
    c = client(workspace.tracking_uri)
    run = c.get_run(run_id(result.output))
    assert c.get_experiment(run.info.experiment_id).name == "relapse-risk-evaluation"
    tags = run.data.tags
    assert tags["model_name"] == "relapse-risk" and tags["model_version"] == "1"
    assert len(tags["data_fingerprint"]) == 64 and tags["validation"] == "external"
    assert tags["missing_inputs"] == "none" and "warning" not in result.output
    assert tags["learned_from_checked"] == "true"
    metrics = run.data.metrics
    for phase in (*PHASES, "pooled"):
        for name in ("auroc", "auprc", "brier", "calibration_intercept", "calibration_slope", "ece", "oe_ratio"):
            assert f"{name}_{phase}" in metrics
        assert metrics[f"oe_ratio_{phase}_lo"] <= metrics[f"oe_ratio_{phase}"] <= metrics[f"oe_ratio_{phase}_hi"]
    # the same data-generating process: discrimination close to the development run's
    trained_run = c.get_run(c.get_model_version("relapse-risk", "1").run_id).data.metrics
    assert abs(metrics["auroc_pooled"] - trained_run["auroc_pooled"]) < 0.08
    measured = {p for p in ("acute", "early", "consolidation", "maintenance") if f"n_rows_{p}" in metrics}
    unmeasured = sorted({"acute", "early", "consolidation", "maintenance"} - measured)
    assert ("not measured" in result.output) == bool(unmeasured)  # a phase left out is said to be
    assert all(p in result.output.split("not measured")[-1] for p in unmeasured)
    artifacts = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"evaluation_metrics.csv", "calibration_curves.csv", "decision_curves.csv", "subgroups.csv",
            "evaluation.json", "calibration_acute.png", "decision_curve_pooled.png"} <= artifacts


def test_what_the_cohort_lacks_of_the_models_inputs_is_warned_of_and_tagged(trained, workspace, second_cohort,
                                                                             tmp_path):
    without = tmp_path / "no_bdnf"
    shutil.copytree(second_cohort, without)
    (without / "bdnf.parquet").unlink()
    result = workspace.run("evaluate", "--model", "models:/relapse-risk/1", "--data", str(without))
    assert "warning: feature group 'bdnf' the model was trained with is missing from the data (table bdnf absent)" \
        in result.output and "the model without it" in result.output
    tags = client(workspace.tracking_uri).get_run(run_id(result.output)).data.tags
    assert tags["missing_inputs"] == "feature group 'bdnf' the model was trained with is missing from the data " \
                                     "(table bdnf absent)"


def test_phases_the_cohort_cannot_measure_are_named(trained, workspace, second_cohort, tmp_path):
    import polars as pl

    short = tmp_path / "short"
    shutil.copytree(second_cohort, short)
    patients, outcomes = (pl.read_parquet(short / f"{t}.parquet") for t in ("patients", "outcomes"))
    cut = outcomes.join(patients.select("patient_id", "intake_date"), on="patient_id").with_columns(
        pl.min_horizontal("last_followup_date", pl.col("intake_date") + pl.duration(days=200)).alias("end"))
    cut = cut.with_columns(pl.col("end").alias("last_followup_date"),
                           pl.when(pl.col("relapse_date") <= pl.col("end")).then("relapse_date").alias("relapse_date"))
    cut.select(outcomes.columns).write_parquet(short / "outcomes.parquet")  # nobody followed past day 200
    result = workspace.run("evaluate", "--model", "models:/relapse-risk/1", "--data", str(short))
    assert "not measured (no labelled landmark row in this cohort): maintenance" in result.output


def test_temporal_label_and_exclusive_flags(trained, workspace, second_cohort):
    result = workspace.run("evaluate", "--model", "models:/relapse-risk/1", "--data", str(second_cohort), "--temporal")
    assert client(workspace.tracking_uri).get_run(run_id(result.output)).data.tags["validation"] == "temporal"
    both = workspace.run("evaluate", "--model", "models:/relapse-risk/1", "--data", str(second_cohort),
                         "--temporal", "--as-external", expect=2)
    assert "exclude each other" in both.output


def test_bad_input_is_a_clear_error_and_logs_nothing(trained, workspace, second_cohort, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(second_cohort, broken)
    (broken / "outcomes.parquet").unlink()
    c = client(workspace.tracking_uri)
    experiment = c.get_experiment_by_name("relapse-risk-evaluation")
    before = len(c.search_runs([experiment.experiment_id])) if experiment else 0
    result = workspace.run("evaluate", "--model", "models:/relapse-risk/1", "--data", str(broken), expect=2)
    assert "outcomes" in result.output and "Traceback" not in result.output
    missing = workspace.run("evaluate", "--model", "models:/relapse-risk/99", "--data", str(second_cohort), expect=2)
    assert "cannot load model" in missing.output
    own = workspace.run("evaluate", "--model", "models:/relapse-risk/1", "--data", str(workspace.data), expect=2)
    assert "is data relapse-risk version 1 learned from" in own.output and "in-sample" in own.output
    import polars as pl  # the same data re-saved as CSV: other files, the same rows

    resaved = tmp_path / "resaved"
    resaved.mkdir()
    for table in workspace.data.glob("*.parquet"):
        pl.read_parquet(table).write_csv(resaved / f"{table.stem}.csv")
    again = workspace.run("evaluate", "--model", "models:/relapse-risk/1", "--data", str(resaved), expect=2)
    assert "100% of its labelled landmark rows are rows relapse-risk version 1 was trained on" in again.output
    experiment = c.get_experiment_by_name("relapse-risk-evaluation")
    assert (len(c.search_runs([experiment.experiment_id])) if experiment else 0) == before


def test_audit_takes_an_evaluation_run(trained, workspace, second_cohort, tmp_path):
    result = workspace.run("evaluate", "--model", "models:/relapse-risk/1", "--data", str(second_cohort))
    evaluation = run_id(result.output)
    report = tmp_path / "audit.html"
    workspace.run("audit", "--out", str(report), "--evaluation", evaluation)  # the evaluated version by default
    html = report.read_text()
    assert 'id="evaluation"' in html and evaluation in html and "oe_ratio" in html
    document = json.loads(report.with_suffix(".json").read_text())
    assert errors(document, SCHEMA) == []
    section = document["evaluation"]
    assert section["run_id"] == evaluation and section["model_version"] == "1"
    logged = client(workspace.tracking_uri).get_run(evaluation).data.metrics
    assert section["phases"]["pooled"]["auroc"]["estimate"] == pytest.approx(logged["auroc_pooled"])
    assert section["phases"]["acute"]["oe_ratio"]["lo"] == pytest.approx(logged["oe_ratio_acute_lo"])
    bad = workspace.run("audit", "--out", str(tmp_path / "bad.html"), "--evaluation", "0" * 32, expect=2)
    assert "not an evaluation run" in bad.output and not (tmp_path / "bad.html").exists()


def test_evaluation_in_shards_logs_the_same_metrics(trained, workspace, second_cohort, tmp_path):
    """Above `shards.patients_per_shard` the landmark rows are built shard by shard, as training
    builds them: the same rows, so the same metrics."""
    from dataclasses import replace

    from tests.pipeline.cli.conftest import write_config

    sharded = replace(workspace, config=write_config(tmp_path / "sharded.yaml", workspace.tracking_uri,
                                                     "shards:\n  patients_per_shard: 120\n"))
    c = client(workspace.tracking_uri)
    runs = [c.get_run(run_id(ws.run("evaluate", "--model", "models:/relapse-risk/1", "--data", str(second_cohort))
                             .output)).data for ws in (workspace, sharded)]
    assert runs[0].metrics["n_rows_pooled"] > 0
    assert runs[1].metrics == pytest.approx(runs[0].metrics, rel=1e-12, abs=1e-12)
