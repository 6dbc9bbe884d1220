"""`relapse score` reasons a clinician can act on, and scoring that says what it could not see:
the reason policy on a simulated cohort, a missing feature group, and an empty result."""

from __future__ import annotations

import json
import re
import shutil

import polars as pl
import pytest

from features.registry import feature_info
from tests.pipeline.cli.conftest import AS_OF

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]
SLOTS = ("reason_1", "reason_2", "reason_3", "protective")
MIN_EFFECT = 0.005  # configs/default.yaml scoring.min_effect
COLUMN_NAME = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")


def shown(scores: pl.DataFrame) -> pl.DataFrame:
    """One row per shown reason: patient, slot, sentence, feature, effect."""
    parts = [
        scores.select(
            "patient_id",
            pl.lit(slot).alias("slot"),
            pl.col("protective_factor" if slot == "protective" else slot).alias("sentence"),
            pl.col(f"{slot}_feature").alias("feature"),
            pl.col(f"{slot}_effect").alias("effect"),
        )
        for slot in SLOTS
    ]
    return pl.concat(parts).drop_nulls("feature")


def test_reasons_follow_the_policy_on_a_simulated_cohort(scored, workspace):
    out, _, _ = scored
    assert pl.read_parquet(workspace.data / "patients.parquet")["ethnicity"].drop_nulls().n_unique() > 1
    reasons = shown(pl.read_parquet(out))
    assert reasons.height > 200
    features = reasons["feature"]
    assert not features.str.starts_with("ethnicity").any()
    assert not features.str.ends_with("_age_days").any() and not features.is_in(["bdnf_n_samples"]).any()
    for sentence in reasons["sentence"].unique():
        assert "is not" not in sentence and "(s)" not in sentence and not COLUMN_NAME.search(sentence), sentence
    assert (reasons["effect"].abs() >= MIN_EFFECT).all()
    concepts = reasons.with_columns(
        pl.col("feature").map_elements(lambda f: feature_info(f).concept_name, return_dtype=pl.String).alias("concept")
    )
    assert concepts.group_by("patient_id", "concept").len()["len"].max() == 1


def test_scoring_without_the_bdnf_table_warns_and_the_manifest_says_so(trained, workspace, tmp_path):
    data = tmp_path / "no_bdnf"
    shutil.copytree(workspace.data, data)
    (data / "bdnf.parquet").unlink()
    out = tmp_path / "scores.parquet"
    result = workspace.run("score", "--data", str(data), "--as-of", AS_OF, "--out", str(out))
    assert "feature group 'bdnf'" in result.output and "table bdnf absent" in result.output
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    assert manifest["missing_groups"] == {"bdnf": "table bdnf absent"}
    reasons = shown(pl.read_parquet(out))
    assert reasons.height > 0 and not reasons["feature"].str.starts_with("bdnf").any()
    assert not reasons["sentence"].str.contains("BDNF").any()


def test_misnamed_columns_renamed_instruments_and_dropped_durations_give_no_reasons(trained, workspace, tmp_path):
    data = tmp_path / "renamed"
    shutil.copytree(workspace.data, data)
    patients = pl.read_parquet(data / "patients.parquet")
    patients.rename({"housing": "Housing "}).write_parquet(data / "patients.parquet")
    tests = pl.read_parquet(data / "assessments.parquet")
    tests.with_columns(pl.col("instrument").replace({"PHQ9": "PHQ-9", "GAD7": "gad7"})).write_parquet(
        data / "assessments.parquet")
    pl.read_parquet(data / "therapy_sessions.parquet").drop("duration_min").write_parquet(
        data / "therapy_sessions.parquet")  # a therapy log without durations
    out = tmp_path / "scores.parquet"
    result = workspace.run("score", "--data", str(data), "--as-of", AS_OF, "--out", str(out))
    assert "warning: patients.housing, which the model was trained with, is not in the data (column absent)" in (
        result.output)
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    assert set(manifest["unread_inputs"]) == {"patients.housing", "assessments.instrument PHQ9",  # gad7 is GAD7
                                              "therapy_sessions.duration_min"}
    assert "warning: therapy_sessions.duration_min, which the model was trained with, is not in the data" in (
        result.output)
    assert "'PHQ-9'" in manifest["unread_inputs"]["assessments.instrument PHQ9"]
    reasons = shown(pl.read_parquet(out))
    assert reasons.height > 0
    assert not reasons["feature"].str.starts_with("housing").any()
    assert not reasons["feature"].str.starts_with("assess_phq9").any()
    assert not (reasons["feature"] == "therapy_minutes_attended").any()


def test_a_required_group_missing_exits_2_and_writes_nothing(trained, workspace, tmp_path):
    data = tmp_path / "no_bdnf"
    shutil.copytree(workspace.data, data)
    (data / "bdnf.parquet").unlink()
    out = tmp_path / "scores.parquet"
    failed = workspace.run(
        "score", "--data", str(data), "--as-of", AS_OF, "--out", str(out), "--require-groups", "bdnf,therapy", expect=2
    )
    assert "required feature group(s) missing" in failed.output and "bdnf (table bdnf absent)" in failed.output
    assert list(tmp_path.glob("scores*")) == []
    workspace.run("score", "--data", str(data), "--as-of", AS_OF, "--out", str(out), "--require-groups", "nonsense",
                  expect=2)


def test_an_as_of_date_with_nobody_at_risk_exits_3_with_the_counts(trained, workspace, tmp_path):
    out = tmp_path / "scores.parquet"
    failed = workspace.run("score", "--data", str(workspace.data), "--as-of", "2030-01-01", "--out", str(out), expect=3)
    message = " ".join(failed.output.split())
    match = re.search(r"0 of 800 patients at risk on 2030-01-01: (.*); nothing written", message)
    assert match, message
    counts = [int(n.replace(",", "")) for n in re.findall(r"([\d,]+) (?:past the last phase|already relapsed)",
                                                         match.group(1))]
    assert sum(counts) == 800
    assert list(tmp_path.glob("scores*")) == []
    workspace.run(
        "score", "--data", str(workspace.data), "--as-of", "2030-01-01", "--out", str(out), "--allow-empty"
    )
    assert pl.read_parquet(out).height == 0
