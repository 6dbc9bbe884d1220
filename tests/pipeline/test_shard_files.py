"""Patient batches on disk, worked on one batch ahead of the caller."""

from __future__ import annotations

import threading
from contextlib import closing

import pytest

from pipeline.io import write_tables
from pipeline.shard_files import split_by_patient
from tests.features.conftest import cohort

WAIT_S = 10


@pytest.fixture
def batches(tmp_path):
    write_tables(cohort(), tmp_path / "data")
    split = split_by_patient(tmp_path / "data", 1, tmp_path / "work")
    assert split.n_batches == 4
    return split


def ids(raw) -> tuple[str, ...]:
    return tuple(raw["patients"]["patient_id"].to_list())


def test_every_batch_in_order_and_the_next_one_worked_on_while_the_caller_holds_one(batches):
    begun = {i: threading.Event() for i in range(batches.n_batches)}
    order = {ids(batches.batch(i)): i for i in range(batches.n_batches)}

    def work(raw):
        begun[order[ids(raw)]].set()
        return ids(raw)

    seen = []
    for index, result in enumerate(batches.each_ahead(work)):
        if index + 1 < batches.n_batches:
            assert begun[index + 1].wait(WAIT_S), f"batch {index + 1} was not begun while batch {index} was held"
        seen.append(result)
    assert seen == [ids(batches.batch(i)) for i in range(batches.n_batches)]


def test_an_error_is_raised_at_its_batch_after_the_batches_before_it(batches):
    failing = ids(batches.batch(1))

    def work(raw):
        if ids(raw) == failing:
            raise RuntimeError("disk full")
        return ids(raw)

    results = batches.each_ahead(work)
    assert next(results) == ids(batches.batch(0))
    with pytest.raises(RuntimeError, match="disk full"):
        next(results)


def test_a_caller_that_stops_early_starts_no_more_work(batches):
    worked, first_done = [], threading.Event()

    def work(raw):
        worked.append(ids(raw))
        if len(worked) > 1:
            first_done.wait(WAIT_S)
        return ids(raw)

    with closing(batches.each_ahead(work)) as results:
        next(results)
    first_done.set()
    for thread in threading.enumerate():  # let the batch in flight, and anything queued, finish
        if thread.name.startswith("relapse-batch"):
            thread.join(WAIT_S)
    assert len(worked) <= 2  # the batch handed over and, at most, the one in flight
