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

Arrays do not travel through the pipes: `shared` and every item are pickled with their NumPy
buffers out of band (pickle protocol 5), the buffers written once to a file in a temporary
folder, and each worker maps that file read-only, so its arrays are views of the same page-cache
pages, not copies. Sending the 655 MB of stacked landmark rows of 20,000 patients to two
workers through the pipes took 15 s at load 4-5; the values are the same either way. A task
that wrote into an array of `shared` or of its item now fails (read-only), as it should.

Interrupts belong to the calling process: workers ignore SIGINT (a terminal's Ctrl-C reaches the
whole process group, and the caller decides what an interrupt means), and when the caller is
interrupted or a task fails, tasks not yet started are cancelled; the ones running finish and
their workers exit.
"""

from __future__ import annotations

import mmap
import multiprocessing
import pickle
import signal
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from threadpoolctl import threadpool_limits

_shared: Any = None


@dataclass(frozen=True)
class _Packed:
    """An object pickled without its contiguous buffers, and where they lie in `path`."""

    payload: bytes
    path: str
    spans: tuple[tuple[int, int], ...]  # (offset, length) of each out-of-band buffer


def _pack(obj: Any, file: BinaryIO, path: str) -> _Packed:
    buffers: list[pickle.PickleBuffer] = []
    payload = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    spans = []
    for buffer in buffers:
        raw = buffer.raw()
        spans.append((file.tell(), raw.nbytes))
        file.write(raw)
    return _Packed(payload, path, tuple(spans))


def _unpack(packed: _Packed) -> Any:
    if not any(length for _, length in packed.spans):
        return pickle.loads(packed.payload, buffers=[b"" for _ in packed.spans])
    with open(packed.path, "rb") as f:
        view = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
    return pickle.loads(packed.payload, buffers=[view[o:o + n] for o, n in packed.spans])


def _keep(shared: _Packed) -> None:
    global _shared
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _shared = _unpack(shared)


def _one_thread[S, T, R](task: Callable[[S, T], R], shared: S, item: T) -> R:
    # per task, not once per process: a limit covers only the libraries loaded when it is set,
    # and a task may be the first to load SciPy's or scikit-learn's
    with threadpool_limits(limits=1):
        return task(shared, item)


def _call[T, R](task: Callable[[Any, T], R], item: _Packed) -> R:
    return _one_thread(task, _shared, _unpack(item))


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
    with tempfile.TemporaryDirectory(prefix="relapse-parallel-") as folder:
        path = str(Path(folder) / "buffers")
        with open(path, "wb") as file:
            packed_shared = _pack(shared, file, path)
            packed = [_pack(item, file, path) for item in items]
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(min(workers, len(items)), mp_context=context, initializer=_keep,
                                   initargs=(packed_shared,))
        try:
            futures = [pool.submit(_call, task, item) for item in packed]
            for n, finished in enumerate(as_completed(futures), start=1):
                finished.result()  # a failed task raises here, at once
                report(n)
            return [future.result() for future in futures]
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)
