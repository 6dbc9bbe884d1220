"""The `relapse` Typer application; each command lives in its own module beside this one."""

from __future__ import annotations

import calendar
import logging
import os
import re
import sys
from dataclasses import dataclass
from datetime import date
from importlib.metadata import version as package_version
from pathlib import Path

import typer
from rich.console import Console

from pipeline.config import Config, ConfigError, load_config

app = typer.Typer(
    name="relapse",
    help="Relapse-risk pipeline: simulate, validate, build features, train, score and audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help pages: options with their value names, flags without a type
)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a user-facing error to stderr and return the Exit to raise."""
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def metrics_title(title: str, metrics) -> str:
    """The table title, naming the 95% patient-bootstrap CIs only when some metric has one
    (`model.bootstrap_samples: 0` gives estimates alone)."""
    has_ci = any(r["lo"] is not None and r["lo"] == r["lo"] for r in metrics.iter_rows(named=True))
    return f"{title} (95% CI, patient bootstrap)" if has_ci else f"{title} (estimates only: no bootstrap intervals)"


def interval(row) -> str:
    """A metric row as `estimate (lo-hi)`, or `(lo to hi)` when a bound is negative (-0.30--0.02
    would be ambiguous); `-` where it is undefined (null or NaN).

    >>> interval({"estimate": 0.8512, "lo": 0.83, "hi": 0.87}), interval({"estimate": float("nan"), "lo": None})
    ('0.851 (0.830-0.870)', '-')
    >>> interval({"estimate": -0.175, "lo": -0.299, "hi": 0.021})
    '-0.175 (-0.299 to 0.021)'
    """
    if row is None or row["estimate"] is None or row["estimate"] != row["estimate"]:
        return "-"
    if row["lo"] is None or row["lo"] != row["lo"]:
        return f"{row['estimate']:.3f}"
    between = " to " if min(row["lo"], row["hi"]) < 0 else "-"
    return f"{row['estimate']:.3f} ({row['lo']:.3f}{between}{row['hi']:.3f})"


def config_or_fail(path: Path | None) -> Config:
    """The merged, validated config, or exit 2 naming the key and the file that set it."""
    try:
        return load_config(path)
    except ConfigError as exc:
        raise fail(str(exc)) from None


@dataclass
class Output:
    """How much the CLI says, set by the root options before any command runs."""

    verbose: bool = False  # MLflow's own INFO logging shown
    quiet: bool = False  # no progress, tables or notes: errors and each command's result line only


OUTPUT = Output()


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"relapse {package_version('relapse-risk')}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", help="Show MLflow's own INFO logging."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress, tables or notes: errors and result lines only."),
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Relapse-risk pipeline: simulate, validate, build features, train, score and audit."""
    OUTPUT.verbose, OUTPUT.quiet = verbose, quiet
    level = "INFO" if verbose else "WARNING"
    os.environ["MLFLOW_LOGGING_LEVEL"] = level  # read by MLflow when it is imported
    logging.getLogger("mlflow").setLevel(level)  # and for when it already is
    logging.getLogger("alembic").setLevel(level)


def parse_date(text: str, option: str = "--as-of") -> date:
    """A YYYY-MM-DD date, or a `typer.BadParameter` saying what is wrong with it (exit 2).

    >>> parse_date("2024-02-29")
    datetime.date(2024, 2, 29)
    """
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text.strip())
    if match is None:
        raise typer.BadParameter(f"'{text}' is not a date in YYYY-MM-DD form (e.g. 2025-02-28)", param_hint=option)
    year, month, day = (int(g) for g in match.groups())
    if not 1 <= month <= 12:
        raise typer.BadParameter(f"'{text}': no such month {month:02d} (months are 01-12)", param_hint=option)
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        raise typer.BadParameter(
            f"'{text}': no such day ({calendar.month_name[month]} {year} has {last} days)", param_hint=option
        )
    return date(year, month, day)


def console() -> Console:
    """A console for reports (silent with --quiet); wide when output is not a terminal, so tables are not cut."""
    return Console(quiet=OUTPUT.quiet) if sys.stdout.isatty() else Console(width=200, quiet=OUTPUT.quiet)


def warn(message: str) -> None:
    """A warning on stderr, `warning: ` first; shown even with --quiet (it may change a decision)."""
    typer.secho(f"warning: {message}", err=True, fg=typer.colors.YELLOW)


def result(message: str) -> None:
    """A command's result line: printed even with --quiet, for scripts."""
    typer.echo(message)
