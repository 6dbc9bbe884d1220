"""Test-session plumbing shared by every test folder.

`--dist loadgroup` (as `make test` runs) must keep the tests marked `xdist_group("e2e")` on one
worker: they share session and module fixtures (one simulated cohort, one MLflow store, models
trained once) and some read state an earlier test in the same module left (a champion alias).
pytest-xdist 3.8 groups by appending `@group` to each item's node id through the private
`_nodeid` attribute, which pytest 9.2 no longer reads (node ids became structured, `_id`), so the
mark is silently ignored and a module's tests spread over both workers, each building its own
fixtures (pytest-dev/pytest-xdist#1386). Until xdist sets the structured id itself, this hook
does, and does nothing where the suffix is already there.

Under xdist each worker is a whole interpreter that would otherwise size Polars' thread pool to
every core: `-n 2` on two cores ran four Polars threads, spinning against each other in the many
small queries of the feature tests. NumPy's OpenBLAS did the same in the metrics' and baselines'
matrix products (about 4% of the suite's CPU time went to spinning threads). A worker here gets its
share of the cores for both pools instead (set before Polars and NumPy are first imported, which is
when the pools are sized); a variable already set is kept, and a run without workers keeps the
libraries' defaults.
"""

from __future__ import annotations

import os

import pytest


def _share_the_cores_between_workers() -> None:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1 and "PYTEST_XDIST_WORKER" in os.environ:
        share = str(max(1, (os.cpu_count() or 1) // workers))
        for pool in ("POLARS_MAX_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(pool, share)


_share_the_cores_between_workers()


def _group(item: pytest.Item) -> str | None:
    names = {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
    return "_".join(sorted(names)) or None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # a pytest whose node ids are plain strings: xdist's own suffix works
        return
    for item in items:
        group = _group(item)
        if group and not item.nodeid.endswith(f"@{group}") and isinstance(getattr(item, "_id", None), NodeId):
            item._id = NodeId.parse(f"{item.nodeid}@{group}")
