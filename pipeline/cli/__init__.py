"""Command-line entry point `relapse`. Importing the command modules registers them on `app`."""

from __future__ import annotations

import logging
import os
import sys

from pipeline.cli import (
    ablate,  # noqa: F401  (registers commands)
    audit,  # noqa: F401
    evaluate,  # noqa: F401
    features,  # noqa: F401
    promote,  # noqa: F401
    recalibrate,  # noqa: F401
    score,  # noqa: F401
    simulate,  # noqa: F401
    train,  # noqa: F401
    validate,  # noqa: F401
)
from pipeline.cli.app import app


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # libraries' info chatter stays out of the CLI's report
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    _run_guarded(app)


def _run_guarded(command) -> None:
    """Run the app with SIGINT/SIGTERM unwinding it cleanly: one line on stderr, exit 130/143.

    An OS error no stage turned into a message (a full disk, an unwritable folder) is also one
    line and exit 2 rather than a traceback; staging folders are removed as the job unwinds.
    """
    from pipeline import signals

    signals.install()
    try:
        command()
    except signals.Interrupted as exc:
        print(f"relapse: {signals.message(exc)}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except SystemExit as exc:  # a command failed; if a signal caused it, say so and exit 130/143
        cause = signals.received()
        if exc.code in (0, None) or cause is None:
            raise
        print(f"relapse: {signals.message(cause)}", file=sys.stderr)
        sys.exit(cause.exit_code)
    except OSError as exc:
        print(f"relapse: {exc}; nothing was published", file=sys.stderr)
        sys.exit(2)


__all__ = ["app", "main"]
