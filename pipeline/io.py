"""Every file read and write of the pipeline: tables in, tables and reports out, atomically."""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import polars as pl

from features.tables import ROW, SPECS, TABLES
from pipeline import artifacts as names
from pipeline.artifacts import EvaluationArtifacts, TrainingArtifacts
from pipeline.coercion import has_values
from pipeline.contract import validate
from pipeline.csv_text import check_csv_text, fatal, unreadable
from pipeline.problems import ContractViolation, OnInvalid, Problem, Validated

SUFFIXES = (".parquet", ".csv")
# A clinic's export may hold a header-only file for a source it does not collect (no HRV devices):
# such a table has no records, like an absent one (its feature group is reported missing). Only
# the patients table must have rows.
MUST_HAVE_ROWS = ("patients",)


def find_table_file(data_dir: Path, table: str) -> Path | None:
    """The file holding `table` in `data_dir` (`<table>.parquet` or `<table>.csv`), if any."""
    found = [data_dir / f"{table}{s}" for s in SUFFIXES if (data_dir / f"{table}{s}").is_file()]
    if len(found) > 1:
        raise ContractViolation(
            [Problem(table, "", f"both {found[0].name} and {found[1].name} exist; keep one", fatal=True)]
        )
    return found[0] if found else None


def refuse_overwriting_inputs(data_dir: Path, outputs: Iterable[Path | None]) -> None:
    """Refuse an output that would land on a table file of `data_dir` (any table, either suffix:
    a new `bdnf.csv` beside `bdnf.parquet` would also break the next read), before any work."""
    folder = Path(data_dir)
    files = {(folder / f"{t}{s}").resolve() for t in TABLES for s in SUFFIXES}  # a linked table too
    names = {f"{t}{s}".casefold() for t in TABLES for s in SUFFIXES}
    for out in outputs:
        if out is None:
            continue
        out = Path(out)
        # a name in any case: `Patients.parquet` is the input's file on a case-insensitive file
        # system, and beside it on any other, where every later read refuses the folder
        same_folder = out.parent.exists() and folder.exists() and out.parent.samefile(folder)
        if out.resolve() in files or (same_folder and out.name.casefold() in names):
            raise ValueError(f"{out} is a table file of the input folder {data_dir}; write the output elsewhere")


def read_raw_table(path: Path, table: str) -> pl.DataFrame:
    """Read one table file as it is (CSV as text, checked by `check_csv_text`), adding `_row`,
    the 1-based data row."""
    if path.suffix == ".csv":
        check_csv_text(path, table)
    try:
        if path.suffix == ".csv":
            frame = pl.read_csv(path, infer_schema=False)
        else:
            frame = pl.read_parquet(path)
    except Exception as exc:  # noqa: BLE001  (any reader failure is an unreadable file)
        raise unreadable(path, table, exc) from None
    if table in MUST_HAVE_ROWS and not frame.select(has_values(frame.schema).any()).item():
        raise no_rows(path, table, frame.height)
    return with_row_numbers(frame)


def with_row_numbers[F: (pl.DataFrame, pl.LazyFrame)](frame: F) -> F:
    """`_row`, the 1-based data row, added first. An input column of that name is an export's
    own (extra columns are not read) and is left out, so it cannot stand for the row number."""
    return frame.drop(ROW, strict=False).with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))


def no_rows(path: Path, table: str, records: int) -> ContractViolation:
    """The problem for a table that must have rows and has none with a value."""
    only = f" (only {records} empty record(s))" if records else ""
    return fatal(table, f"{path.name} has no rows{only}")


def stray_files(data_dir: Path) -> list[str]:
    """A warning for each CSV or Parquet file in `data_dir` that no table is read from (`assessment.csv`,
    `hrv.csv.csv`), naming the table it most likely is: its records are left out."""
    out = []
    for p in sorted(Path(data_dir).iterdir()) if Path(data_dir).is_dir() else []:
        name = p.name.lower()
        if not p.is_file() or name in {f"{t}{s}" for t in TABLES for s in SUFFIXES}:
            continue
        if not any(f"{s}" in name for s in SUFFIXES):
            continue
        stem = name.split(".")[0]
        close = difflib.get_close_matches(stem, TABLES, n=1, cutoff=0.75)
        guess = f" (is it {close[0]}? name it {close[0]}.csv or {close[0]}.parquet)" if close else ""
        out.append(f"{p.name} in {data_dir} is not read: it is not named as a table of the contract{guess}")
    return out


