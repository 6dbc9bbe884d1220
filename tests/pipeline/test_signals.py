"""A signal after the job has ended (`signals.finish`) keeps the job's exit status, even while
the interpreter tears itself down; checked in small Python processes so the signals are real."""

import signal
import subprocess
import sys
import textwrap

import pytest

SETUP = """
import os, signal, sys, time
from pipeline import signals
"""

TEARDOWN_SIGNAL = """
class _SignalAtTeardown:  # finalised when the modules are torn down, after Python's signal shutdown
    def __del__(self, kill=os.kill, pid=os.getpid(), signum=signal.SIG{name}):
        kill(pid, signum)

keep = _SignalAtTeardown()
"""


def _run(body: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent(SETUP) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_a_signal_after_finish_ends_the_process_with_the_jobs_status():
    done = _run("""
        signals.install()
        print("result line")
        signals.finish(3)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        print("not reached")
    """)
    assert done.returncode == 3 and done.stdout == "result line\n" and done.stderr == ""


def test_a_signal_while_the_interpreter_tears_down_is_ignored():
    for name in ("INT", "TERM"):
        done = _run(TEARDOWN_SIGNAL.format(name=name) + "signals.install()\nsignals.finish(0)\n")
        assert (done.returncode, done.stderr) == (0, ""), (name, done)


def test_without_the_handlers_the_same_teardown_signal_kills_the_process():
    """The control: the teardown window is real (Python restores the default action there)."""
    done = _run(TEARDOWN_SIGNAL.format(name="TERM") + "signal.signal(signal.SIGTERM, lambda *_: None)\n")
    assert done.returncode == -signal.SIGTERM


def test_before_finish_a_signal_still_interrupts_the_job():
    done = _run("""
        signals.install()
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except signals.Interrupted as exc:
            signals.finish(exc.exit_code)
            sys.exit(exc.exit_code)
    """)
    assert done.returncode == 130


XGBOOST_CALLBACK_SIGNAL = """
import numpy as np
import xgboost
from xgboost.core import SingleBatchInternalIter

signals.install()
swallowed = []
hook = sys.unraisablehook
sys.unraisablehook = lambda info: (swallowed.append(info.exc_value), hook(info))
feed = SingleBatchInternalIter.next

def next_with_a_signal(self, input_data):  # runs inside XGBoost's ctypes callback `_next_wrapper`
    os.kill(os.getpid(), signal.SIGTERM)
    return feed(self, input_data)

SingleBatchInternalIter.next = next_with_a_signal
X = np.random.default_rng(0).normal(size=(200, 3))
try:
    xgboost.XGBClassifier(n_estimators=200, tree_method="hist", n_jobs=1).fit(X, X[:, 0] > 0)
    time.sleep(5)
except signals.Interrupted as exc:
    print("interrupted", [type(e).__name__ for e in swallowed])
    sys.exit(exc.exit_code)
"""


@pytest.mark.slow  # the child's `import xgboost` alone takes seconds
def test_a_signal_inside_xgboosts_data_callback_is_raised_after_it():
    """Raised inside the callback, the exception would be swallowed there and the C++ caller go on
    with half-set data (heap corruption); held, it is raised once the callback has returned."""
    done = _run(XGBOOST_CALLBACK_SIGNAL)
    assert done.returncode == 143, done
    assert done.stdout == "interrupted []\n", done


def test_a_signal_inside_a_polars_user_function_is_raised_after_the_query():
    """Raised inside the function Polars calls from Rust, the exception would unwind through the
    engine, which may return it as an error of its own; held, it is raised once the query returns."""
    done = _run("""
        import polars as pl

        signals.install()
        ran = []

        def summarise(frame):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)  # the held signal is sent again meanwhile, and held again
            ran.append(frame.height)
            return frame

        try:
            pl.LazyFrame({"a": [1, 2, 3]}).map_batches(summarise).collect()
            time.sleep(5)
        except signals.Interrupted as exc:
            print("interrupted after", ran)
            sys.exit(exc.exit_code)
    """)
    assert done.returncode == 143, done
    assert done.stdout == "interrupted after [3]\n", done


def test_a_signal_inside_a_finaliser_is_held_until_it_returns():
    """Raised inside `__del__`, the exception would be swallowed as unraisable (and only then sent
    again); held, the finaliser completes and the signal is raised in the job's own code."""
    done = _run("""
        import gc

        signals.install()
        swallowed, freed = [], []
        sys.unraisablehook = lambda info: swallowed.append(info.exc_value)

        class Handle:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.1)  # the held signal is sent again meanwhile, and held again
                freed.append(True)

        try:
            handle = Handle()
            handle.cycle = handle
            del handle
            gc.collect()
            time.sleep(5)
        except signals.Interrupted as exc:
            print("interrupted", freed, [type(e).__name__ for e in swallowed])
            sys.exit(exc.exit_code)
    """)
    assert done.returncode == 143, done
    assert done.stdout == "interrupted [True] []\n", done


def test_an_error_a_library_made_of_a_signal_exits_as_interrupted():
    done = _run("""
        from pipeline.cli import _outcome

        signals.install()

        def command():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            except signals.Interrupted as exc:
                raise RuntimeError("a library's own error, wrapping the interruption") from exc

        sys.exit(_outcome(command, signals))
    """)
    assert done.returncode == 143, done
    assert "interrupted by SIGTERM" in done.stderr and "Traceback" not in done.stderr, done


def test_library_log_records_after_an_interruption_are_dropped():
    """MLflow logs the errors an interruption causes inside it, with tracebacks; they must not
    bury the CLI's one line."""
    done = _run("""
        import logging

        signals.install()
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except signals.Interrupted as exc:
            try:
                raise RuntimeError("database is locked")
            except RuntimeError:
                logging.getLogger("mlflow.store").error("rollback failed", exc_info=True)
            print("interrupted")
            sys.exit(exc.exit_code)
    """)
    assert done.returncode == 143, done
    assert done.stdout == "interrupted\n" and done.stderr == "", done


def test_a_signal_before_the_command_has_started_is_one_line_and_the_shells_exit_code():
    # `relapse` answers signals from its first line (pipeline.entry), before the half second of imports
    for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        done = subprocess.run([sys.executable, "-c", f"from pipeline.entry import _before_the_job; "
                               f"_before_the_job({int(signum)}, None)"], capture_output=True, text=True)
        assert done.returncode == code and "Traceback" not in done.stderr
        assert done.stderr == (f"relapse: interrupted by {signum.name}: nothing was published; "
                               "the command had not started\n")
