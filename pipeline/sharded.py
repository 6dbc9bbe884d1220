"""The feature tables of a large cohort, built shard by shard through a work folder.

Memory stays bounded by the shard: `shard_files.split_by_patient` streams every input table into patient
shards on disk (the partitioner scoring uses), each shard is validated on its own (a patient's
rows, in every table, share a shard, so per-patient and cross-table checks hold), the feature
spec is fitted over all shards' validated tables, the censoring curve and end of follow-up over
all patients, and
`features.build` runs on one shard at a time, its rows written as one Parquet file per shard.
`shard_files.write_in_order` then writes the output one range of patient_ids at a time (gathered from
every shard file and sorted), so no step holds more than about a shard's rows.
Problems are gathered from every shard and raised together, as in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from features import ENGINE
from features.build import landmark_table, scoring_table
from features.config import Phase
from features.landmarks import cohort_terms
from features.shards import key_ranges
from features.spec import FeatureSpec, fit_feature_spec
from pipeline import io, shard_files
from pipeline.config import Config
from pipeline.contract import validate
from pipeline.problems import ContractViolation, Validated, merge_problems


@dataclass
class ShardedFeatures:
    spec: FeatureSpec
    n_shards: int
    rows: int
    parts: list[Path]  # one Parquet file per non-empty shard, each sorted by `keys`
    bounds: list[str]  # `key_ranges` over every patient: the order the output is written in
    keys: tuple[str, ...]

    def write(self, out: Path) -> None:
        shard_files.write_in_order(self.parts, self.bounds, self.keys, out)


def validated_shards(data_dir: Path, patients_per_shard: int, work: Path, required: tuple[str, ...]) -> int:
    """Split `data_dir` into shards under `work/input`, validate each, write them to `work/valid`.

    Returns the number of shards; any problem in any shard raises `ContractViolation` (fail mode).
    """
    batches = shard_files.split_by_patient(data_dir, patients_per_shard, work / "input")
    problems = []
    for shard in range(batches.n_batches):
        checked = validate(batches.batch(shard), required=required)
        problems += checked.problems
        if not problems:
            shard_files.write_shard_tables(io.drop_row_index(checked.tables), work / "valid", shard)
    merged = Validated({}, merge_problems(problems))
    if merged.problems:
        raise ContractViolation(merged.problems)
    return batches.n_batches


def build_sharded(
    data_dir: Path, config: Config, work: Path, as_of: date | None = None, spec: FeatureSpec | None = None
) -> ShardedFeatures:
    """The landmark table (or, with `as_of`, the scoring table) of `data_dir`, shard by shard.

    `spec` defaults to one fitted on every shard's tables together, as the unsharded build fits
    it on the whole cohort.
    """
    required = ("patients",) if as_of is not None else ("patients", "outcomes")
    shards = validated_shards(data_dir, config.shards.patients_per_shard, work, required)
    everything = shard_files.scan_shard_tables(work / "valid")
    spec = spec or fit_feature_spec(everything, config.features)
    cohort = cohort_terms(everything["patients"], everything["outcomes"]) if as_of is None else None
    parts, rows = [], 0
    for shard in range(shards):
        tables = shard_files.read_shard_tables(work / "valid", shard)
        if tables["patients"].height == 0:
            continue
        frame = _build(tables, config.phases, config, spec, as_of, cohort).collect(engine=ENGINE)
        parts.append(shard_files.write_shard_output(frame, work / "features", shard, shards))
        rows += frame.height
    keys = ("patient_id",) if as_of is not None else ("patient_id", "day")
    patients = everything["patients"].select("patient_id").collect().to_series()
    return ShardedFeatures(spec, shards, rows, parts, key_ranges(patients, shards), keys)


def _build(tables, phases: list[Phase], config: Config, spec: FeatureSpec, as_of, cohort) -> pl.LazyFrame:
    if as_of is None:
        return landmark_table(tables, phases, config.landmarks, config.features, spec, cohort)
    return scoring_table(tables, phases, config.features, spec, as_of)