def table_files(data_dir: Path) -> dict[str, Path]:
    """The file of every contract table present in `data_dir`.

    A name that is a table's but for its case (`bdnf.CSV`), or a folder with a table's file name,
    is refused rather than skipped: on a case-sensitive file system it would not be read, and the
    clinic's data would be silently left out of every score.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ContractViolation([Problem("(data)", "", f"data folder not found: {data_dir}", fatal=True)])
    names = {f"{t}{s}": t for t in TABLES for s in SUFFIXES}
    problems = []
    for p in sorted(data_dir.iterdir()):
        table = names.get(p.name.lower())
        if table is not None and not p.is_file():
            problems.append(Problem(table, "", f"{p.name} is a folder, not a table file", fatal=True))
        elif table is not None and p.name not in names:
            problems.append(Problem(table, "", f"{p.name} is not read: name the file {p.name.lower()}", fatal=True))
    paths = {}
    for table in TABLES:
        try:
            path = find_table_file(data_dir, table)
        except ContractViolation as exc:
            problems += exc.problems
            continue
        if path is not None:
            paths[table] = path
    if problems:
        raise ContractViolation(problems)
    return paths


def read_raw_tables(data_dir: Path) -> tuple[dict[str, pl.DataFrame], dict[str, Path]]:
    """Read every contract table present in `data_dir`; unreadable files are all reported."""
    paths = table_files(data_dir)
    raw, problems = {}, []
    for table, path in paths.items():
        try:
            raw[table] = read_raw_table(path, table)
        except ContractViolation as exc:
            problems += exc.problems
    if problems:
        raise ContractViolation(problems)
    return raw, paths


def load_tables(
    data_dir: Path, required: Iterable[str] = ("patients",), on_invalid: OnInvalid = OnInvalid.fail
) -> tuple[Validated, dict[str, Path]]:
    """Read and validate a data folder.

    `fail` raises `ContractViolation` on any problem; `quarantine` raises only for table-level
    problems and returns the valid rows with the problems for a rejects file.
    """
    raw, paths = read_raw_tables(data_dir)
    result = validate(raw, required)
    blocking = result.blocking(on_invalid)
    if blocking:
        raise ContractViolation(blocking)
    return result, paths


def count_patients(data_dir: Path) -> int:
    """Rows of the patients table, counted from the file without loading it (0 when unreadable:
    reading it properly then reports the problem)."""
    try:
        path = find_table_file(Path(data_dir), "patients") if Path(data_dir).is_dir() else None
        if path is None:
            return 0
        scan = pl.scan_csv(path, infer_schema=False) if path.suffix == ".csv" else pl.scan_parquet(path)
        return scan.select(pl.len()).collect().item()
    except Exception:  # noqa: BLE001  (the normal read reports why)
        return 0


SIMULATION_METADATA = "simulation.json"  # beside simulated tables: marks them as synthetic
TRUTH_RISK = Path("truth") / "landmark_risk.parquet"  # simulated truth; only evaluation reads it


def read_simulation_metadata(data_dir: Path) -> dict[str, Any] | None:
    """The simulator's metadata when `data_dir` holds a simulated cohort, else None."""
    path = Path(data_dir) / SIMULATION_METADATA
    return json.loads(path.read_text()) if path.is_file() else None


def read_truth_risk(data_dir: Path) -> pl.DataFrame | None:
    """The simulated true 30-day risk per landmark, used only to report the oracle's metrics."""
    path = Path(data_dir) / TRUTH_RISK
    return pl.read_parquet(path) if path.is_file() else None


