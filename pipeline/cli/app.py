"""The `relapse` Typer application; each command lives in its own module beside this one."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

app = typer.Typer(
    name="relapse",
    help="Relapse-risk pipeline: simulate, validate, build features, train, score and audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a user-facing error to stderr and return the Exit to raise."""
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code)


@app.callback()
def _root() -> None:
    """Relapse-risk pipeline: simulate, validate, build features, train, score and audit."""


def console() -> Console:
    """A console for reports; wide when output is not a terminal, so tables are not cut."""
    return Console() if sys.stdout.isatty() else Console(width=200)
