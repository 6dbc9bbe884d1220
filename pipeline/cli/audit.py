"""`relapse audit`: write the offline audit report and model card."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli.app import app, config_or_fail, console, fail
from pipeline.cli.app import result as result_line
from pipeline.problems import ContractViolation


@app.command()
def audit(
    out: Path = typer.Option(
        ..., "--out", help="Report file (.html), self-contained and readable offline; report.json is written beside it."
    ),
    model: str | None = typer.Option(
        None, "--model", metavar="<uri>",
        help="MLflow model URI; default: the model that wrote --scores, else the one --evaluation evaluated, "
        "else the champion.",
    ),
    scores: Path | None = typer.Option(None, "--scores", help="A scores file from `relapse score` (needs --data)."),
    data: Path | None = typer.Option(None, "--data", help="The scored cohort's data folder."),
    patient: list[str] = typer.Option(
        [], "--patient", metavar="<id>", help="Patient to give a page (repeatable); default: the ten highest risks."
    ),
    include_ids: bool = typer.Option(
        False, "--include-ids", help="Show patient identifiers in clear instead of keyed hashes."
    ),
    evaluation: str | None = typer.Option(
        None, "--evaluation", help="Run id of a `relapse evaluate` run: adds an external-validation section."
    ),
    config: Path | None = typer.Option(None, "--config", help="YAML file overriding configs/default.yaml."),
) -> None:
    """Model card, TRIPOD+AI, performance, subgroups, explanations; with scores, drift and patient pages."""
    import polars as pl

    from pipeline.audit import audit as run_audit
    from pipeline.audit import check_inputs

    cfg = config_or_fail(config)
    try:
        check_inputs(out, scores, data, list(patient))
        with console().status("writing the audit report"):
            result = run_audit(
                cfg, out, model, scores, data, list(patient) or None, include_ids, evaluation_run=evaluation
            )
    except (ContractViolation, ValueError) as exc:  # includes an unknown model
        raise fail(str(exc)) from None
    except (OSError, pl.exceptions.PolarsError) as exc:  # an unreadable scores file or data folder
        raise fail(f"cannot read the audit's inputs: {exc}") from None
    note = " (built on SIMULATED data)" if result.synthetic else ""
    r = result.reviewed
    scoring = f", scoring run {r['scoring_run_id']}" if "scoring_run_id" in r else ""
    result_line(
        f"wrote audit report {result.path}{note} and its numbers {result.json_path}; logged to audit run "
        f"{result.logged_to_run} (reviewed {r['model_name']} version {r['model_version']}: "
        f"training run {r['training_run_id']}{scoring})"
    )
