"""Evaluation's landmark table: shard by shard above `shards.patients_per_shard`, the same frame."""

from __future__ import annotations

from types import SimpleNamespace

import polars as pl
from polars.testing import assert_frame_equal

from features import ENGINE
from features.build import landmark_table
from features.spec import fit_feature_spec
from pipeline.config import load_config
from pipeline.evaluate import model_landmarks
from tests.features.conftest import cohort


def _model(tables: dict[str, pl.DataFrame]) -> SimpleNamespace:
    """The parts of a loaded model `model_landmarks` reads: phases, landmarks, features, spec."""
    config = load_config()
    return SimpleNamespace(phases=config.phases, landmarks=config.landmarks, features=config.features,
                           spec=fit_feature_spec(tables, config.features))


def test_the_sharded_evaluation_table_is_the_one_pass_table():
    tables = cohort()
    model = _model(tables)
    whole = landmark_table(tables, model.phases, model.landmarks, model.features, model.spec).collect(engine=ENGINE)
    sharded = model_landmarks(model, tables, 1)  # four patients, one per shard: built in shards
    assert_frame_equal(sharded, whole)
    assert whole.height > 0 and whole["censored"].any()  # weights that depend on other patients' censoring


def test_the_cohort_is_built_in_shards_only_above_the_shard_size(monkeypatch):
    import features.shards as shards

    tables = cohort()
    model = SimpleNamespace(phases=[], landmarks=None, features=None, spec=None)
    monkeypatch.setattr(shards, "landmark_table_sharded", lambda *args: ("sharded", args[-1]))
    monkeypatch.setattr(shards, "landmark_table", lambda *args: SimpleNamespace(collect=lambda **_: "one pass"))
    n = tables["patients"].height
    assert model_landmarks(model, tables, n) == "one pass"
    assert model_landmarks(model, tables, n - 1) == ("sharded", n - 1)
