"""`relapse score`: score a clinic's current patients as of a date."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.progress import Progress

from features.reasons import MAX_REASONS
from pipeline.cli.app import app, config_or_fail, console, fail, parse_date, result, warn
from pipeline.problems import ContractViolation, OnInvalid


@app.command()
def score(
    data: Path = typer.Option(..., "--data", help="Folder with the contract tables (patients required)."),
    as_of: str = typer.Option(..., "--as-of", help="Score date, YYYY-MM-DD: only records on or before it are used."),
    out: Path = typer.Option(..., "--out", help="Output file, .parquet or .csv (written atomically)."),
    model: str = typer.Option(
        "models:/relapse-risk@champion", "--model", help="MLflow model URI or a local model folder."
    ),
    reasons: int | None = typer.Option(
        None,
        "--reasons",
        min=0,
        max=MAX_REASONS,
        help="Risk-raising reasons per patient (default: config scoring.reasons); a protective factor is always given.",
    ),
    on_invalid: OnInvalid = typer.Option(
        OnInvalid.fail,
        "--on-invalid",
        help="fail: stop on any contract error; quarantine: set bad rows aside in FILE.rejects.parquet.",
    ),
    shap_out: Path | None = typer.Option(
        None, "--shap-out", help="Also write every SHAP value per patient (wide form)."
    ),
    require_groups: list[str] | None = typer.Option(
        None,
        "--require-groups",
        help="Refuse (exit 2, nothing written) when these feature groups are missing from the data, "
        "e.g. --require-groups bdnf,hrv (default: config scoring.require_groups; otherwise a warning).",
    ),
    allow_empty: bool = typer.Option(
        False, "--allow-empty", help="Write an empty result when nobody is at risk on the date (else exit 3)."
    ),
    config: Path | None = typer.Option(None, "--config", help="YAML file overriding configs/default.yaml."),
) -> None:
    """Write calibrated 30-day relapse risk, risk band and plain-language reasons per patient.

    Exit codes: 2 for bad input, an unknown model or a required feature group missing; 3 when
    nobody is scorable on the as-of date (counts by exclusion reason are printed).
    """
    when = parse_date(as_of)  # before the heavy imports: a bad date answers at once
    today = datetime.now(UTC).date()
    if when > today:
        warn(f"--as-of {when} is after today ({today}): the records up to then do not exist yet, so each "
             "patient is scored as if nothing were recorded from today on (a mistyped year?)")
    from features.coverage import CHECKABLE
    from pipeline.plausibility import RecordingFindings, implausible_warning
    from pipeline.score import NothingToScore
    from pipeline.score import score as run_scoring
    from pipeline.serving import coverage_notes

    required = None
    if require_groups is not None:
        required = [g.strip() for text in require_groups for g in text.split(",") if g.strip()]
        unknown = sorted(set(required) - set(CHECKABLE))
        if unknown:
            raise fail(f"--require-groups: unknown group(s) {', '.join(unknown)}; known: {', '.join(CHECKABLE)}")

    cfg = config_or_fail(config)
    out_console = console()
    try:
        with Progress(console=out_console, transient=True, disable=not out_console.is_terminal) as bar:
            task = bar.add_task("scoring patient batches", total=None)
            summary = run_scoring(
                data,
                when,
                model,
                out,
                cfg,
                n_reasons=reasons,
                on_invalid=on_invalid,
                shap_out=shap_out,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                require_groups=required,
                allow_empty=allow_empty,
            )
    except NothingToScore as exc:
        raise fail(str(exc), code=3) from None
    except (ContractViolation, ValueError) as exc:  # includes an unknown model and a tampered bundle
        raise fail(str(exc)) from None
    m = summary.manifest
    for label, found in m["implausible_values"].items():
        warn(implausible_warning(label, found["values"], found["first"]))
    for warning in RecordingFindings.from_dict(m["beat_recordings"]).warnings():
        warn(warning)
    for phase, b in m["patients"]["beyond_trained_days"].items():
        warn(f"phase '{phase}': {b['patients']:,} scored patient(s) are on days up to {b['latest_day']}, past the last "
             f"day its training rows reached ({b['last_trained_day']}): their risk is extrapolated from those days "
             "(training follow-up was shorter)")
    for what in coverage_notes(m["missing_groups"], m["unread_inputs"]):
        warn(f"{what}; its features are unknown for every patient, risks may differ from full data, and it gives no "
             "reasons")
    excluded = ", ".join(f"{k}: {v}" for k, v in m["patients"]["excluded"].items())
    out_console.print(
        f"scored {m['patients']['scored']} of {m['patients']['in_input']} patients as of {m['as_of']} "
        f"with {m['model']['name']} version {m['model']['version']}"
    )
    out_console.print(f"not scored: {excluded}; rejected patients: {m['patients']['rejected']}")
    past = m["patients"]["scored_past_last_followup"]
    if past:
        out_console.print(f"of the scored, {past} had their last follow-up before {m['as_of']}: they may have left "
                          "treatment since (the model never saw anyone after drop-out)")
    if m["synthetic"]:
        out_console.print("[bold]Model trained on SIMULATED data: for demonstration and testing only.[/]")
    synthetic = " (model trained on SIMULATED data)" if m["synthetic"] else ""
    shap = f", {summary.manifest['shap_output']['file']}" if "shap_output" in summary.manifest else ""
    result(f"wrote {summary.output}{shap} and {summary.output.name}.manifest.json{synthetic}")
    if summary.rejects is not None:
        out_console.print(f"rejected rows: {summary.rejects}")
    if summary.removed is not None:
        out_console.print(f"removed {summary.removed}: the SHAP values of the scores this run replaced")
