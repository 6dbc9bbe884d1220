"""`relapse recalibrate`: recalibrate a registered model to a local labelled cohort."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli.app import app, config_or_fail, console, fail, result, warn
from pipeline.cli.evaluate import print_metrics
from pipeline.problems import ContractViolation


@app.command()
def recalibrate(
    model: str = typer.Option(..., "--model", help="Registered model version: models:/relapse-risk/3 or @champion."),
    data: Path = typer.Option(..., "--data", help="Folder with the local labelled cohort (patients and outcomes)."),
    config: Path | None = typer.Option(None, "--config", help="YAML file overriding configs/default.yaml."),
) -> None:
    """Per phase keep / re-estimate the intercept / intercept and slope (closed testing), then
    register the result as a new version (alias challenger) with the same boosters."""
    from pipeline.recalibrate import recalibrate as run_recalibration

    cfg = config_or_fail(config)
    out = console()
    try:
        with out.status("recalibrating") as status:
            summary = run_recalibration(data, model, cfg, progress=lambda msg: status.update(msg))
    except (ContractViolation, ValueError) as exc:
        raise fail(str(exc)) from None
    for what in summary.lacking:
        warn(f"{what}; its features are unknown for every patient, so the recalibration fits the model without it: "
             "data scored with it need a recalibration on data that have it (tag missing_inputs)")
    for phase, test in summary.tests.items():
        slope = "" if test.p_slope is None else f", slope test p = {test.p_slope:.3g}"
        out.print(
            f"{phase}: {test.chosen.method} (a = {test.chosen.a:+.3f}, b = {test.chosen.b:.3f}; "
            f"overall test p = {test.p_overall:.3g}{slope}; {test.n_events} events in {test.n_rows} rows)"
            + (f"; {test.note}" if test.note else "")
        )
    print_metrics(out, summary.before, "before, on the local cohort")
    print_metrics(out, summary.after, "after, on the same cohort (in-sample)")
    if summary.synthetic:
        out.print("[bold]Recalibrated on SIMULATED data: for demonstration and testing only.[/]")
    result(
        f"run {summary.run_id}; registered {cfg.mlflow.registered_model} version {summary.version} "
        f"(parent version {summary.parent_version}, alias challenger)"
    )
