"""`relapse promote` end to end: two runs on different cohorts are never compared naively, the
same cohort is compared on the same out-of-fold rows, an evaluation cohort must be new to both
models, and --force is recorded on the version."""

from __future__ import annotations

import pytest

from tests.pipeline.cli.conftest import Workspace, write_config

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]


def _client(store):
    from mlflow import MlflowClient

    return MlflowClient(store.tracking_uri, registry_uri=store.tracking_uri)


def _latest_version(store) -> str:
    versions = _client(store).search_model_versions("name = 'relapse-risk'")
    return str(max(int(v.version) for v in versions))


def _champion(store) -> str:
    return str(_client(store).get_model_version_by_alias("relapse-risk", "champion").version)


def _make_champion(store, version: str) -> None:
    """Each test sets the champion it needs rather than relying on an earlier test's promotion."""
    if _champion(store) != version:
        store.run("promote", "--version", version, "--force")


@pytest.fixture(scope="module")
def store(workspace, tmp_path_factory) -> Workspace:
    """A registry of its own (the shared one's version numbers are other tests' business): version 1
    trained on the shared cohort and promoted to champion."""
    root = tmp_path_factory.mktemp("promote")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    ws = Workspace(root, workspace.data, write_config(root / "fast.yaml", uri), uri)
    ws.run("train", "--data", str(workspace.data))
    ws.run("promote", "--version", "1")
    return ws


@pytest.fixture(scope="module")
def other_cohort(store):
    data = store.root / "other"
    store.run("simulate", "--patients", "500", "--seed", "23", "--out", str(data))
    store.run("train", "--data", str(data))
    return data, _latest_version(store)


def test_runs_on_different_cohorts_are_not_compared_without_an_evaluation_cohort(other_cohort, store):
    _, version = other_cohort
    _make_champion(store, "1")
    result = store.run("promote", "--version", version, expect=2)
    assert "different data" in result.output and "--data" in result.output and "--force" in result.output
    assert _champion(store) == "1"


def test_an_evaluation_cohort_that_trained_either_model_is_refused(other_cohort, store):
    data, version = other_cohort
    _make_champion(store, "1")
    result = store.run("promote", "--version", version, "--data", str(data), expect=2)
    assert f"is data version {version} learned from" in result.output


def test_force_over_different_cohorts_is_recorded_as_a_tag(other_cohort, store):
    _, version = other_cohort
    _make_champion(store, "1")
    result = store.run("promote", "--version", version, "--force")
    assert "FORCED without a comparison (version" in result.output and "different data" in result.output
    assert "compared on" not in result.output
    tags = _client(store).get_model_version("relapse-risk", version).tags
    assert tags["promotion.forced"] == "true" and "different data" in tags["promotion.override"]


def test_a_retrain_on_the_same_data_is_compared_on_the_same_out_of_fold_rows(other_cohort, store):
    data, first = other_cohort
    _make_champion(store, first)
    store.run("train", "--data", str(data))
    again = _latest_version(store)
    result = store.run("promote", "--version", again)
    assert "same out-of-fold rows" in result.output
    assert "+0.0000 (95% CI +0.0000 to +0.0000)" in result.output  # deterministic retrain: no difference
    tags = _client(store).get_model_version("relapse-risk", again).tags
    assert tags["promotion.compared_with"] == first and tags["promotion.forced"] == "false"
    assert _champion(store) == again

    def tags_of(version: str) -> dict:
        return _client(store).get_model_version("relapse-risk", version).tags

    _make_champion(store, "1")  # trained on the other cohort, so promoting `first` over it is forced
    store.run("promote", "--version", first, "--force")
    assert "promotion.override" in tags_of(first)
    store.run("promote", "--version", again)
    store.run("promote", "--version", first)  # back again on the same out-of-fold rows, unforced this time
    tags = tags_of(first)
    assert tags["promotion.forced"] == "false" and "promotion.override" not in tags  # the forced one's is cleared
    assert tags["promotion.bootstrap_samples"].isdigit() and tags["promotion.min_events"].isdigit()


def test_an_evaluation_cohort_compares_both_models_per_phase(other_cohort, store):
    version = "1"  # the first cohort's model, against a champion trained on the other cohort
    _make_champion(store, other_cohort[1])
    fresh = store.root / "evaluation"
    store.run("simulate", "--patients", "400", "--seed", "31", "--out", str(fresh))
    result = store.run("promote", "--version", version, "--data", str(fresh), "--force")
    assert "challenger − champion" in result.output and "auroc" in result.output
    assert "evaluation cohort" in result.output
    tags = _client(store).get_model_version("relapse-risk", version).tags
    assert tags["promotion.basis"].startswith("evaluation cohort")
    assert tags["promotion.forced"] in ("true", "false")  # true only if the evidence refused it
    if tags["promotion.forced"] == "true":
        assert "phase '" in tags["promotion.override"]
    assert "warning" not in result.output and "promotion.missing_inputs" not in tags


def test_what_the_evaluation_cohort_lacks_is_warned_of_and_tagged(other_cohort, store):
    import shutil

    _make_champion(store, other_cohort[1])
    lacking = store.root / "evaluation-no-hrv"
    store.run("simulate", "--patients", "400", "--seed", "32", "--out", str(lacking))
    for table in ("hrv", "rr_intervals"):
        (lacking / f"{table}.parquet").unlink()
    result = store.run("promote", "--version", "1", "--data", str(lacking), "--force")
    for version in ("1", other_cohort[1]):
        assert f"warning: version {version}: feature group 'hrv' the model was trained with is missing" in result.output
    tags = _client(store).get_model_version("relapse-risk", "1").tags
    assert "version 1: feature group 'hrv'" in tags["promotion.missing_inputs"]
    shutil.rmtree(lacking)
