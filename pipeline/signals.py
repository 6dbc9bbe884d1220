"""SIGINT and SIGTERM as an exception that unwinds the job, so every staging folder, lock and
temporary folder is released on the way out, and a short section that signals cannot split.

The CLI entry point installs the handlers (`install`) and turns `Interrupted` into a one-line
message and exit status 128 + signal (130 for SIGINT, 143 for SIGTERM). Library code only
raises through it: `Interrupted` derives from BaseException, so `except Exception` blocks in
this project and in MLflow let it pass.

The first signal interrupts; a second one while the job unwinds is ignored, so the clean-up
finishes. Inside `deferred()` (publishing: a handful of renames) a signal is held and raised
when the section ends, so a publication is either not begun or complete.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):  # noqa: N818  (a signal, not an error)
    """The job was stopped by a signal; `exit_code` is 128 + its number."""

    def __init__(self, signum: int):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(signal.Signals(signum).name)


@dataclass
class _State:
    depth: int = 0  # nesting of deferred() sections
    pending: int | None = None  # a signal held by deferred()
    raised: bool = False  # an Interrupted is unwinding the job
    received: int | None = None  # the first signal this process received
    published: list[str] = field(default_factory=list)  # outputs published by this process


_state = _State()


def _handler(signum: int, _frame) -> None:
    if _state.received is None:
        _state.received = signum
    if _state.raised:
        return
    if _state.depth:
        _state.pending = signum
        return
    _state.raised = True
    raise Interrupted(signum)


def _unraisable(info) -> None:
    """Re-deliver an `Interrupted` that Python had to swallow, and print nothing for it.

    A handler's exception cannot escape a finaliser (`__del__`, a weakref callback) or a C
    callback (XGBoost's ctypes log hook): Python reports it as "unraisable" and goes on. Left
    alone, the job would run to the end with the signal lost; so the signal is sent again a few
    milliseconds later, when the main thread is most likely back in ordinary code.
    """
    if isinstance(info.exc_value, Interrupted):
        _state.raised = False
        timer = threading.Timer(0.02, os.kill, (os.getpid(), info.exc_value.signum))
        timer.daemon = True
        timer.start()
        return
    sys.__unraisablehook__(info)


def install() -> None:
    """Make SIGINT and SIGTERM raise `Interrupted` in the main thread (called by the CLI only)."""
    for signum in HANDLED:
        signal.signal(signum, _handler)
    sys.unraisablehook = _unraisable


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM for the duration of the block, then act on a held one."""
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        if _state.depth == 0 and _state.pending is not None and not _state.raised:
            signum, _state.pending = _state.pending, None
            _state.raised = True
            raise Interrupted(signum)


def received() -> Interrupted | None:
    """The interruption behind a failure, when a signal arrived: a library that caught the
    exception inside a C callback (XGBoost's data iterator) fails with its own error instead."""
    return Interrupted(_state.received) if _state.received is not None else None


def record_published(outputs: list[Path | str]) -> None:
    """Note outputs published by this process (files, a registered version), for the message."""
    _state.published += [str(o) for o in outputs]


def message(exc: Interrupted) -> str:
    """The one line the CLI prints on an interruption: what the user's folders now hold."""
    if _state.published:
        shown = ", ".join(_state.published)
        return f"interrupted by {exc}: the new outputs were already published complete ({shown})"
    return f"interrupted by {exc}: nothing was published; previous outputs are untouched and staging files removed"
