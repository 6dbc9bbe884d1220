"""`relapse simulate`: write a synthetic cohort (every contract table), its truth and metadata."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from features.tables import TABLES
from pipeline.cli.app import OUTPUT, app, fail
from pipeline.config import ConfigError
from pipeline.io import SUFFIXES, write_json, write_tables
from pipeline.simulator import SIMULATION_METADATA, TRUTH_DIR, load_simulation_config, simulate_cohort


class TableFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


def _clashing_files(out: Path, fmt: str) -> list[str]:
    """Contract tables already in `out` in the other format (the folder would become ambiguous)."""
    other = [s for s in SUFFIXES if s != f".{fmt}"]
    return sorted(f"{t}{s}" for t in TABLES for s in other if (out / f"{t}{s}").exists())


@app.command()
def simulate(
    patients: Annotated[int, typer.Option("--patients", min=1, help="Number of patients to simulate.")],
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed: the same seed gives identical files.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the tables, truth/ and simulation.json.")],
    fmt: Annotated[
        TableFormat, typer.Option("--format", help="File format of the contract tables.")
    ] = TableFormat.parquet,
    config: Annotated[Path | None, typer.Option("--config", help="YAML overriding configs/simulation.yaml.")] = None,
) -> None:
    """Simulate a SYNTHETIC cohort (not real patients) with every table of the data contract."""
    try:
        params = load_simulation_config(config)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    clashes = _clashing_files(out, fmt.value)
    if clashes:
        raise fail(f"{out} already holds {', '.join(clashes)}; use an empty folder or the same --format")
    console = Console(stderr=True, quiet=OUTPUT.quiet)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"simulating {patients:,} patients", total=1)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        cohort = simulate_cohort(patients, seed, params, progress=advance)
    with console.status("writing tables"):
        paths = write_tables(cohort.tables, out, fmt.value)
        write_tables(cohort.truth, out / TRUTH_DIR, "parquet")
        write_json(cohort.metadata, out / SIMULATION_METADATA)
    relapsed = cohort.tables["outcomes"]["relapse_date"].is_not_null().mean()
    typer.echo(f"Simulated {patients:,} patients (seed {seed}) into {out}: SYNTHETIC data, not real patients.")
    if OUTPUT.quiet:
        return
    for name, frame in cohort.tables.items():
        typer.echo(f"  {paths[name].name:<24} {frame.height:>12,} rows")
    typer.echo(f"  relapse observed in {relapsed:.1%} of patients; truth in {out / TRUTH_DIR}")
