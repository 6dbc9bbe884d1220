"""`relapse validate`: check a data folder against the contract and summarise it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from pipeline.cli.app import app, console, fail, warn
from pipeline.cli.app import result as result_line
from pipeline.config import ConfigError, load_config
from pipeline.contract import summarise
from pipeline.io import load_tables, stray_files
from pipeline.plausibility import input_warnings, rows_text
from pipeline.problems import ContractViolation


@app.command()
def validate(
    data: Path = typer.Option(..., "--data", help="Folder with <table>.parquet or <table>.csv files."),
    config: Path | None = typer.Option(
        None, "--config", help="YAML file overriding configs/default.yaml (checked too; the contract is fixed)."
    ),
) -> None:
    """Check every table against the data contract; print a summary or the errors (exit 2)."""
    try:
        load_config(config)
        result, paths = load_tables(data, required=("patients",))
    except (ContractViolation, ConfigError) as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"{data}: contract OK")
    for header in ("table", "file", "rows", "patients", "dates", "missing values"):
        table.add_column(header)
    for row in summarise(result.tables):
        dates = f"{row['first_date']} .. {row['last_date']}" if row["first_date"] else "-"
        missing = ", ".join(f"{c}: {n}" for c, n in row["missing"].items()) or "none"
        table.add_row(row["table"], paths[row["table"]].name, str(row["rows"]), str(row["patients"]), dates, missing)
    console().print(table)
    for name, rows in result.empty_rows.items():
        console().print(f"{name}: skipped {len(rows)} empty record(s), with no value in any column ({rows_text(rows)})")
    for warning in stray_files(data) + input_warnings(result.tables):
        warn(warning)
    result_line(f"{data}: contract OK ({len(paths)} table{'' if len(paths) == 1 else 's'})")
