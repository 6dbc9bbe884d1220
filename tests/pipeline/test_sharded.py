"""The on-disk sharded build: the same tables as one pass, and every shard's problems at once."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features import ENGINE
from features.build import landmark_table, scoring_table
from features.shards import SHARD, shard_keys
from features.spec import fit_feature_spec
from pipeline.config import ShardsConfig, load_config
from pipeline.io import write_tables
from pipeline.problems import ContractViolation
from pipeline.sharded import build_sharded
from tests.features.conftest import cohort, day


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data"
    write_tables(cohort(), folder, fmt="csv")
    return folder


def _config(patients_per_shard: int):
    return load_config().model_copy(update={"shards": ShardsConfig(patients_per_shard=patients_per_shard)})


def test_landmark_table_through_shards_on_disk_equals_one_pass(data, tmp_path):
    config, tables = _config(1), cohort()
    spec = fit_feature_spec(tables, config.features)
    built = build_sharded(data, config, tmp_path / "work")
    assert built.n_shards == 4 and built.spec == spec
    whole = landmark_table(tables, config.phases, config.landmarks, config.features, spec).collect(engine=ENGINE)
    assert built.rows == whole.height
    built.write(tmp_path / "out.parquet")
    assert_frame_equal(pl.read_parquet(tmp_path / "out.parquet"), whole)


def test_scoring_table_through_shards_on_disk_equals_one_pass(data, tmp_path):
    config, tables = _config(2), cohort()
    spec = fit_feature_spec(tables, config.features)
    built = build_sharded(data, config, tmp_path / "work", as_of=day(40))
    whole = scoring_table(tables, config.phases, config.features, spec, day(40)).collect(engine=ENGINE)
    built.write(tmp_path / "out.parquet")
    assert_frame_equal(pl.read_parquet(tmp_path / "out.parquet"), whole)


def test_problems_of_every_shard_are_reported_together(data, tmp_path):
    keys = shard_keys(pl.Series(["p1", "p2", "p3", "p4"]), 4)
    bdnf = pl.read_csv(data / "bdnf.csv")
    assert keys.filter(pl.col("patient_id").is_in(bdnf["patient_id"].to_list()))[SHARD].n_unique() == 2
    bdnf.with_columns(pl.lit(-1.0).alias("bdnf_ng_ml")).write_csv(data / "bdnf.csv")
    with pytest.raises(ContractViolation) as caught:
        build_sharded(data, _config(1), tmp_path / "work")
    (problem,) = [p for p in caught.value.problems if p.column == "bdnf_ng_ml"]
    assert problem.rows == [1, 2, 3]


def test_training_builds_its_landmark_table_in_shards_past_the_shard_size():
    from pipeline.train import build_landmarks

    tables = cohort()
    config = _config(1)
    spec = fit_feature_spec(tables, config.features)
    whole = landmark_table(tables, config.phases, config.landmarks, config.features, spec).collect(engine=ENGINE)
    assert_frame_equal(build_landmarks(tables, spec, config), whole)
    assert_frame_equal(build_landmarks(tables, spec, _config(10)), whole)
