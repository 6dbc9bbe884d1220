"""CSV files read as clinics export them: the text checks made before Polars reads a table file.

UTF-8 only (a byte-order mark dropped), Windows line endings, quoted fields holding commas or
line breaks; refused, with the file named: another encoding, CR-only line endings, one header
field holding semicolons or tabs, a repeated header name, and records whose field count differs
from the header's (counted with NumPy block by block, `_FieldCounter`).
"""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

import numpy as np

from pipeline.problems import ContractViolation, Problem


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
                raise fatal(table, f"{path.name} is not UTF-8 text{hint}: {at}; save it as UTF-8") from None
            if header is None:
                header = text.partition("\n")[0].removeprefix("\ufeff").rstrip("\r")
                if "\r" in header:
                    reason = "ends its lines with CR alone (old Mac style); save it with LF or CRLF line endings"
                    raise fatal(table, f"{path.name} {reason}")
            offset += len(block or b"")
    names = next(csv.reader([header or ""]), [])
    other = next((d for d in (";", "\t", "|") if len(names) == 1 and d in names[0]), None)
    if other is not None:
        shown = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}[other]
        raise fatal(table, f"{path.name} has one header field, {names[0][:60]!r}: its fields look separated by "
                            f"{shown}; save it with commas between fields")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise fatal(table, f"{path.name} repeats header name(s) {', '.join(repeated)}; keep one of each")
    ragged = fields.ragged
    if ragged and fields.quoted:  # a quote inside a field may not open a quoted field: the csv module decides
        ragged = _ragged_records(path)[1]
    if ragged:
        raise fatal(table, _ragged_text(path, fields.width, ragged, fields.n_ragged if not fields.quoted else None))


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
            return fatal(table, _ragged_text(path, width, ragged))
    return fatal(table, f"{path.name} cannot be read: {str(exc).splitlines()[0]}")


def fatal(table: str, reason: str) -> ContractViolation:
    return ContractViolation([Problem(table, "", reason, fatal=True)])
