"""Patient shards on disk: input tables split by patient, per-shard tables and outputs, and the
ordered write that gathers shard outputs into one file, one patient_id range at a time.

Every function here reads or writes files; the pure per-shard work is `features.shards` and the
stages that call it (`pipeline.sharded`, `pipeline.score`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import polars as pl
import pyarrow.parquet as pq

from features.shards import SHARD, in_range, key_ranges, n_shards, shard_keys
from pipeline.coercion import has_values
from pipeline.csv_text import check_csv_text, unreadable
from pipeline.io import MUST_HAVE_ROWS, SUFFIXES, atomic_write, no_rows, table_files, with_row_numbers
from pipeline.problems import ContractViolation, Problem

T = TypeVar("T")


@dataclass
class PatientBatches:
    """Input tables split into patient batches on disk, so scoring memory stays bounded.

    Every row of a patient, in every table, lands in the same batch (the stable hash of
    `features.shards`), so per-patient and cross-table checks hold within a batch. Rows whose
    patient_id is not in `patients` (or is missing) go to batch 0, where validation reports them.
    """

    folder: Path
    n_batches: int
    paths: dict[str, Path]
    row_counts: dict[str, int]
    schemas: dict[str, pl.Schema]
    bounds: list[str]  # `key_ranges` of the patients' ids, one range per batch: the output order

    def batch(self, index: int) -> dict[str, pl.DataFrame]:
        """Raw tables (with `_row`) of one batch; a table with no rows there is an empty frame."""
        tables = {}
        for table, schema in self.schemas.items():
            part = self.folder / table / f"{BATCH}={index}"
            files = sorted(part.glob("*.parquet")) if part.is_dir() else []
            tables[table] = pl.read_parquet(files) if files else pl.DataFrame(schema=schema)
        return tables

    def each_ahead(self, work: Callable[[dict[str, pl.DataFrame]], T]) -> Iterator[T]:
        """`work(self.batch(i))` for every batch in order, the next batch read and worked on in a
        background thread while the caller handles the current one.

        Polars and NumPy release the GIL in their kernels, so on two cores a batch's features are
        built while the one before is explained and written. At most two batches are in memory; an
        error in `work` is raised here, at its batch. When the caller stops early (an error, a
        signal), the batch in flight is finished and dropped and nothing more is started.
        """
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relapse-batch")
        try:
            pending = pool.submit(lambda: work(self.batch(0)))
            for index in range(self.n_batches):
                done = pending.result()
                if index + 1 < self.n_batches:
                    pending = pool.submit(lambda i=index + 1: work(self.batch(i)))
                yield done
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def scans(self) -> dict[str, pl.LazyFrame]:
        """Every table across all batches, lazily (for whole-input checks before scoring)."""
        return {
            table: pl.scan_parquet(self.folder / table / "**" / "*.parquet", schema=schema)
            for table, schema in self.schemas.items()
        }


BATCH = "_batch"


def split_by_patient(data_dir: Path, batch_patients: int, workdir: Path) -> PatientBatches:
    """Stream every table present into `workdir`, partitioned into patient batches."""
    paths = table_files(data_dir)
    scans, problems = {}, []
    for table, path in paths.items():
        try:
            if path.suffix == ".csv":
                check_csv_text(path, table)
            scan = pl.scan_csv(path, infer_schema=False) if path.suffix == ".csv" else pl.scan_parquet(path)
            scan.collect_schema()
            scans[table] = scan
        except ContractViolation as exc:
            problems += exc.problems
        except Exception as exc:  # noqa: BLE001  (any reader failure is an unreadable file)
            problems.append(Problem(table, "", f"{path.name} cannot be read: {exc}", fatal=True))
    if "patients" not in paths:
        problems.append(Problem("patients", "", "required table is missing", fatal=True))
    counts = {}
    for table, scan in scans.items():
        try:
            must = table in MUST_HAVE_ROWS  # parsing every field costs a pass: only where it matters
            any_value = has_values(scan.collect_schema()).any() if must else True
            counts[table], some = scan.select(pl.len(), any_value).collect().row(0)
        except Exception as exc:  # noqa: BLE001
            problems += unreadable(paths[table], table, exc).problems
            continue
        if not some:
            problems += no_rows(paths[table], table, counts[table]).problems
        elif "patient_id" not in scan.collect_schema():
            problems.append(Problem(table, "patient_id", "required column is missing", fatal=True))
    if problems:
        raise ContractViolation(problems)
    n_batches = n_shards(counts["patients"], batch_patients)
    ids = scans["patients"].select(pl.col("patient_id").cast(pl.String)).collect().to_series()
    keys = shard_keys(ids, n_batches).lazy().rename({"patient_id": _KEY, SHARD: BATCH})
    schemas = {}
    for table, scan in scans.items():
        indexed = with_row_numbers(scan)
        keyed = (
            indexed.with_columns(pl.col("patient_id").cast(pl.String).alias(_KEY))
            .join(keys, on=_KEY, how="left", maintain_order="left")
            .with_columns(pl.col(BATCH).fill_null(0))  # unknown or missing ids: batch 0, where validation names them
            .drop(_KEY)
        )
        try:
            keyed.sink_parquet(
                pl.PartitionBy(workdir / table, key=BATCH, include_key=False),
                mkdir=True,
                row_group_size=max(MIN_GROUP_ROWS, SPLIT_BUFFER_ROWS // n_batches),
                **WORK_PARQUET,
            )
        except pl.exceptions.PolarsError as exc:  # a malformed record further in than the schema read
            raise unreadable(paths[table], table, exc) from None
        schemas[table] = indexed.collect_schema()
    return PatientBatches(Path(workdir), n_batches, paths, counts, schemas, key_ranges(ids, n_batches))


_KEY = "_patient_key"
# Batch files are working copies, written once and read once by the same job, then removed: no
# compression and no statistics (each costs more CPU to write and read than the disk it saves:
# 100,000 simulated patients split in 2.0 s CPU uncompressed, 3.5 s with the default zstd).
WORK_PARQUET = {"compression": "uncompressed", "statistics": False}
# The partitioned sink holds a row group in memory for every batch at once, so the split's row
# groups shrink as batches multiply: about SPLIT_BUFFER_ROWS rows buffered in all, whatever the
# cohort's size. With the library's default row group, a 20,000,000-row beat table split into 50
# batches peaked at 888 MB against 590 MB for 5 batches; with this bound, 597 MB.
SPLIT_BUFFER_ROWS = 1 << 20
MIN_GROUP_ROWS = 4096


def write_shard_tables(tables: dict[str, pl.DataFrame], folder: Path, shard: int) -> None:
    """Write one shard's tables as `<folder>/<table>/<shard>.parquet` (every table, even empty)."""
    for name, frame in tables.items():
        (Path(folder) / name).mkdir(parents=True, exist_ok=True)
        frame.write_parquet(Path(folder) / name / f"{shard}.parquet")


