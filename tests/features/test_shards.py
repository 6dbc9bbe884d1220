"""Patient shards: a stable assignment, and sharded tables equal to the unsharded ones."""

from __future__ import annotations

import os
import subprocess
import sys

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features import ENGINE
from features.build import landmark_table, scoring_table
from features.shards import (
    SHARD,
    in_range,
    key_ranges,
    landmark_table_sharded,
    n_shards,
    scoring_table_sharded,
    shard_keys,
    shard_tables,
    stable_shard,
)
from features.spec import fit_feature_spec
from tests.features.conftest import cohort, day

IDS = [f"patient-{i:05d}" for i in range(2000)]


def test_every_patient_gets_one_shard_and_shards_are_balanced():
    keys = shard_keys(pl.Series(IDS + IDS[:10]), 4)
    assert keys.height == len(IDS) and keys["patient_id"].n_unique() == len(IDS)
    sizes = keys[SHARD].value_counts()["count"]
    assert keys[SHARD].n_unique() == 4 and sizes.min() > 400  # about 500 each


@pytest.mark.slow
def test_assignment_does_not_depend_on_the_process():
    code = "from features.shards import stable_shard; print([stable_shard(p, 7) for p in ('a', 'p1', 'zz-9')])"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {f"{[stable_shard(p, 7) for p in ('a', 'p1', 'zz-9')]}\n"}


def test_shard_count():
    assert (n_shards(0, 10), n_shards(10, 10), n_shards(11, 10)) == (1, 1, 2)
    with pytest.raises(ValueError):
        n_shards(5, 0)


def _spread_cohort() -> tuple[dict[str, pl.DataFrame], int]:
    """The hand-made cohort with one shard per patient; the censored patients in other shards."""
    tables = cohort()
    keys = shard_keys(tables["patients"]["patient_id"], 4)
    return tables, keys[SHARD].n_unique()


def test_sharded_landmark_table_is_the_unsharded_one(config):
    tables, used = _spread_cohort()
    assert used > 1
    spec = fit_feature_spec(tables, config.features)
    whole = landmark_table(tables, config.phases, config.landmarks, config.features, spec).collect(engine=ENGINE)
    sharded = landmark_table_sharded(tables, config.phases, config.landmarks, config.features, spec, 1)
    assert_frame_equal(sharded, whole)


def test_a_shard_alone_would_weight_its_rows_differently(config):
    """Why the cohort's censoring curve is passed in: a shard's own curve changes the weights."""
    tables, _ = _spread_cohort()
    spec = fit_feature_spec(tables, config.features)
    whole = landmark_table(tables, config.phases, config.landmarks, config.features, spec).collect(engine=ENGINE)
    keys = shard_keys(tables["patients"]["patient_id"], 4)
    alone = [
        landmark_table(shard_tables(tables, keys, k), config.phases, config.landmarks, config.features, spec)
        for k in keys[SHARD].unique()
    ]
    parts = pl.concat(frame.collect() for frame in alone).sort("patient_id", "day")
    assert not parts["ipcw_weight"].equals(whole["ipcw_weight"])


def test_sharded_scoring_table_is_the_unsharded_one(config):
    tables, _ = _spread_cohort()
    spec = fit_feature_spec(tables, config.features)
    whole = scoring_table(tables, config.phases, config.features, spec, day(40)).collect(engine=ENGINE)
    sharded = scoring_table_sharded(tables, config.phases, config.features, spec, day(40), 1)
    assert_frame_equal(sharded, whole)


def test_key_ranges_cover_every_patient_once_in_order():
    ids = pl.Series([f"p{i}" for i in (5, 1, 9, 3, 7, 2, 8)])
    bounds = key_ranges(ids, 3)
    assert bounds == sorted(bounds) and len(bounds) == 3
    frame = pl.DataFrame({"patient_id": ids})
    pieces = [frame.filter(in_range(bounds, k))["patient_id"].sort().to_list() for k in range(3)]
    assert sum(pieces, []) == sorted(ids.to_list()) and all(pieces)
    assert key_ranges(pl.Series([], dtype=pl.String), 3) == []
