"""The pipeline on a real cohort (asaur::pharmacoSmoking, via benchmarks/cohorts.py) and on a
simulated cohort whose follow-up is cut at 270 days.

The mapping and the cut are checked directly (fast); `relapse validate` and `relapse train` run
through the CLI in the slow tests, each with its own MLflow store.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest
import yaml

from benchmarks.cohorts import (
    PHARMACO_SMOKING_EXTRA,
    cut_follow_up,
    cut_tables,
    pharmaco_smoking_tables,
    phase_counts,
    write_pharmaco_smoking,
)
from pipeline import io
from pipeline.config import deep_merge
from tests.pipeline.cli.conftest import FAST_MODEL, Workspace

REPO = Path(__file__).resolve().parents[3]
SMOKING_CONFIG = REPO / "benchmarks" / "pharmacosmoking.yaml"
FOLLOW_UP_CUT_DAYS = 270
# What `relapse train` fits per phase on pharmacoSmoking under benchmarks/pharmacosmoking.yaml:
# (rows, patients, rows with an event, patients with an event)
SMOKING_PHASES = {
    "acute": (207, 113, 75, 47),
    "early": (668, 81, 113, 38),
    "consolidation": (386, 46, 31, 10),
}

if TYPE_CHECKING:
    pass


def config_file(path: Path, tracking_uri: str, base: Path | None = None, override: str = "") -> Path:
    """`base` (a YAML override, or nothing) with `override` merged over it and its own MLflow store."""
    merged = yaml.safe_load(base.read_text()) if base is not None else {}
    merged = deep_merge(merged, yaml.safe_load(override) or {})
    merged = deep_merge(merged, {"mlflow": {"tracking_uri": tracking_uri}})
    path.write_text(yaml.safe_dump(merged, sort_keys=False))
    return path


def registered(tracking_uri: str, version: str = "1"):
    import mlflow
    from mlflow import MlflowClient
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    mv = client.get_model_version("relapse-risk", version)
    return client, mv, client.get_run(mv.run_id)


# --- the mapping and the cut (fast) ---------------------------------------------------------


def test_pharmaco_smoking_maps_onto_the_contract(tmp_path):
    tables = pharmaco_smoking_tables()
    patients, outcomes = tables["patients"], tables["outcomes"]
    assert patients.height == outcomes.height == 125
    assert patients["patient_id"].is_unique().all() and patients["patient_id"][0] == "PS001"
    assert set(PHARMACO_SMOKING_EXTRA) <= set(patients.columns)
    assert set(patients["sex"]) == {"female", "male"}
    assert set(patients["ethnicity"]) == {"white", "black", "hispanic", "other"}
    assert set(patients["treatment_arm"]) == {"combination", "patch_only"}
    assert patients["age_at_intake"].is_between(12, 100).all()
    assert (patients["intake_date"].dt.weekday() == 1).all()  # synthetic Monday intakes

    days = outcomes.join(patients.select("patient_id", "intake_date"), on="patient_id").select(
        (pl.col("relapse_date") - pl.col("intake_date")).dt.total_days().alias("relapse_day"),
        (pl.col("last_followup_date") - pl.col("intake_date")).dt.total_days().alias("followup_day"),
    )
    assert days["relapse_day"].is_not_null().sum() == 89
    assert (days.filter(pl.col("relapse_day").is_null())["followup_day"] == 182).all()
    relapsed = days.filter(pl.col("relapse_day").is_not_null())
    assert (relapsed["relapse_day"] == relapsed["followup_day"]).all()
    assert (days["relapse_day"] == 0).sum() == 12

    write_pharmaco_smoking(tmp_path)
    validated, paths = io.load_tables(tmp_path, required=("patients", "outcomes"))
    assert validated.problems == [] and set(paths) == {"patients", "outcomes"}


def test_pharmaco_smoking_phases_under_the_benchmark_config(tmp_path):
    write_pharmaco_smoking(tmp_path)
    counts = phase_counts(tmp_path, SMOKING_CONFIG)
    assert counts["phase"].to_list() == list(SMOKING_PHASES)
    assert (counts["censored"] == 0).all()  # the last landmark (day 147) still sees 30 days
    for row in counts.iter_rows(named=True):
        assert (row["fit_rows"], row["patients"], row["events"], row["event_patients"]) == SMOKING_PHASES[row["phase"]]
    # the 12 day-0 relapses never enter a landmark
    assert counts.row(0, named=True)["patients"] == 125 - 12
    default = phase_counts(tmp_path)
    assert default.filter(pl.col("phase") == "maintenance")["rows"].item() == 0


def test_cut_tables_caps_follow_up_drops_late_relapses_and_late_records():
    intake = date(2024, 1, 1)
    patients = pl.DataFrame({"patient_id": ["a", "b", "c"], "intake_date": [intake] * 3})
    outcomes = pl.DataFrame(
        {
            "patient_id": ["a", "b", "c"],
            "relapse_date": [date(2024, 1, 11), date(2024, 1, 12), None],
            "last_followup_date": [date(2024, 1, 11), date(2024, 1, 12), date(2024, 1, 5)],
        }
    )
    hrv = pl.DataFrame(
        {
            "patient_id": ["a", "a", "a"],
            "recorded_at": [
                datetime(2024, 1, 11, 23, 0, tzinfo=UTC),  # day 10: kept
                datetime(2024, 1, 12, 0, 30, tzinfo=UTC),  # day 11: dropped
                datetime(2024, 1, 2, 8, 0, tzinfo=UTC),
            ],
            "rmssd_ms": [40.0, 41.0, 42.0],
        }
    )
    cut = cut_tables({"patients": patients, "outcomes": outcomes, "hrv": hrv}, days=10)
    assert cut["outcomes"]["relapse_date"].to_list() == [date(2024, 1, 11), None, None]
    assert cut["outcomes"]["last_followup_date"].to_list() == [date(2024, 1, 11), date(2024, 1, 11), date(2024, 1, 5)]
    assert cut["hrv"]["rmssd_ms"].to_list() == [40.0, 42.0]
    assert cut["patients"].equals(patients)


# --- through the CLI (slow) -----------------------------------------------------------------


@pytest.mark.slow
def test_pharmaco_smoking_validates_trains_and_registers_a_version(tmp_path):
    import mlflow
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = config_file(tmp_path / "smoking.yaml", uri, SMOKING_CONFIG, "model:\n  bootstrap_samples: 20\n")
    ws = Workspace(tmp_path, tmp_path / "pharmacosmoking", config, uri)
    write_pharmaco_smoking(ws.data)
    assert "contract OK" in ws.run("validate", "--data", str(ws.data)).output
    result = ws.run("train", "--data", str(ws.data))
    assert "registered relapse-risk version 1" in result.output
    assert "phase 'consolidation': 10 patients with an event (< min_events 20)" in result.output

    client, mv, run = registered(uri)
    assert "challenger" in mv.aliases
    assert run.data.tags["synthetic_data"] == "false"
    assert run.data.tags["feature_groups"] == "demographic"
    metrics = run.data.metrics
    for phase, (rows, patients, events, _) in SMOKING_PHASES.items():
        assert (metrics[f"n_rows_{phase}"], metrics[f"n_patients_{phase}"], metrics[f"n_events_{phase}"]) == (
            rows,
            patients,
            events,
        )
    assert "auroc_pooled" in metrics and "logistic_auroc_pooled" in metrics
    # consolidation borrows strength (shared booster, pooled calibrator); the baseline is still fitted
    assert run.data.tags["phase_status.consolidation"] == "shared" and "logistic_auroc_consolidation" in metrics
    counts = pl.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="phase_counts.csv", dst_path=str(tmp_path / "dl")
        )
    )
    assert counts["event_patients"].to_list() == [v[3] for v in SMOKING_PHASES.values()]
    consolidation = counts.filter(pl.col("phase") == "consolidation").row(0, named=True)
    assert consolidation["status"] == "shared" and consolidation["added_trees"] == 0


@pytest.mark.slow
def test_pharmaco_smoking_trains_under_the_default_phases(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    extra = "features:\n  demographic:\n    extra: [" + ", ".join(PHARMACO_SMOKING_EXTRA) + "]\n"
    config = config_file(tmp_path / "default_phases.yaml", uri, None, FAST_MODEL + extra)
    ws = Workspace(tmp_path, tmp_path / "pharmacosmoking", config, uri)
    write_pharmaco_smoking(ws.data)
    result = ws.run("train", "--data", str(ws.data))
    assert "no at-risk rows: not scored" in result.output
    _, mv, run = registered(uri)
    assert "challenger" in mv.aliases
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["phase_status.maintenance"] == "no_data" and metrics["n_rows_maintenance"] == 0
    assert tags["phase_status.acute"] in ("phase_model", "shared")
    # consolidation: landmarks 90..147 only (147 + 30 <= 182, the longest follow-up)
    assert metrics["n_rows_consolidation"] == SMOKING_PHASES["consolidation"][0]
    # 10 patients with an event: the phase keeps its own trees only where cross-validation favoured them
    assert tags["phase_status.consolidation"] in ("phase_model", "shared")
    assert metrics["auroc_pooled"] > 0.5


def score_past_follow_up(ws: Workspace, tmp_path: Path) -> tuple[pl.DataFrame, dict]:
    """Score as of a date that puts some patients in maintenance (day 365+), beyond training."""
    patients = pl.read_parquet(ws.data / "patients.parquet")
    as_of = patients["intake_date"].min() + timedelta(days=400)
    out = tmp_path / "scores.parquet"
    ws.run("score", "--data", str(ws.data), "--as-of", as_of.isoformat(), "--out", str(out),
           "--model", "models:/relapse-risk@challenger")
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    return pl.read_parquet(out), manifest


@pytest.mark.slow
def test_a_simulated_cohort_followed_270_days_trains(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = config_file(tmp_path / "fast.yaml", uri, None, FAST_MODEL)
    ws = Workspace(tmp_path, tmp_path / "cut", config, uri)
    ws.run("simulate", "--patients", "1000", "--seed", "1", "--out", str(tmp_path / "full"))
    cut_follow_up(tmp_path / "full", ws.data, FOLLOW_UP_CUT_DAYS)
    assert "contract OK" in ws.run("validate", "--data", str(ws.data)).output
    ws.run("train", "--data", str(ws.data))
    _, mv, run = registered(uri)
    assert "challenger" in mv.aliases and run.data.tags["synthetic_data"] == "true"
    assert run.data.tags["phase_status.maintenance"] == "no_data"
    assert run.data.tags["phase_status.acute"] in ("phase_model", "shared")

    scores, manifest = score_past_follow_up(ws, tmp_path)
    excluded = manifest["patients"]["excluded"]
    assert excluded["no_model_for_phase"] > 0
    assert scores.height + sum(excluded.values()) == manifest["patients"]["in_input"]
    assert "maintenance" not in scores["phase"].to_list() and scores.height > 0
    assert scores["risk_30d"].is_between(1e-4, 0.99, closed="none").all()
    # follow-up ended at day 270: a phase trained on its first days only extrapolates past them, and says so
    beyond = manifest["patients"]["beyond_trained_days"]
    assert "consolidation" in beyond, beyond
    last = beyond["consolidation"]["last_trained_day"]
    assert last <= FOLLOW_UP_CUT_DAYS - 30 < beyond["consolidation"]["latest_day"]
    consolidation = scores.filter(pl.col("phase") == "consolidation")
    assert beyond["consolidation"]["patients"] == consolidation.filter(pl.col("day") > last + 7).height
