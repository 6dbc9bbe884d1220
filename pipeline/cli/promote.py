"""`relapse promote`: move the `champion` alias to a registered version, on evidence."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli.app import app, config_or_fail, console, fail, result, warn
from pipeline.problems import ContractViolation


@app.command()
def promote(
    version: str = typer.Option(..., "--version", help="Registered model version to promote."),
    force: bool = typer.Option(
        False, "--force", help="Promote even when the evidence refuses it; recorded on the version as a tag."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="An evaluation cohort neither version was trained on: both score its labelled rows."
    ),
    config: Path | None = typer.Option(None, "--config", help="YAML file overriding configs/default.yaml."),
) -> None:
    """Point alias `champion` at VERSION unless, on the same labelled rows, it is worse than the
    champion beyond the paired-bootstrap interval in AUROC or calibration in any phase with
    enough event patients. Runs on different data are compared only on an evaluation cohort (--data)."""
    from pipeline import model_store
    from pipeline.promote import promote as run_promote

    cfg = config_or_fail(config)
    try:
        moved = run_promote(cfg, version, force=force, data_dir=data)
    except (ContractViolation, model_store.PromotionRefused) as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # noqa: BLE001  (registry errors: unknown version, unreachable server)
        raise fail(f"cannot promote version {version}: {exc}") from None
    for what in moved.lacking:
        warn(f"{what}; its features are unknown for every patient of the evaluation cohort, so the comparison is of "
             "the model without it (tag promotion.missing_inputs)")
    if moved.comparison is not None:
        out = console()
        for r in moved.comparison.table.iter_rows(named=True):
            judged = "" if r["judged"] else " (too few event patients to judge)"
            out.print(
                f"  {r['phase']:<14} {r['metric']:<22} challenger − champion {r['difference']:+.4f} "
                f"(95% CI {r['lo']:+.4f} to {r['hi']:+.4f}); {r['event_patients']} event patients{judged}",
                markup=False, highlight=False,
            )
    before = f" (was version {moved.previous_champion})" if moved.previous_champion else ""
    if moved.forced and moved.comparison is None:  # nothing was compared: say why, not "on evidence"
        why = moved.basis.removeprefix("not compared: ")
        result(f"{moved.name} version {moved.version} is now champion{before}; FORCED without a comparison "
               f"({why}; tag promotion.forced=true)")
        return
    forced = " FORCED despite the evidence (tag promotion.forced=true)" if moved.forced else ""
    result(f"{moved.name} version {moved.version} is now champion{before}; compared on {moved.basis}{forced}")
