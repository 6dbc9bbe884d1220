"""Patient shards: the landmark and scoring tables built a slice of the cohort at a time.

Every feature of a row is computed from its own patient's records, so a cohort can be split by
patient and each shard built on its own; the cohort-wide inputs are the Kaplan–Meier curve of
censoring behind the IPCW weights and the administrative end of follow-up (the longest
follow-up, past which no landmark can be labelled), estimated once from every patient
(`cohort_terms`: one row per patient, cheap) and handed to each shard. The shards' rows, put back in patient_id and
day order, are then exactly the unsharded table, and peak memory follows the shard, not the
cohort.

A patient's shard is a stable hash of the patient_id: the first 8 bytes of its BLAKE2b digest
(UTF-8), modulo the number of shards. It is the same on every machine, process and version of
Python or Polars, unlike Python's `hash()` (salted per process) and Polars' `Expr.hash` (not
promised stable across releases), so shards written by one process, or engine, can be read by
another. Records of patients absent from `patients` belong to no shard: the builders ignore
them anyway (they have no intake date).

The per-shard step is `features.build.landmark_table(shard, ..., cohort=cohort_terms(...))` or
`scoring_table(shard, ...)`: frames in, a lazy frame out, no files, so a distributed engine can
run it on shards it holds. `pipeline.shard_files.split_by_patient` writes the shards to disk for the
bounded-memory CLI path, which writes the output range of patient_ids by range
(`key_ranges`); the functions here do the same in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import date

import polars as pl

from features import ENGINE
from features.build import Tables, landmark_table, scoring_table
from features.config import FeaturesConfig, LandmarkConfig, Phase
from features.landmarks import cohort_terms
from features.spec import FeatureSpec

SHARD = "_shard"


def n_shards(n_patients: int, patients_per_shard: int) -> int:
    """How many shards hold `n_patients` at about `patients_per_shard` each (at least one)."""
    if patients_per_shard <= 0:
        raise ValueError("patients_per_shard must be positive")
    return max(1, -(-n_patients // patients_per_shard))


def stable_shard(patient_id: str, shards: int) -> int:
    """The shard of one patient_id: BLAKE2b-64 of its UTF-8 bytes, modulo `shards`."""
    digest = hashlib.blake2b(patient_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def shard_keys(patient_ids: pl.Series, shards: int) -> pl.DataFrame:
    """One row per distinct patient_id with its shard (`_shard`, UInt32)."""
    ids = patient_ids.cast(pl.String).drop_nulls().unique(maintain_order=True)
    values = [stable_shard(p, shards) for p in ids.to_list()]
    return pl.DataFrame({"patient_id": ids, SHARD: pl.Series(values, dtype=pl.UInt32)})


def shard_tables(tables: Tables, keys: pl.DataFrame, shard: int) -> dict[str, pl.LazyFrame]:
    """The rows of every table that belong to patients of `shard` (lazy; a semi-join each)."""
    members = keys.lazy().filter(pl.col(SHARD) == shard).select("patient_id")
    return {name: frame.lazy().join(members, on="patient_id", how="semi") for name, frame in tables.items()}


def _shards(tables: Tables, patients_per_shard: int) -> Iterator[dict[str, pl.LazyFrame]]:
    patients = tables["patients"].lazy().select("patient_id").collect().to_series()
    keys = shard_keys(patients, n_shards(patients.len(), patients_per_shard))
    for shard in keys[SHARD].unique().sort().to_list():
        yield shard_tables(tables, keys, shard)


def landmark_table_sharded(
    tables: Tables,
    phases: Sequence[Phase],
    landmarks: LandmarkConfig,
    features: FeaturesConfig,
    spec: FeatureSpec,
    patients_per_shard: int,
) -> pl.DataFrame:
    """`landmark_table(...).collect()`, built shard by shard: the same frame, row for row."""
    if "patients" not in tables or "outcomes" not in tables:
        raise ValueError("the patients and outcomes tables are required to build the landmark table")
    cohort = cohort_terms(tables["patients"].lazy(), tables["outcomes"].lazy())
    parts = [
        landmark_table(shard, phases, landmarks, features, spec, cohort).collect(engine=ENGINE)
        for shard in _shards(tables, patients_per_shard)
    ]
    return pl.concat(parts).sort("patient_id", "day")


def landmark_table_bounded(
    tables: Tables,
    phases: Sequence[Phase],
    landmarks: LandmarkConfig,
    features: FeaturesConfig,
    spec: FeatureSpec,
    patients_per_shard: int,
) -> pl.DataFrame:
    """`landmark_table(...).collect()`: in one pass, or shard by shard (the same frame) when the
    cohort has more than `patients_per_shard` patients, so building it never holds more than a
    shard's intermediate frames. Training, evaluation and ablation all build theirs this way."""
    if tables["patients"].height > patients_per_shard:
        return landmark_table_sharded(tables, phases, landmarks, features, spec, patients_per_shard)
    return landmark_table(tables, phases, landmarks, features, spec).collect(engine=ENGINE)


def scoring_table_sharded(
    tables: Tables,
    phases: Sequence[Phase],
    features: FeaturesConfig,
    spec: FeatureSpec,
    as_of: date,
    patients_per_shard: int,
) -> pl.DataFrame:
    """`scoring_table(...).collect()`, built shard by shard: the same frame, row for row."""
    if "patients" not in tables:
        raise ValueError("the patients table is required to build features")
    shards = _shards(tables, patients_per_shard)
    parts = [scoring_table(shard, phases, features, spec, as_of).collect(engine=ENGINE) for shard in shards]
    return pl.concat(parts).sort("patient_id")


def key_ranges(patient_ids: pl.Series, ranges: int) -> list[str]:
    """The first patient_id of each of `ranges` consecutive, about equal runs of the sorted ids.

    Shards are hash-based, so each holds patients from all over the id order; writing the whole
    table in patient order goes range by range instead (each range gathered from every shard),
    so only about one shard's worth of rows is ever in memory.
    """
    ids = patient_ids.cast(pl.String).drop_nulls().unique().sort()
    if ids.len() == 0:
        return []
    step = -(-ids.len() // max(1, ranges))
    return ids.gather(list(range(0, ids.len(), step))).to_list()


def in_range(bounds: Sequence[str], index: int) -> pl.Expr:
    """Rows whose patient_id falls in range `index` of `key_ranges` bounds."""
    inside = pl.col("patient_id") >= bounds[index]
    return inside & (pl.col("patient_id") < bounds[index + 1]) if index + 1 < len(bounds) else inside


__all__ = [
    "SHARD",
    "landmark_table_bounded",
    "landmark_table_sharded",
    "in_range",
    "key_ranges",
    "n_shards",
    "scoring_table_sharded",
    "shard_keys",
    "shard_tables",
    "stable_shard",
]

