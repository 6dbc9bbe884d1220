"""`relapse features`: build the landmark table (training form) or the scoring table (--as-of)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console

from features.build import landmark_table, scoring_table
from features.spec import fit_feature_spec
from pipeline.cli.app import OUTPUT, app, fail, parse_date
from pipeline.config import ConfigError, load_config
from pipeline.contract import ContractViolation
from pipeline.io import SUFFIXES, drop_row_index, load_tables, write_frame

DataOption = Annotated[Path, typer.Option("--data", help="Folder with <table>.parquet or <table>.csv files.")]
OutOption = Annotated[Path, typer.Option("--out", help="Output file, .parquet or .csv.")]
AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", metavar="<YYYY-MM-DD>", help="Build the scoring table as of this date."),
]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="YAML file overriding configs/default.yaml.")]


@app.command()
def features(data: DataOption, out: OutOption, as_of: AsOfOption = None, config: ConfigOption = None) -> None:
    """Build features as of each landmark (needs outcomes), or for every patient as of --as-of."""
    if out.suffix not in SUFFIXES:
        raise fail(f"{out}: output must end in .parquet or .csv")
    when = parse_date(as_of) if as_of is not None else None
    console = Console(stderr=True, quiet=OUTPUT.quiet)
    try:
        cfg = load_config(config)
        required = ("patients",) if as_of is not None else ("patients", "outcomes")
        with console.status("Reading and validating tables…"):
            result, _ = load_tables(data, required=required)
        tables = drop_row_index(result.tables)
        with console.status("Building features…"):
            spec = fit_feature_spec(tables, cfg.features)
            if as_of is None:
                plan = landmark_table(tables, cfg.phases, cfg.landmarks, cfg.features, spec)
            else:
                plan = scoring_table(tables, cfg.phases, cfg.features, spec, when)
            frame = plan.collect()
        write_frame(frame, out)
    except (ContractViolation, ConfigError, ValueError, pl.exceptions.PolarsError) as exc:
        raise fail(str(exc)) from None
    groups = ", ".join(spec.groups_used) or "none"
    absent = f"; absent: {', '.join(spec.groups_absent)}" if spec.groups_absent else ""
    typer.echo(f"wrote {out}: {frame.height} rows, {len(spec.feature_names)} features ({groups}{absent})")