def drop_row_index(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return {name: frame.drop(ROW) for name, frame in tables.items()}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_files(paths: dict[str, Path]) -> dict[str, str]:
    """The SHA-256 of every input file, keyed like `paths`: read once per run, reused everywhere."""
    return {name: file_sha256(path) for name, path in sorted(paths.items())}


def data_fingerprint(hashes: dict[str, str]) -> str:
    """One SHA-256 over the tables' names and file hashes: the data a model was trained on."""
    digest = hashlib.sha256()
    for name, sha in sorted(hashes.items()):
        digest.update(f"{name}:{sha}\n".encode())
    return digest.hexdigest()


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it into place.

    An interrupted or failed write leaves either the complete old file or none: never half.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_frame(frame: pl.DataFrame, path: Path) -> None:
    """Write a frame atomically, as Parquet or CSV by the file's extension."""
    path = Path(path)
    if path.suffix == ".parquet":
        atomic_write(path, lambda tmp: frame.write_parquet(tmp, statistics=False))
    elif path.suffix == ".csv":
        atomic_write(path, lambda tmp: frame.write_csv(tmp))
    else:
        raise ValueError(f"{path}: output must end in .parquet or .csv")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def read_frame(path: Path) -> pl.DataFrame:
    """Read an output frame written by `write_frame` (.parquet or .csv). From CSV the identifiers
    stay text: a patient id "00123" is not the number 123, nor a version "2" the number 2."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    if path.suffix == ".csv":
        return pl.read_csv(path, schema_overrides=dict.fromkeys(IDENTIFIERS, pl.String))
    return pl.read_parquet(path)


IDENTIFIERS = ("patient_id", "as_of", "model_name", "model_version", "run_id")


def write_json(payload: Any, path: Path) -> None:
    text = json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write(Path(path), lambda tmp: tmp.write_text(text))


def write_training_artifacts(artifacts: TrainingArtifacts, out: Path) -> None:
    """Write a training run's artifacts into `out` (created), named by `pipeline.artifacts`."""
    out.mkdir(parents=True)
    artifacts.metrics.write_csv(out / names.METRICS)
    artifacts.phase_counts.write_csv(out / names.PHASE_COUNTS)
    artifacts.oof_predictions.write_parquet(out / names.OOF_PREDICTIONS)
    write_json(artifacts.feature_registry, out / names.FEATURE_REGISTRY)
    write_json(artifacts.training_profile, out / names.TRAINING_PROFILE)
    write_json(artifacts.model_card, out / names.MODEL_CARD)
    if artifacts.shap_sample is not None:
        artifacts.shap_sample.write_parquet(out / names.SHAP_SAMPLE)
    for name, figure in artifacts.figures.items():
        figure.savefig(out / name, dpi=100, bbox_inches="tight")


def png_data_uri(path: Path) -> str:
    """A PNG file as a data URI, for self-contained HTML."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def write_figure(figure: Any, path: Path) -> None:
    """Save a matplotlib figure as PNG, atomically."""
    atomic_write(Path(path), lambda tmp: figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))


def write_evaluation_artifacts(artifacts: EvaluationArtifacts, out: Path) -> None:
    """Write an evaluation run's artifacts into `out` (created), named by `pipeline.artifacts`."""
    out.mkdir(parents=True)
    artifacts.metrics.write_csv(out / names.EVALUATION_METRICS)
    artifacts.counts.write_csv(out / names.EVALUATION_COUNTS)
    artifacts.calibration.write_csv(out / names.CALIBRATION_CURVES)
    artifacts.decision_curves.write_csv(out / names.DECISION_CURVES)
    artifacts.subgroups.write_csv(out / names.SUBGROUPS)
    write_json(artifacts.summary, out / names.EVALUATION_SUMMARY)
    for name, figure in artifacts.figures.items():
        figure.savefig(out / name, dpi=100, bbox_inches="tight")


def write_tables(tables: dict[str, pl.DataFrame], out_dir: Path, fmt: str = "parquet") -> dict[str, Path]:
    """Write contract tables as `<table>.<fmt>` into `out_dir`."""
    paths = {}
    for name, frame in tables.items():
        path = Path(out_dir) / f"{name}.{fmt}"
        write_frame(frame, path)
        paths[name] = path
    return paths


__all__ = [
    "SPECS",
    "atomic_write",
    "drop_row_index",
    "file_sha256",
    "find_table_file",
    "load_tables",
    "read_raw_tables",
    "write_frame",
    "write_json",
    "write_tables",
]
