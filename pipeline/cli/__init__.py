"""Command-line entry point `relapse`. Importing the command modules registers them on `app`."""

from __future__ import annotations

import logging
import os

from pipeline.cli import (
    audit,  # noqa: F401  (registers commands)
    features,  # noqa: F401
    promote,  # noqa: F401
    score,  # noqa: F401
    simulate,  # noqa: F401
    train,  # noqa: F401
    validate,  # noqa: F401
)
from pipeline.cli.app import app


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # libraries' info chatter stays out of the CLI's report
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    app()


__all__ = ["app", "main"]
