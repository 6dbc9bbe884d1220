"""The audit explains the scores a clinic holds, or refuses: the checks on its inputs."""

from __future__ import annotations

import json
from types import SimpleNamespace

import polars as pl
import pytest

from pipeline import io
from pipeline.audit import check_evaluated_model, check_reproduced, check_same_model, check_scores_file, scores_model

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
    with pytest.raises(ValueError, match=r"1 of 3 patient\(s\) get another risk or none \(e.g. a: 0.3225 in the "
                                         r"file, 0.0530 now\)"):
        check_reproduced(tmp_path / "s.parquet", tmp_path, SCORED, changed)
    with pytest.raises(ValueError, match="c: 0.1100 in the file, not scored now"):
        check_reproduced(tmp_path / "s.parquet", tmp_path, SCORED, SCORED.head(2))


def test_an_evaluation_of_another_version_is_refused():
    reviewed = {"model_name": "relapse-risk", "model_version": "1"}
    check_evaluated_model("r1", {"model_name": "relapse-risk", "model_version": "1"}, reviewed)
    with pytest.raises(ValueError, match="evaluates relapse-risk version 2, not the audited relapse-risk version 1"):
        check_evaluated_model("r2", {"model_name": "relapse-risk", "model_version": "2"}, reviewed)
