"""`relapse evaluate`: measure a registered model on a labelled cohort it was not trained on."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli.app import app, config_or_fail, console, fail, interval, metrics_title, result, warn
from pipeline.problems import ContractViolation

SHOWN = ("auroc", "brier", "calibration_intercept", "calibration_slope", "oe_ratio")


@app.command()
def evaluate(
    model: str = typer.Option(..., "--model", help="MLflow model URI (models:/relapse-risk/3, @champion) or folder."),
    data: Path = typer.Option(..., "--data", help="Folder with the labelled cohort (patients and outcomes required)."),
    as_external: bool = typer.Option(False, "--as-external", help="Label the run an external validation (default)."),
    temporal: bool = typer.Option(False, "--temporal", help="Label the run a temporal validation (later patients)."),
    config: Path | None = typer.Option(None, "--config", help="YAML file overriding configs/default.yaml."),
) -> None:
    """Score a model on new labelled data: metrics per phase and pooled with patient-bootstrap
    CIs, calibration and decision curves, subgroups; one run in `<experiment>-evaluation`."""
    from pipeline.evaluate import evaluate as run_evaluation

    if as_external and temporal:
        raise fail("--as-external and --temporal exclude each other: choose one")
    cfg = config_or_fail(config)
    out = console()
    try:
        with out.status("evaluating") as status:
            summary = run_evaluation(data, model, cfg, "temporal" if temporal else "external",
                                     progress=lambda msg: status.update(msg))
    except (ContractViolation, ValueError) as exc:  # includes an unknown model and a tampered bundle
        raise fail(str(exc)) from None
    if summary.unchecked:
        warn("this store does not hold the model's training run (a model folder from another store?), so whether "
             f"{data} is data the model learned from could not be checked: if it is, these metrics are in-sample "
             "(tag learned_from_checked=false)")
    for what in summary.lacking:
        warn(f"{what}; its features are unknown for every patient, so these metrics are those of the model without it "
             "(tag missing_inputs)")
    print_metrics(out, summary.result.metrics, f"{summary.model_name} version {summary.model_version} on {data}")
    if summary.unmeasured:
        out.print(f"not measured (no labelled landmark row in this cohort): {', '.join(summary.unmeasured)}")
    if summary.synthetic:
        out.print("[bold]Evaluated on SIMULATED data: for demonstration and testing only.[/]")
    result(f"evaluation run {summary.run_id}")


def print_metrics(out, metrics, title: str) -> None:
    """One row per phase (and pooled): the headline metrics with their 95% CIs."""
    from rich.table import Table

    table = Table(title=metrics_title(title, metrics))
    for header in ("phase", "AUROC", "Brier", "cal. intercept", "cal. slope", "O/E"):
        table.add_column(header)
    wide: dict[str, dict] = {}
    for r in metrics.iter_rows(named=True):
        wide.setdefault(r["phase"], {})[r["metric"]] = r
    for phase, m in wide.items():
        table.add_row(phase, *[interval(m.get(k)) for k in SHOWN])
    out.print(table)
