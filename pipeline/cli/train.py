"""`relapse train`: fit the per-phase models on a data folder and register a new version."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli.app import app, console, fail
from pipeline.config import ConfigError, load_config
from pipeline.contract import ContractViolation


@app.command()
def train(
    data: Path = typer.Option(..., "--data", help="Folder with the contract tables (patients and outcomes required)."),
    config: Path | None = typer.Option(None, "--config", help="YAML file overriding configs/default.yaml."),
) -> None:
    """Train one calibrated XGBoost model per phase, log the run to MLflow, register the model."""
    from pipeline.train import train as run_training

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    out = console()
    try:
        with out.status("training") as status:
            summary = run_training(data, cfg, progress=lambda msg: status.update(msg))
    except (ContractViolation, ValueError) as exc:
        raise fail(str(exc)) from None
    for warning in summary.warnings:
        out.print(f"[yellow]warning:[/] {warning}")
    _print_metrics(out, summary.metrics)
    if summary.synthetic:
        out.print("[bold]Trained on SIMULATED data: for demonstration and testing only.[/]")
    out.print(
        f"run {summary.run_id}; registered {cfg.mlflow.registered_model} version {summary.version} (alias challenger)"
    )


def _print_metrics(out, metrics) -> None:
    from rich.table import Table

    table = Table(title="Out-of-fold performance (95% CI, patient bootstrap)")
    for header in ("phase", "model", "AUROC", "Brier", "cal. slope"):
        table.add_column(header)
    wide = {}
    for r in metrics.iter_rows(named=True):
        wide.setdefault((r["phase"], r["model"]), {})[r["metric"]] = r
    for (phase, model), m in wide.items():
        cells = [_ci(m.get(k)) for k in ("auroc", "brier", "calibration_slope")]
        table.add_row(phase, model, *cells)
    out.print(table)


def _ci(row) -> str:
    if row is None or row["estimate"] is None:
        return "-"
    if row["lo"] is None:
        return f"{row['estimate']:.3f}"
    return f"{row['estimate']:.3f} ({row['lo']:.3f}-{row['hi']:.3f})"
