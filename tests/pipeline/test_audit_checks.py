"""The audit explains the scores a clinic holds, or refuses: the checks on its inputs."""

from __future__ import annotations

import json
from types import SimpleNamespace

import polars as pl
import pytest

from pipeline import io
from pipeline.audit_checks import (
    check_evaluated_model,
    check_reproduced,
    check_same_inputs,
    check_same_model,
    check_scores_file,
    evaluated_model,
    scores_model,
    since_scoring,
)

SCORED = pl.DataFrame({"patient_id": ["a", "b", "c"], "risk_30d": [0.3225, 0.05, 0.11]})


def written(tmp_path, frame: pl.DataFrame = SCORED):
    path = tmp_path / "scores.parquet"
    frame.write_parquet(path)
    manifest = {"output": {"sha256": io.file_sha256(path)},
                "model": {"name": "relapse-risk", "version": "1", "uri": "models:/relapse-risk@champion",
                          "bundle_manifest_sha256": "0" * 64}}
    return path, manifest


def test_an_edited_scores_file_is_refused(tmp_path):
    path, manifest = written(tmp_path)
    check_scores_file(path, manifest)
    SCORED.with_columns(pl.when(pl.col("patient_id") == "a").then(0.99).otherwise("risk_30d").alias("risk_30d")
                        ).write_parquet(path)
    with pytest.raises(ValueError, match="not the one `relapse score` wrote"):
        check_scores_file(path, manifest)


def test_the_default_model_is_the_registered_version_that_wrote_the_scores_not_the_champion(tmp_path):
    path, manifest = written(tmp_path)
    assert scores_model(path, manifest) == "models:/relapse-risk/1"
    local = {"model": {"name": None, "version": None, "uri": "/models/bundle"}}
    assert scores_model(path, local) == "/models/bundle"
    with pytest.raises(ValueError, match="names no model"):
        scores_model(path, {"model": {}})


def test_another_bundle_than_the_one_that_wrote_the_scores_is_refused(tmp_path):
    path, manifest = written(tmp_path)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps({"shared.ubj": "ab" * 32}))
    model = SimpleNamespace(name="relapse-risk", resolved=SimpleNamespace(bundle_dir=bundle, version="2"))
    with pytest.raises(ValueError, match="written by relapse-risk version 1 .*is another model .*version 2"):
        check_same_model(path, manifest, model, "models:/relapse-risk@champion")
    manifest["model"]["bundle_manifest_sha256"] = io.file_sha256(bundle / "manifest.json")
    check_same_model(path, manifest, model, "models:/relapse-risk/2")  # the same bytes: accepted


def test_data_that_do_not_give_the_file_its_risks_again_are_refused(tmp_path):
    check_reproduced(tmp_path, tmp_path, SCORED, SCORED.reverse())  # the same risks, in any order
    changed = SCORED.with_columns(pl.Series("risk_30d", [0.053, 0.05, 0.11]))
    with pytest.raises(ValueError, match=r"1 of 3 patient\(s\) get another risk, band or reason, or none \(e.g. "
                                         r"a: 0.3225 in the file, 0.0530 now; "):
        check_reproduced(tmp_path / "s.parquet", tmp_path, SCORED, changed)
    with pytest.raises(ValueError, match="c: 0.1100 in the file, not scored now"):
        check_reproduced(tmp_path / "s.parquet", tmp_path, SCORED, SCORED.head(2))


def test_a_deleted_row_or_an_edited_band_or_reason_is_refused(tmp_path):
    shown = SCORED.with_columns(pl.Series("risk_band", ["high", "low", "moderate"]),
                                pl.Series("reason_1", ["Missed 3 sessions", None, "Aged 40 at intake"]))
    check_reproduced(tmp_path, tmp_path, shown, shown.reverse())
    with pytest.raises(ValueError, match=r"lacks 1 patient\(s\) that --data .* \(e.g. a\): rows were removed"):
        check_reproduced(tmp_path, tmp_path, shown.tail(2), shown)
    banded = shown.with_columns(pl.Series("risk_band", ["low", "low", "moderate"]))
    with pytest.raises(ValueError, match="a: risk_band differ"):
        check_reproduced(tmp_path, tmp_path, banded, shown)
    reasoned = shown.with_columns(pl.Series("reason_1", ["Missed 3 sessions", "Aged 40", "Aged 40 at intake"]))
    with pytest.raises(ValueError, match="b: reason_1 differ"):
        check_reproduced(tmp_path, tmp_path, reasoned, shown)


def test_a_cohort_changed_since_scoring_is_refused(tmp_path):
    manifest = {"inputs": {"patients": {"sha256": "a"}, "outcomes": {"sha256": "b"}}, "packages": {}}
    check_same_inputs(tmp_path, manifest, {"patients": "a", "outcomes": "b"})
    with pytest.raises(ValueError, match="not the cohort the scores were computed from .*changed since scoring: "
                                         "outcomes"):
        check_same_inputs(tmp_path, manifest, {"patients": "a", "outcomes": "c"})


def test_an_empty_scores_file_read_back_from_csv_is_reproduced_by_nothing_scored(tmp_path):
    empty = pl.DataFrame({"patient_id": [], "risk_30d": []}, schema={"patient_id": pl.String, "risk_30d": pl.String})
    check_reproduced(tmp_path, tmp_path, empty, SCORED.head(0))  # a header-only CSV reads its risks as text


def test_the_refusal_says_what_changed_since_scoring():
    from importlib.metadata import version

    manifest = {"inputs": {"patients": {"sha256": "a"}, "bdnf": {"sha256": "b"}},
                "packages": {"polars": version("polars"), "xgboost": "0.0.1"}}
    assert since_scoring(manifest, {"patients": "a"}) == (
        f"input tables changed since scoring: bdnf; package versions differ: xgboost 0.0.1 → {version('xgboost')}")
    manifest["packages"]["xgboost"] = version("xgboost")
    assert since_scoring(manifest, {"patients": "a", "bdnf": "b"}).startswith("the input files and package versions")


def test_the_default_model_of_an_evaluation_is_the_one_it_evaluated():
    assert evaluated_model({"model_name": "relapse-risk", "model_version": "3", "model_uri": "x"}) == \
        "models:/relapse-risk/3"
    assert evaluated_model({"model_name": "None", "model_version": "None", "model_uri": "/models/b"}) == "/models/b"


def test_an_evaluation_of_another_version_is_refused():
    reviewed = {"model_name": "relapse-risk", "model_version": "1", "training_run_id": "run-of-1"}
    check_evaluated_model("e1", {"model_name": "relapse-risk", "model_version": "1", "model_run_id": "run-of-1"},
                          reviewed)
    unregistered = {"model_name": "None", "model_version": "unregistered", "training_run_id": "run-of-folder"}
    check_evaluated_model("e2", {"model_name": "None", "model_version": "None", "model_run_id": "run-of-folder"},
                          unregistered)  # a model folder: the same run is the same model
    with pytest.raises(ValueError, match="evaluates models:/relapse-risk/2, not the audited models:/relapse-risk/1: "
                                         "give --model models:/relapse-risk/2"):
        check_evaluated_model("e3", {"model_name": "relapse-risk", "model_version": "2", "model_run_id": "run-of-2"},
                              reviewed)
    with pytest.raises(ValueError, match="evaluates /models/other, not the audited model folder: give --model "
                                         "/models/other"):
        check_evaluated_model("e4", {"model_name": "None", "model_version": "None", "model_uri": "/models/other",
                                     "model_run_id": "run-of-other"}, unregistered)
