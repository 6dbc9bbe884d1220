"""`relapse ablate`: refit each phase without each feature group and report what it adds."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli.app import app, config_or_fail, console, fail, result
from pipeline.problems import ContractViolation


@app.command()
def ablate(
    data: Path = typer.Option(..., "--data", help="Folder with the contract tables (patients and outcomes required)."),
    groups: str | None = typer.Option(None, "--groups", help="Comma-separated groups to test (default: all present)."),
    config: Path | None = typer.Option(None, "--config", help="YAML file overriding configs/default.yaml."),
) -> None:
    """Per phase and feature group: ΔAUROC, ΔBrier and Δnet benefit at the band thresholds
    (without the group − full model) with paired patient-bootstrap CIs; one run in
    `<experiment>-ablation`. CPU-heavy: (1 + groups) cross-validated fits per phase."""
    from pipeline.ablation import ablate as run_ablation

    cfg = config_or_fail(config)
    wanted = [g.strip() for g in groups.split(",") if g.strip()] if groups else None
    out = console()
    try:
        with out.status("ablating feature groups") as status:
            summary = run_ablation(data, cfg, wanted, progress=lambda msg: status.update(msg))
    except (ContractViolation, ValueError) as exc:
        raise fail(str(exc)) from None
    _print(out, summary.table)
    for note in summary.notes:
        out.print(f"[yellow]note:[/] {note}")
    if summary.synthetic:
        out.print("[bold]Ablation on SIMULATED data: for demonstration and testing only.[/]")
    result(f"ablation run {summary.run_id}")


def _print(out, table) -> None:
    from rich.table import Table

    metrics = [m for m in table["metric"].unique(maintain_order=True).to_list()]
    shown = Table(title="Without the group − full model (95% paired patient-bootstrap CI)")
    for header in ("phase", "without", *[m.removeprefix("delta_") for m in metrics]):
        shown.add_column(header)
    wide: dict[tuple[str, str], dict] = {}
    for r in table.iter_rows(named=True):
        wide.setdefault((r["phase"], r["group"]), {})[r["metric"]] = r
    for (phase, group), m in wide.items():
        cells = [f"{m[k]['estimate']:+.4f} ({m[k]['lo']:+.4f}, {m[k]['hi']:+.4f})" for k in metrics]
        shown.add_row(phase, group, *cells)
    out.print(shown)
