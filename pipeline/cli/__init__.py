"""Command-line entry point `relapse`. Importing the command modules registers them on `app`."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable

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
    Every temporary file of the job, the libraries' too, lives in one scratch folder removed at
    the end, so a signal inside a library's own clean-up (MLflow's) leaves nothing behind. A
    signal after the job's last line leaves its exit status as it was (`signals.finish`).
    """
    from pipeline import signals

    done = _use_scratch_folder()  # before the handlers: the CLI cannot be interrupted without removing it
    signals.install()
    try:
        code = _outcome(command, signals)
        signals.finish(_status(code), done)
    except signals.Interrupted as exc:  # late: the command had ended, its outputs are what it said
        print(f"relapse: {signals.message(exc)}", file=sys.stderr)
        code = exc.exit_code
        signals.finish(code, done)
    except BaseException:  # an unexpected error: Python prints its traceback
        signals.finish(1, done)
        raise
    sys.exit(code)


def _use_scratch_folder() -> Callable[[], None]:
    """Make a fresh folder in the system's temporary folder this process's temporary folder
    (`tempfile`'s default, and TMPDIR for the processes it starts); returns the function that
    removes it and restores the previous setting."""
    before = tempfile.tempdir, os.environ.get("TMPDIR")
    scratch = tempfile.mkdtemp(prefix="relapse-job-")
    tempfile.tempdir = os.environ["TMPDIR"] = scratch

    def done() -> None:
        shutil.rmtree(scratch, ignore_errors=True)
        tempfile.tempdir = before[0]
        if before[1] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before[1]

    return done


def _status(code: int | str | None) -> int:
    """The process exit status `sys.exit(code)` gives (a message string exits 1)."""
    return code if isinstance(code, int) else 0 if code is None else 1


def _outcome(command, signals) -> int | str | None:
    """The exit status of `command`, its interruption or unexpected OS error reported in one line."""
    try:
        try:
            command()
        except SystemExit as exc:  # a command failed; if a signal caused it, say so and exit 130/143
            cause = signals.received()
            if exc.code in (0, None) or cause is None:
                return exc.code
            raise cause from None
        except Exception:  # an error a library made of the interruption (wrapping it in its own)
            cause = signals.received()
            if cause is None:
                raise
            raise cause from None
    except signals.Interrupted as exc:
        print(f"relapse: {signals.message(exc)}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"relapse: {exc}; nothing was published", file=sys.stderr)
        return 2
    return 0


__all__ = ["app", "main"]
