"""A signal after the job has ended (`signals.finish`) keeps the job's exit status, even while
the interpreter tears itself down; checked in small Python processes so the signals are real."""

import signal
import subprocess
import sys
import textwrap

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
