"""Fits in worker processes: the same results, in the same order, as in one process."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.parallel import parallel_map
from models.training import fit_phases
from tests.models.synthetic import small_model_config, synthetic_phases


def scaled(shared: int, item: int) -> tuple[int, int]:
    return item, shared * item


def test_in_process_map_keeps_order_reports_progress_and_rejects_no_workers():
    seen = []
    assert parallel_map(scaled, [3, 1, 2], 10, workers=1, on_done=seen.append) == [(3, 30), (1, 10), (2, 20)]
    assert seen == [1, 2, 3]
    with pytest.raises(ValueError):
        parallel_map(scaled, [1], 10, workers=0)


def blas_threads(shared: None, item: int) -> list[int]:
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_tasks_run_with_one_blas_thread_and_the_caller_keeps_its_own():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2):
        before = blas_threads(None, 0)
        assert parallel_map(blas_threads, [0], None, workers=1) == [[1] * len(before)]
        assert blas_threads(None, 0) == before


@pytest.mark.slow
def test_tasks_in_worker_processes_run_with_one_blas_thread():
    assert all(threads and set(threads) == {1} for threads in parallel_map(blas_threads, [0, 1], None, workers=2))


@pytest.mark.slow
def test_worker_processes_return_results_in_order():
    seen = []
    assert parallel_map(scaled, list(range(7)), 3, workers=2, on_done=seen.append) == [(i, 3 * i) for i in range(7)]
    assert seen == list(range(1, 8))


@pytest.mark.slow
def test_fits_in_two_processes_give_byte_identical_boosters_and_metrics():
    d = synthetic_phases()
    one = fit_phases(d["phases"], d["feature_names"], small_model_config(workers=1))
    two = fit_phases(d["phases"], d["feature_names"], small_model_config(workers=2))
    assert two.shared.save_raw("ubj") == one.shared.save_raw("ubj") and two.shared_trees == one.shared_trees
    for phase, fit in one.fits.items():
        other = two.fits[phase]
        assert other.status == fit.status and other.metrics == fit.metrics
        assert other.fold_added_trees == fit.fold_added_trees
        assert (other.oof_model == fit.oof_model).all() and (other.oof_raw == fit.oof_raw).all()
        if fit.booster is not None:
            assert other.booster.save_raw("ubj") == fit.booster.save_raw("ubj")


def failing(folder: str, item: int) -> int:
    """Task 0 fails at once; every other task leaves a mark that it started, then takes a second."""
    if item == 0:
        raise RuntimeError("task 0 failed")
    import time

    (Path(folder) / str(item)).touch()
    time.sleep(1)
    return item


@pytest.mark.slow
def test_a_failing_task_cancels_the_tasks_not_yet_started(tmp_path):
    with pytest.raises(RuntimeError, match="task 0 failed"):
        parallel_map(failing, [0, *range(1, 40)], str(tmp_path), workers=2)
    started = len(list(tmp_path.iterdir()))
    assert started < 39  # the tasks still queued when task 0 failed never ran