def read_shard_tables(folder: Path, shard: int) -> dict[str, pl.DataFrame]:
    """The tables of one shard written by `write_shard_tables`."""
    return {table.name: pl.read_parquet(table / f"{shard}.parquet") for table in sorted(Path(folder).iterdir())}


def scan_shard_tables(folder: Path) -> dict[str, pl.LazyFrame]:
    """Every table across all shards of `folder`, as lazy scans."""
    return {table.name: pl.scan_parquet(table / "*.parquet") for table in sorted(Path(folder).iterdir())}


def write_shard_output(frame: pl.DataFrame, folder: Path, shard: int, ranges: int = 1, **parquet) -> Path:
    """One shard's rows, sorted by patient_id, as `<folder>/<shard>.parquet` in about `ranges`
    row groups: the patient_id range reads of `write_in_order` then skip all but one or two row
    groups of each shard by their statistics, so the ordered write reads every row about once."""
    path = Path(folder) / f"{shard}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    row_group = max(1, -(-frame.height // max(1, ranges)))
    frame.write_parquet(path, statistics=True, row_group_size=row_group, **parquet)
    return path


def write_in_order(parts: list[Path], bounds: list[str], keys: tuple[str, ...], out: Path) -> None:
    """Write shard files (patients disjoint) as one file sorted by `keys`, atomically.

    Range by range of patient_id (`features.shards.key_ranges` bounds): each range is read from
    every shard, sorted and appended, so memory holds one range, never the whole table.
    """
    out = Path(out)
    if out.suffix not in SUFFIXES:
        raise ValueError(f"{out}: output must end in .parquet or .csv")
    scan = pl.scan_parquet(parts)
    bounds = bounds or [""]  # no patient id at all (every row rejected): one range, the empty table

    def chunks():
        for index in range(len(bounds)):
            yield scan.filter(in_range(bounds, index)).sort(*keys).collect()

    atomic_write(out, lambda tmp: _append_all(chunks(), tmp, out.suffix))


def _append_all(chunks, path: Path, suffix: str) -> None:
    if suffix == ".csv":
        with open(path, "w") as handle:
            for index, chunk in enumerate(chunks):
                chunk.write_csv(handle, include_header=index == 0)
        return
    writer = None
    try:
        for chunk in chunks:
            table = chunk.to_arrow()
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
