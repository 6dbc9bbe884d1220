"""`relapse features`: build the landmark table (training form) or the scoring table (--as-of)."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console

from features import ENGINE
from features.build import landmark_table, scoring_table
from features.spec import FeatureSpec, fit_feature_spec
from pipeline.cli.app import OUTPUT, app, config_or_fail, fail, parse_date
from pipeline.config import Config
from pipeline.io import SUFFIXES, count_patients, drop_row_index, load_tables, refuse_overwriting_inputs, write_frame
from pipeline.problems import ContractViolation
from pipeline.sharded import build_sharded

DataOption = Annotated[Path, typer.Option("--data", help="Folder with <table>.parquet or <table>.csv files.")]
OutOption = Annotated[Path, typer.Option("--out", help="Output file, .parquet or .csv.")]
AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", metavar="<YYYY-MM-DD>", help="Build the scoring table as of this date."),
]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="YAML file overriding configs/default.yaml.")]


@app.command()
def features(data: DataOption, out: OutOption, as_of: AsOfOption = None, config: ConfigOption = None) -> None:
    """Build features as of each landmark (needs outcomes), or for every patient as of --as-of.

    A cohort with more patients than `shards.patients_per_shard` is built shard by shard through a
    temporary work folder (`pipeline.sharded`): the same table, in bounded memory.
    """
    if out.suffix not in SUFFIXES:
        raise fail(f"{out}: output must end in .parquet or .csv")
    try:
        refuse_overwriting_inputs(data, [out])
    except ValueError as exc:
        raise fail(str(exc)) from None
    when = parse_date(as_of) if as_of is not None else None
    console = Console(stderr=True, quiet=OUTPUT.quiet)
    cfg = config_or_fail(config)
    try:
        if count_patients(data) > cfg.shards.patients_per_shard:
            with console.status("Building features shard by shard…"), tempfile.TemporaryDirectory(
                prefix="relapse-features-"
            ) as tmp:
                built = build_sharded(data, cfg, Path(tmp), when)
                built.write(out)
                spec, rows = built.spec, built.rows
        else:
            spec, rows = _in_memory(data, cfg, when, out, console)
    except (ContractViolation, ValueError, pl.exceptions.PolarsError) as exc:
        raise fail(str(exc)) from None
    groups = ", ".join(spec.groups_used) or "none"
    absent = f"; absent: {', '.join(spec.groups_absent)}" if spec.groups_absent else ""
    typer.echo(f"wrote {out}: {rows} rows, {len(spec.feature_names)} features ({groups}{absent})")


def _in_memory(data: Path, cfg: Config, when: date | None, out: Path, console: Console) -> tuple[FeatureSpec, int]:
    """One pass over the whole cohort in memory: read, validate, build, write."""
    required = ("patients",) if when is not None else ("patients", "outcomes")
    with console.status("Reading and validating tables…"):
        result, _ = load_tables(data, required=required)
    tables = drop_row_index(result.tables)
    with console.status("Building features…"):
        spec = fit_feature_spec(tables, cfg.features)
        if when is None:
            plan = landmark_table(tables, cfg.phases, cfg.landmarks, cfg.features, spec)
        else:
            plan = scoring_table(tables, cfg.phases, cfg.features, spec, when)
        frame = plan.collect(engine=ENGINE)
    write_frame(frame, out)
    return spec, frame.height
