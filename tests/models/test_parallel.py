"""Folds in worker processes: the same results, in the same order, as in one process."""

from __future__ import annotations

import pytest

from models.parallel import parallel_map
from models.training import fit_phase
from tests.models.synthetic import small_model_config, synthetic_phase


def scaled(shared: int, item: int) -> tuple[int, int]:
    return item, shared * item


def test_in_process_map_keeps_order_reports_progress_and_rejects_no_workers():
    seen = []
    assert parallel_map(scaled, [3, 1, 2], 10, workers=1, on_done=seen.append) == [(3, 30), (1, 10), (2, 20)]
    assert seen == [1, 2, 3]
    with pytest.raises(ValueError):
        parallel_map(scaled, [1], 10, workers=0)


@pytest.mark.slow
def test_worker_processes_return_results_in_order():
    seen = []
    assert parallel_map(scaled, list(range(7)), 3, workers=2, on_done=seen.append) == [(i, 3 * i) for i in range(7)]
    assert seen == list(range(1, 8))


@pytest.mark.slow
def test_folds_in_two_processes_give_byte_identical_boosters_and_metrics():
    data = synthetic_phase(n_patients=200)
    args = (data["X"], data["y"], data["w"], data["groups"], data["feature_names"])
    one = fit_phase(*args, small_model_config(workers=1), "acute")
    two = fit_phase(*args, small_model_config(workers=2), "acute")
    assert two.booster.save_raw("ubj") == one.booster.save_raw("ubj")
    assert two.metrics == one.metrics
    assert two.fold_best_iterations == one.fold_best_iterations
    assert (two.oof_raw == one.oof_raw).all() and (two.oof_baseline == one.oof_baseline).all()
