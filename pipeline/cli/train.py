"""`relapse train`: fit the per-phase models on a data folder and register a new version."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pipeline.cli.app import app, config_or_fail, console, fail, interval, metrics_title, result, warn
from pipeline.problems import ContractViolation


@app.command()
def train(
    data: Path = typer.Option(..., "--data", help="Folder with the contract tables (patients and outcomes required)."),
    config: Path | None = typer.Option(None, "--config", help="YAML file overriding configs/default.yaml."),
    run_name: str | None = typer.Option(
        None, "--run-name", help="MLflow run name (default: the data folder's name and the UTC time)."
    ),
) -> None:
    """Train one calibrated XGBoost model per phase, log the run to MLflow, register the model."""
    from pipeline.train import train as run_training

    cfg = config_or_fail(config)
    out = console()
    try:
        with TrainingProgress(out, 1, cfg.model.n_folds + 1) as shown:  # all phases are fitted together
            summary = run_training(data, cfg, progress=shown.step, on_fold=shown.fold, run_name=run_name)
    except (ContractViolation, ValueError) as exc:
        raise fail(str(exc)) from None
    for warning in summary.warnings:  # shown even with --quiet
        warn(warning)
    _print_phases(out, summary.counts)
    _print_metrics(out, summary.metrics)
    if summary.synthetic:
        out.print("[bold]Trained on SIMULATED data: for demonstration and testing only.[/]")
    synthetic = " (SIMULATED data)" if summary.synthetic else ""
    result(
        f"run {summary.run_id}; registered {cfg.mlflow.registered_model} version {summary.version} "
        f"(alias challenger){synthetic}"
    )


class TrainingProgress:
    """Training's steps as they happen. On a terminal: a Rich bar over phase × fold fits with the
    step or fit in progress and the elapsed time. Piped: one line per step (and per finished fit)
    with the elapsed time."""

    def __init__(self, out: Console, n_phases: int, fits_per_phase: int) -> None:
        self.out, self.total, self.per_phase = out, n_phases * fits_per_phase, fits_per_phase
        self.live = out.is_terminal and not out.quiet
        self.bar = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=out, transient=True, disable=not self.live,
        )
        self.task = self.bar.add_task("starting", total=self.total)
        self.phases_done: list[str] = []
        self.start = time.monotonic()

    def __enter__(self) -> TrainingProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()

    def step(self, name: str) -> None:
        self.bar.update(self.task, description=name)
        self._line(name)

    def fold(self, phase: str, done: int, total: int) -> None:
        if phase not in self.phases_done:
            self.phases_done.append(phase)
        folds = total - 1
        finished = (len(self.phases_done) - 1) * self.per_phase + (self.per_phase if done == total else done)
        running = f"fold {done + 1} of {folds}" if done < folds else "final fit" if done < total else "done"
        self.bar.update(self.task, completed=finished, description=f"phase '{phase}': {running}")
        self._line(f"phase '{phase}': " + ("final fit done" if done == total else f"fold {done} of {folds} done"))

    def _line(self, text: str) -> None:
        if not self.live:
            self.out.print(f"[{time.monotonic() - self.start:7.1f}s] {text}", highlight=False)


STATUS_TEXT = {
    "phase_model": "shared + own trees",
    "shared": "shared booster only (borrows strength)",
    "constant": "constant event rate",
    "no_data": "no at-risk rows: not scored",
}


def _print_phases(out, counts) -> None:
    from rich.table import Table

    table = Table(title="Phases")
    for header in ("phase", "status", "rows", "patients", "event patients", "predictors", "EPV", "own trees"):
        table.add_column(header)
    for r in counts.iter_rows(named=True):
        table.add_row(r["phase"], STATUS_TEXT.get(r["status"], r["status"]), str(r["rows"]), str(r["patients"]),
                      str(r["event_patients"]), str(r["predictors"]), f"{r['epv']:.2f}", str(r["added_trees"]))
    out.print(table)


def _print_metrics(out, metrics) -> None:
    from rich.table import Table

    table = Table(title=metrics_title("Out-of-fold performance", metrics))
    for header in ("phase", "model", "AUROC", "Brier", "cal. slope"):
        table.add_column(header)
    wide = {}
    for r in metrics.iter_rows(named=True):
        wide.setdefault((r["phase"], r["model"]), {})[r["metric"]] = r
    for (phase, model), m in wide.items():
        cells = [interval(m.get(k)) for k in ("auroc", "brier", "calibration_slope")]
        in_sample = any(r.get("in_sample") for r in m.values())
        table.add_row(phase, f"{model} (in-sample)" if in_sample else model, *cells)
    out.print(table)
