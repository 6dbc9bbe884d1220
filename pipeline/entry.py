"""The `relapse` console script: a signal is answered from the first line, before the imports.

Importing the command modules (Typer, Rich, Polars and the rest) takes about half a second, and
a Ctrl-C in that time used to end in a KeyboardInterrupt traceback from inside an import. Nothing
has been read or written by then, so this handler says so in the CLI's one line and exits with
the shell's code (130 for SIGINT, 143 for SIGTERM); `pipeline.cli.main` then installs the job's
own handlers (`pipeline.signals`).
"""

from __future__ import annotations

import os
import signal


def _before_the_job(signum: int, _frame: object) -> None:
    name = signal.Signals(signum).name
    os.write(2, f"relapse: interrupted by {name}: nothing was published; the command had not started\n".encode())
    os._exit(128 + signum)


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _before_the_job)
    from pipeline.cli import main as run_the_command

    run_the_command()
