"""Command-line entry point `relapse`. Importing the command modules registers them on `app`."""

from __future__ import annotations

from pipeline.cli import features  # noqa: F401  (registers commands)
from pipeline.cli import promote  # noqa: F401
from pipeline.cli import train  # noqa: F401
from pipeline.cli import validate  # noqa: F401
from pipeline.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
