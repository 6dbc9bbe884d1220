"""`relapse ablate` end to end: a feature group made signal-free shows no value."""

from __future__ import annotations

import re
import shutil

import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.pipeline.cli.test_train import client

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]


@pytest.fixture(scope="module")
def shuffled(workspace, tmp_path_factory):
    """The shared cohort with every patient's whole assessment history given to another patient
    (a fixed permutation), each record kept at its day since intake and dropped past the
    receiver's last follow-up (no landmark reads it there). Shuffling the scores alone
    would leave each patient's own visit schedule in the measurement-age columns; moved whole,
    scores, schedule and missingness all belong to someone else, so the group has no signal."""
    out = tmp_path_factory.mktemp("shuffled") / "data"
    shutil.copytree(workspace.data, out)
    path = out / "assessments.parquet"
    scores = pl.read_parquet(path)
    intake = pl.read_parquet(out / "patients.parquet").select("patient_id", "intake_date")
    follow_up = pl.read_parquet(out / "outcomes.parquet").select("patient_id", "last_followup_date")
    donors = pl.DataFrame({"patient_id": intake["patient_id"].shuffle(seed=7), "receiver": intake["patient_id"]})
    moved = (
        scores.join(intake, on="patient_id")
        .with_columns((pl.col("assessed_on") - pl.col("intake_date")).alias("offset"))
        .join(donors, on="patient_id")
        .drop("patient_id", "intake_date")
        .rename({"receiver": "patient_id"})
        .join(intake, on="patient_id")
        .with_columns((pl.col("intake_date") + pl.col("offset")).alias("assessed_on"))
        .join(follow_up, on="patient_id")
        .filter(pl.col("assessed_on") <= pl.col("last_followup_date"))  # as recorded data would be
        .select(scores.columns)
    )
    moved.write_parquet(path)
    return out


def test_a_group_without_signal_shows_no_value(workspace, shuffled, tmp_path):
    # more resamples than the shared fast config's 20, so the percentile bounds mean something
    config = tmp_path / "ablate.yaml"
    config.write_text(workspace.config.read_text().replace("bootstrap_samples: 20", "bootstrap_samples: 200"))
    result = CliRunner().invoke(app, ["ablate", "--data", str(shuffled), "--groups", "assessments",
                                      "--config", str(config)])
    assert result.exit_code == 0, result.output
    run_id = re.search(r"ablation run ([0-9a-f]{32})", result.output).group(1)
    c = client(workspace.tracking_uri)
    run = c.get_run(run_id)
    assert c.get_experiment(run.info.experiment_id).name == "relapse-risk-ablation"
    metrics = run.data.metrics
    all_phases = ("acute", "early", "consolidation", "maintenance")
    phases = [p for p in all_phases if f"delta_auroc_assessments_{p}" in metrics]
    assert phases  # at least one phase had a model to ablate
    for phase in phases:
        # no evidence either way: dropping a group without signal neither lowers nor raises AUROC
        low, high = metrics[f"delta_auroc_assessments_{phase}_lo"], metrics[f"delta_auroc_assessments_{phase}_hi"]
        assert low <= 0 <= high, (phase, low, high)
        assert f"delta_net_benefit_0.1_assessments_{phase}" in metrics
    assert {"ablation.csv", "ablation_auroc.png"} <= {a.path for a in c.list_artifacts(run_id)}


def test_unknown_group_is_a_clear_error(workspace):
    result = workspace.run("ablate", "--data", str(workspace.data), "--groups", "genome", expect=2)
    assert "genome" in result.output and "Traceback" not in result.output
