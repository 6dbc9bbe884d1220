"""Benchmark the CSV text check (UTF-8, duplicate headers, field counts: `pipeline.csv_text.check_csv_text`)
against reading the same file with Polars, which every CSV load does anyway.

Writes an rr_intervals-shaped CSV of N rows to a temporary folder and prints its size, the
check's seconds, the read's seconds (the baseline, same run) and the check's share of the two.
Usage: .venv/bin/python benchmarks/bench_csv_check.py [--rows N] [--repeats R]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.csv_text import check_csv_text


def _best(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {
            "patient_id": [f"P{i % 5000:05d}" for i in range(args.rows)],
            "recording_id": "r1",
            "recorded_at": "2024-03-02T08:00:00Z",
            "rr_ms": rng.uniform(600, 900, args.rows),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rr_intervals.csv"
        frame.write_csv(path)
        check = _best(lambda: check_csv_text(path, "rr_intervals"), args.repeats)
        read = _best(lambda: pl.read_csv(path, infer_schema=False), args.repeats)
        size = path.stat().st_size / 1e6
    print(f"rows {args.rows:,}  file {size:.1f} MB")
    print(f"check_csv_text {check:.3f} s ({size / check:.0f} MB/s)  polars read_csv {read:.3f} s (baseline)")
    print(f"check adds {check / read:.0%} to the read")


if __name__ == "__main__":
    main()
