"""Every file read and write of the pipeline: tables in, tables and reports out, atomically."""

from __future__ import annotations

import base64
import codecs
import csv
import difflib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from features.tables import ROW, SPECS, TABLES
from pipeline import artifacts as names
from pipeline.artifacts import EvaluationArtifacts, TrainingArtifacts
from pipeline.coercion import has_values
from pipeline.contract import ContractViolation, OnInvalid, Problem, Validated, validate

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


def check_csv_text(path: Path, table: str) -> None:
    """Refuse a CSV file that is not UTF-8 text, repeats a header name, or holds a record with
    more or fewer fields than the header.

    Read correctly as they are: a UTF-8 byte-order mark (dropped), Windows line endings, and
    quoted fields holding commas or line breaks (so `_row` counts records, not lines). Refused:
    any other encoding (Latin-1, UTF-16, ...: guessing would silently change patient ids),
    duplicate header names (the reader would rename one and which value counts would be a guess),
    and a record of another width: the reader would fill a short one's last columns with nulls,
    values silently lost from a truncated export (a record without any value, a blank line or a
    line of commas, is an empty record, skipped as such).
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, header = 0, None
    fields = _FieldCounter()
    with open(path, "rb") as handle:
        for block in [*iter(lambda: handle.read(1 << 20), b""), None]:
            fields.feed(block)
            try:
                text = decoder.decode(block or b"", final=block is None)
            except UnicodeDecodeError as exc:
                utf16 = offset == 0 and block[:2] in (b"\xff\xfe", b"\xfe\xff")
                hint = " (it looks like UTF-16)" if utf16 else ""
                at = f"invalid byte near offset {offset + exc.start}"
                raise _fatal(table, f"{path.name} is not UTF-8 text{hint}: {at}; save it as UTF-8") from None
            if header is None:
                header = text.partition("\n")[0].removeprefix("\ufeff").rstrip("\r")
                if "\r" in header:
                    reason = "ends its lines with CR alone (old Mac style); save it with LF or CRLF line endings"
                    raise _fatal(table, f"{path.name} {reason}")
            offset += len(block or b"")
    names = next(csv.reader([header or ""]), [])
    other = next((d for d in (";", "\t", "|") if len(names) == 1 and d in names[0]), None)
    if other is not None:
        shown = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}[other]
        raise _fatal(table, f"{path.name} has one header field, {names[0][:60]!r}: its fields look separated by "
                            f"{shown}; save it with commas between fields")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise _fatal(table, f"{path.name} repeats header name(s) {', '.join(repeated)}; keep one of each")
    ragged = fields.ragged
    if ragged and fields.quoted:  # a quote inside a field may not open a quoted field: the csv module decides
        ragged = _ragged_records(path)[1]
    if ragged:
        raise _fatal(table, _ragged_text(path, fields.width, ragged, fields.n_ragged if not fields.quoted else None))


class _FieldCounter:
    """Counts the fields of each CSV record block by block (NumPy over the bytes: commas and line
    ends outside quotes, the quote state carried from block to block), and keeps the records whose
    width differs from the header's and that hold a value: (1-based data row, fields), the first
    `_RAGGED_SHOWN`, and how many. `quoted`: the file holds a quote character."""

    _NOT_VALUES = b', \t\r\n"'

    def __init__(self) -> None:
        self.width: int | None = None
        self.ragged: list[tuple[int, int]] = []
        self.n_ragged = self.record = 0
        self.quoted = False
        self._in_quote = False
        self._commas, self._tail = 0, b""  # the open record: its commas so far, and its bytes' values

    def feed(self, block: bytes | None) -> None:
        if block is None:  # the end of the file: a last record without a line end
            if self._commas or self._tail:
                self._close(np.array([self._commas]), [self._tail])
            return
        data = np.frombuffer(block, dtype=np.uint8)
        ends, commas = data == ord("\n"), data == ord(",")
        if self._in_quote or b'"' in block:
            self.quoted = True
            quotes = data == ord('"')
            outside = ((np.cumsum(quotes, dtype=np.uint8) + self._in_quote) & 1) == 0  # wraps at 256: parity kept
            ends &= outside
            commas &= outside
            self._in_quote = bool(data.size) and not outside[-1]
        ends = np.flatnonzero(ends)
        per_record = np.diff(np.searchsorted(np.flatnonzero(commas), ends, side="right"), prepend=0)
        if ends.size:
            per_record[0] += self._commas
            starts = np.r_[0, ends[:-1] + 1]
            self._close(per_record, _Slices(block, starts, ends, self._tail))
            self._commas, self._tail = int(commas[ends[-1] + 1:].sum()), _values(block[ends[-1] + 1:])
        else:
            self._commas += int(commas.sum())
            self._tail += _values(block)

    def _close(self, commas: np.ndarray, records) -> None:
        """Judge the records ending here, given their commas and (lazily) their values."""
        first = 0
        if self.width is None:
            self.width, first = int(commas[0]) + 1, 1
        odd = np.flatnonzero(commas[first:] + 1 != self.width) + first
        for k in odd.tolist():
            if records[k]:
                self.n_ragged += 1
                if len(self.ragged) < _RAGGED_SHOWN:
                    self.ragged.append((self.record + k - first + 1, int(commas[k]) + 1))
        self.record += commas.size - first


class _Slices:
    """The values (`_values`) of record k of a block, from its byte range, the first record
    beginning with the bytes carried from the block before."""

    def __init__(self, block: bytes, starts: np.ndarray, ends: np.ndarray, carried: bytes) -> None:
        self._block, self._starts, self._ends, self._carried = block, starts, ends, carried

    def __getitem__(self, k: int) -> bytes:
        values = _values(self._block[self._starts[k]:self._ends[k]])
        return self._carried + values if k == 0 else values


def _values(record: bytes) -> bytes:
    """The bytes of a record that are values: not separators, quotes, spaces or line ends."""
    return record.translate(None, _FieldCounter._NOT_VALUES)


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


_RAGGED_SHOWN = 5


def _ragged_records(path: Path) -> tuple[int, list[tuple[int, int]]]:
    """The header's width and every record (1-based data row, fields) of another width that holds
    a value, by the csv module (none when it cannot read the file)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            records = csv.reader(handle)
            width = len(next(records, []))
            return width, [(row, len(f)) for row, f in enumerate(records, start=1)
                           if any(v.strip() for v in f) and len(f) != width]
    except (OSError, UnicodeDecodeError, csv.Error):
        return 0, []


def _ragged_text(path: Path, width: int | None, ragged: list[tuple[int, int]], total: int | None = None) -> str:
    total = len(ragged) if total is None else total
    shown = ", ".join(f"row {row} has {n}" for row, n in ragged[:_RAGGED_SHOWN])
    more = f" and {total - _RAGGED_SHOWN} more row(s)" if total > _RAGGED_SHOWN else ""
    return f"{path.name}: the header has {width} fields but {shown}{more}"


def unreadable(path: Path, table: str, exc: Exception) -> ContractViolation:
    """The problem for a table file its reader refused: for a CSV, the records whose field count
    differs from the header's are found and named (the reader's own message names no row)."""
    if path.suffix == ".csv":
        width, ragged = _ragged_records(path)
        if ragged:
            return _fatal(table, _ragged_text(path, width, ragged))
    return _fatal(table, f"{path.name} cannot be read: {str(exc).splitlines()[0]}")


def _fatal(table: str, reason: str) -> ContractViolation:
    return ContractViolation([Problem(table, "", reason, fatal=True)])


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
    return _fatal(table, f"{path.name} has no rows{only}")


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
