"""What a broken contract rule is and how it reaches the user: `Problem` (table, column, rows,
why), `ContractViolation` (every problem in one message), `Validated` (the rows that passed and
the problems, with the rejects a quarantine writes), `OnInvalid`, and the row lists of messages.

The checks that find problems are `pipeline.contract`'s; the readers that find unreadable files
are `pipeline.io`'s and `pipeline.csv_text`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import polars as pl

from features.tables import ROW


@dataclass
class Problem:
    """One broken rule: which table, column and rows, and why.

    `fatal` problems concern a whole table (missing column, unreadable file) and cannot be
    quarantined row by row.
    """

    table: str
    column: str
    reason: str
    rows: list[int] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)
    fatal: bool = False

    def message(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        if not self.rows:
            return f"{where}: {self.reason}"
        shown = "; ".join(
            f"row {ex.get(ROW)}: " + ", ".join(f"{k}={_show(v)}" for k, v in ex.items() if k != ROW)
            for ex in self.examples
        )
        return f"{where}: {len(self.rows)} row(s) {self.reason} (e.g. {shown})"


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


class ContractViolation(ValueError):
    """Input that breaks the data contract; the message lists every problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("input data break the contract:\n  " + "\n  ".join(p.message() for p in problems))


class OnInvalid(StrEnum):
    """What a job does with rows that break the contract."""

    fail = "fail"  # stop on any problem, writing nothing
    quarantine = "quarantine"  # set the bad rows aside in a rejects file and go on with the rest


@dataclass
class Validated:
    """Typed tables holding only rows that passed, and the problems found."""

    tables: dict[str, pl.DataFrame]
    problems: list[Problem]
    empty_rows: dict[str, list[int]] = field(default_factory=dict)  # records with no value at all, skipped

    def blocking(self, on_invalid: OnInvalid | str) -> list[Problem]:
        """The problems that stop the job: table-level ones always; any problem when failing."""
        fatal = [p for p in self.problems if p.fatal]
        if fatal:
            return fatal
        return list(self.problems) if OnInvalid(on_invalid) is OnInvalid.fail else []

    def rejects(self) -> pl.DataFrame:
        """One row per rejected input row: table, row, column and reason (first reason wins)."""
        frames = [
            pl.DataFrame(
                {"table": p.table, "row": p.rows, "column": p.column, "reason": p.reason},
                schema={"table": pl.String, "row": pl.Int64, "column": pl.String, "reason": pl.String},
            )
            for p in self.problems
            if p.rows
        ]
        if not frames:
            return pl.DataFrame(schema={"table": pl.String, "row": pl.Int64, "column": pl.String, "reason": pl.String})
        return pl.concat(frames).unique(["table", "row"], keep="first", maintain_order=True)


def merge_problems(problems: Iterable[Problem]) -> list[Problem]:
    """One problem per (table, column, reason) across patient batches, rows in file order."""
    merged: dict[tuple, Problem] = {}
    for p in problems:
        key = (p.table, p.column, p.reason, p.fatal)
        if key not in merged:
            merged[key] = Problem(p.table, p.column, p.reason, [], [], p.fatal)
        merged[key].rows += p.rows
        merged[key].examples += p.examples
    for p in merged.values():
        p.rows = sorted(p.rows)
        p.examples = sorted(p.examples, key=lambda ex: ex.get(ROW, 0))[:3]
    return list(merged.values())


def rows_text(rows: list[int], shown: int = 5, total: int | None = None) -> str:
    """ "row 7", "rows 3, 4, 5", "rows 1, 2, 3, 4, 5 and 1,204 more"; `total` counts rows beyond
    those listed (when only the first ones were kept)."""
    total = len(rows) if total is None else total
    listed = ", ".join(map(str, rows[:shown])) + (f" and {total - shown:,} more" if total > shown else "")
    return f"row{'s' if total > 1 else ''} {listed}"
