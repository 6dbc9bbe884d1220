"""SIGINT and SIGTERM as an exception that unwinds the job, so every staging folder, lock and
temporary folder is released on the way out, and a short section that signals cannot split.

The CLI entry point installs the handlers (`install`) and turns `Interrupted` into a one-line
message and exit status 128 + signal (130 for SIGINT, 143 for SIGTERM). Library code only
raises through it: `Interrupted` derives from BaseException, so `except Exception` blocks in
this project and in MLflow let it pass.

The first signal interrupts; a second one while the job unwinds is ignored, so the clean-up
finishes. Inside `deferred()` (publishing: a handful of renames) a signal is held and raised
when the section ends, so a publication is either not begun or complete.

Once the job has ended and the CLI has printed its last line (`finish`), a signal changes
nothing: it ends the process at once with the job's own exit status. The interpreter's
shutdown (a second or two with XGBoost, Polars and MLflow loaded) would otherwise be killed by
the default action: Python restores the default disposition of every signal that has a Python
handler before it tears the modules down, so the last exit hook sets SIGINT/SIGTERM to
"ignore", the one disposition Python's shutdown leaves in place.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HANDLED = (signal.SIGINT, signal.SIGTERM)

# Python functions that native code calls through ctypes: XGBoost's data iterator (it feeds every
# QuantileDMatrix, e.g. the one `XGBClassifier.fit` builds) and its log hook. An exception raised
# inside them cannot unwind the C++ caller, which carries on with half-set state: a signal there
# corrupted the heap (abort "munmap_chunk(): invalid pointer", or a segfault) while training went
# through the sklearn wrapper. A signal is held there instead.
# Likewise a worker process being started (`models.parallel`): interrupted while the parent
# writes the worker's pickled start-up data, the half-fed worker died printing a traceback.
NATIVE_CALLBACKS = {"_next_wrapper": "xgboost", "_reset_wrapper": "xgboost", "_log_callback": "xgboost",
                    "_launch": "multiprocessing"}
# Python functions that Polars' engine calls from Rust (`map_batches` user functions): an exception
# there unwinds through the engine, which may hand it back as an error of its own (training then
# failed with a traceback instead of exiting 143). They run while a query is being executed, i.e.
# below one of these Polars frames, so a signal there is held until the query returns.
POLARS_QUERIES = ("collect", "collect_all", "_collect_eager", "sink_parquet", "sink_csv", "sink_ipc")
# A finaliser (`__del__`, e.g. XGBoost's DMatrix freeing its handle when garbage is collected)
# cannot pass an exception on: Python reports it as unraisable and carries on. A signal there is
# held too, rather than raised and then re-delivered by `_unraisable`.
FINALISERS = ("__del__",)
REDELIVER_S = 0.02


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
    finished: int | None = None  # the job's exit status, once it has ended (see finish())
    published: list[str] = field(default_factory=list)  # outputs published by this process


_state = _State()


def _handler(signum: int, _frame) -> None:
    if _state.received is None:
        _state.received = signum
    if _state.finished is not None:
        os._exit(_state.finished)  # the job is over and its streams flushed: only the teardown is cut short
    if _state.raised:
        return
    if _state.depth:
        _state.pending = signum
        return
    if in_native_callback(_frame):
        _redeliver(signum)
        return
    _interrupt(signum)


def _interrupt(signum: int) -> None:
    """Raise `Interrupted`; from now on library log records are dropped: while the job unwinds,
    MLflow and SQLAlchemy log the exceptions the interruption causes inside them (tracebacks of a
    rolled-back SQLite commit), which would bury the one line the CLI prints."""
    _state.raised = True
    logging.disable(logging.CRITICAL)
    raise Interrupted(signum)


def in_native_callback(frame) -> bool:
    """Whether the main thread is inside a section a signal must not split: a callback of
    `NATIVE_CALLBACKS`, a finaliser (`FINALISERS`), or Python code a running Polars query called
    (`POLARS_QUERIES`)."""
    innermost = frame
    while frame is not None:
        code = frame.f_code
        package = NATIVE_CALLBACKS.get(code.co_name)
        if package is not None and f"{os.sep}{package}{os.sep}" in code.co_filename:
            return True
        if code.co_name in FINALISERS:
            return True
        if frame is not innermost and code.co_name in POLARS_QUERIES and f"{os.sep}polars{os.sep}" in code.co_filename:
            return True
        frame = frame.f_back
    return False


def _redeliver(signum: int) -> None:
    """Send `signum` to this process again shortly: by then the main thread is most likely back
    in ordinary Python code, where the handler can raise (else it is held again)."""
    timer = threading.Timer(REDELIVER_S, os.kill, (os.getpid(), signum))
    timer.daemon = True
    timer.start()


def _unraisable(info) -> None:
    """Re-deliver an `Interrupted` that Python had to swallow, and print nothing for it.

    A handler's exception cannot escape a finaliser (`__del__`, a weakref callback) or a C
    callback not in `NATIVE_CALLBACKS`: Python reports it as "unraisable" and goes on. Left
    alone, the job would run to the end with the signal lost; so the signal is sent again.
    """
    if isinstance(info.exc_value, Interrupted):
        _state.raised = False
        _redeliver(info.exc_value.signum)
        return
    sys.__unraisablehook__(info)


def install() -> None:
    """Make SIGINT and SIGTERM raise `Interrupted` in the main thread (called by the CLI only).

    Also registers `_ignore_at_shutdown` as an exit hook before the job imports the libraries
    that register their own, so it runs after theirs (exit hooks run last-registered first).
    """
    for signum in HANDLED:
        signal.signal(signum, _handler)
    sys.unraisablehook = _unraisable
    atexit.register(_ignore_at_shutdown)


def finish(code: int, cleanup: Callable[[], None] = lambda: None) -> None:
    """The job has ended with exit status `code` and printed its last line: from now on a signal
    ends the process at once with `code` (its outputs are what the job reported).

    `cleanup` (the job's scratch folder removed) runs, and the standard streams are flushed,
    with a signal held, so neither is cut short; a signal held meanwhile then ends the process.
    """
    _state.depth += 1
    try:
        cleanup()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):  # closed or missing stream: nothing to keep
                pass
    finally:
        _state.depth -= 1
        _state.finished = code
    if _state.pending is not None:
        os._exit(code)


def _ignore_at_shutdown() -> None:
    """Ignore SIGINT/SIGTERM for the interpreter's teardown, which follows the exit hooks.

    Python resets signals with a Python handler to the default action (termination) before it
    destroys the modules, but leaves an ignored one ignored; the job has ended by now.
    """
    for signum in HANDLED:
        signal.signal(signum, signal.SIG_IGN)


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
            _interrupt(signum)


def received() -> Interrupted | None:
    """The interruption behind a failure, when a signal arrived: a library that turns the
    exception into an error of its own (a Python function called back by native code) makes
    the command fail with that error instead."""
    return Interrupted(_state.received) if _state.received is not None else None


def record_published(outputs: list[Path | str]) -> None:
    """Note outputs published by this process (files, a registered version), for the message."""
    _state.published += [str(o) for o in outputs]


def message(exc: Interrupted) -> str:
    """The one line the CLI prints on an interruption: what the user's folders now hold."""
    if _state.published:
        shown = ", ".join(_state.published)
        return f"interrupted by {exc}: the new outputs were already published complete ({shown})"
    return (f"interrupted by {exc}: nothing was published (no output file replaced, no model version "
            "registered); earlier outputs are untouched and work files removed")
