"""Run independent, deterministic tasks (cross-validation folds, phases) in worker processes.

`parallel_map(task, items, shared, workers)` returns `[task(shared, item) for item in items]`,
in order, computed by up to `workers` processes. Every task draws its randomness from its own
seed in `shared` or `item`, never from shared state, and XGBoost fits with one thread
(`phase_model.N_JOBS`), so which process runs a task, and in what order, cannot change its
result: boosters are byte-identical for any worker count.

Every task also runs with one BLAS thread (NumPy's and SciPy's OpenBLAS: the logistic baseline,
the bootstrap metrics' matrix products), in a worker process and in this one alike. With
OpenBLAS's default of a thread per core, two workers on two cores ran four spinning threads:
the bootstraps took about 1.5x the CPU time of one thread on the shared machine (README,
"Measured performance"). One thread for every task also means a task's floating-point sums do
not depend on how many workers there are.

`shared` (the phase's arrays) goes to each worker once, at start-up, rather than with every
task. Workers are started with `spawn`: a fresh interpreter, never a `fork` of a process whose
Polars or OpenMP threads may hold locks. A start-up costs a second or two, so one worker, or a
single task, runs in this process.

Interrupts belong to the calling process: workers ignore SIGINT (a terminal's Ctrl-C reaches the
whole process group, and the caller decides what an interrupt means), and when the caller is
interrupted or a task fails, tasks not yet started are cancelled; the ones running finish and
their workers exit.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from threadpoolctl import threadpool_limits

_shared: Any = None


def _keep(shared: Any) -> None:
    global _shared
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _shared = shared


def _one_thread[S, T, R](task: Callable[[S, T], R], shared: S, item: T) -> R:
    # per task, not once per process: a limit covers only the libraries loaded when it is set,
    # and a task may be the first to load SciPy's or scikit-learn's
    with threadpool_limits(limits=1):
        return task(shared, item)


def _call[T, R](task: Callable[[Any, T], R], item: T) -> R:
    return _one_thread(task, _shared, item)


def parallel_map[S, T, R](
    task: Callable[[S, T], R],
    items: Sequence[T],
    shared: S,
    workers: int,
    on_done: Callable[[int], None] | None = None,
) -> list[R]:
    """`[task(shared, item) for item in items]`, in up to `workers` processes (see module doc).

    `task` must be a module-level function (it is pickled by name) and `shared` picklable.
    `on_done(n)`, when given, is called here as each task finishes, with n = tasks finished so far.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    report = on_done or (lambda n: None)
    if workers == 1 or len(items) <= 1:
        results = []
        for item in items:
            results.append(_one_thread(task, shared, item))
            report(len(results))
        return results
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(min(workers, len(items)), mp_context=context, initializer=_keep, initargs=(shared,))
    try:
        futures = [pool.submit(_call, task, item) for item in items]
        for n, finished in enumerate(as_completed(futures), start=1):
            finished.result()  # a failed task raises here, at once
            report(n)
        return [future.result() for future in futures]
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
