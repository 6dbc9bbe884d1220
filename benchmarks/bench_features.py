"""Benchmark the landmark table: Polars (features/) against the pandas reference, same cohort.

Simulates the cohort with `pipeline.simulator` (or a synthetic stand-in with --synthetic), builds
the landmark table with Polars and with `pandas_features.py`, checks the two are equal (sorted,
floats to 1e-6, column by column), and prints rows, seconds, rows/s, peak memory and the speed ratio.
Targets: 100,000 patients in <= 30 s with Polars, and >= 5x faster than pandas.
Usage: .venv/bin/python benchmarks/bench_features.py [--patients N] [--pandas-patients M]
           [--seed S] [--synthetic] [--skip-pandas]
--pandas-patients M runs pandas on the first M patients' cohort only (when it is too slow at
N), and the ratio is then taken against Polars on that same smaller cohort.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import polars as pl
import psutil
from pandas_features import pandas_landmark_table
from polars.testing import assert_series_equal

from features.build import landmark_table
from features.spec import fit_feature_spec
from pipeline.config import load_config

TARGET_SECONDS = 30.0
TARGET_RATIO = 5.0


class PeakMemory:
    """Peak resident memory of this process while the block runs (sampled every 20 ms)."""

    def __enter__(self) -> PeakMemory:
        self._process = psutil.Process()
        self.start = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def timed(build: Callable[[], Any]) -> tuple[Any, float, PeakMemory]:
    with PeakMemory() as memory:
        start = time.perf_counter()
        result = build()
        seconds = time.perf_counter() - start
    return result, seconds, memory


def cohort(n: int, seed: int, synthetic: bool) -> dict[str, pl.DataFrame]:
    if not synthetic:
        from pipeline.simulator import load_simulation_config, simulate_cohort

        return simulate_cohort(n, seed, load_simulation_config()).tables
    from synthetic_cohort import synthetic_cohort

    return synthetic_cohort(n, seed)


def polars_table(tables: dict[str, pl.DataFrame], cfg) -> pl.DataFrame:
    spec = fit_feature_spec(tables, cfg.features)
    return landmark_table(tables, cfg.phases, cfg.landmarks, cfg.features, spec).collect()


def assert_same_table(table: pl.DataFrame, reference, spec) -> None:
    """The Polars table equals the pandas one (same row order, floats to 1e-6), column by column.

    Columns are converted and compared one at a time, and dropped from the pandas frame as they
    go, so the check never holds two full copies of the pandas table.
    """
    assert list(reference.columns) == table.columns, "column names or order differ"
    assert len(reference) == table.height, f"{len(reference):,} pandas rows, {table.height:,} Polars rows"
    types = {"landmark_date": pl.Date, "day": pl.Int64, "label": pl.Int8, "censored": pl.Boolean}
    for name in table.columns:
        expected = pl.from_pandas(reference[name]).cast(types.get(name, table.schema[name]))
        del reference[name]
        assert_series_equal(table[name], expected, check_names=False, rel_tol=1e-6, abs_tol=1e-6)


def report(name: str, rows: int, seconds: float, memory: PeakMemory) -> None:
    print(
        f"{name:<7} {rows:>10,} rows  {seconds:8.2f} s  {rows / seconds:>12,.0f} rows/s  "
        f"peak RSS {memory.peak / 2**20:>7,.0f} MB (+{(memory.peak - memory.start) / 2**20:,.0f} MB)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--pandas-patients", type=int, default=None, help="pandas on a smaller cohort")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--synthetic", action="store_true", help="use the quick synthetic cohort")
    parser.add_argument("--skip-pandas", action="store_true")
    args = parser.parse_args()
    cfg = load_config()

    start = time.perf_counter()
    tables = cohort(args.patients, args.seed, args.synthetic)
    print(
        f"cohort: {args.patients:,} patients in {time.perf_counter() - start:.1f} s; "
        + ", ".join(f"{name} {frame.height:,}" for name, frame in tables.items())
    )
    table, seconds, memory = timed(partial(polars_table, tables, cfg))
    report("polars", table.height, seconds, memory)
    print(f"        {table.width} columns; target <= {TARGET_SECONDS:.0f} s at 100,000 patients")
    ok = seconds <= TARGET_SECONDS or args.patients != 100_000
    if args.skip_pandas:
        return 0 if ok else 2

    n = args.pandas_patients or args.patients
    if n != args.patients:
        tables = cohort(n, args.seed, args.synthetic)
        table, seconds, memory = timed(partial(polars_table, tables, cfg))
        report("polars", table.height, seconds, memory)
    spec = fit_feature_spec(tables, cfg.features)
    frames = {name: frame.to_pandas() for name, frame in tables.items()}
    reference, pandas_seconds, pandas_memory = timed(
        partial(pandas_landmark_table, frames, cfg.phases, cfg.landmarks, cfg.features, spec)
    )
    report("pandas", len(reference), pandas_seconds, pandas_memory)
    del frames, tables
    assert_same_table(table, reference, spec)  # both sorted by patient_id, day
    ratio = pandas_seconds / seconds
    print(f"equal:  yes ({table.height:,} rows x {table.width} columns, floats to 1e-6)")
    print(f"ratio:  Polars is {ratio:.1f}x faster than pandas at {n:,} patients (target >= {TARGET_RATIO:.0f}x)")
    return 0 if ok and ratio >= TARGET_RATIO else 2


if __name__ == "__main__":
    sys.exit(main())
