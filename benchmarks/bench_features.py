"""Benchmark the landmark table: sharded vs unsharded Polars vs the pandas reference, one run.

Simulates the cohort (or a synthetic stand-in with --synthetic) and writes it as Parquet, then
builds the landmark table from those files three ways, each in its own subprocess so that its
peak RSS (the child's `ru_maxrss`) is its own:
- `sharded`: `pipeline.sharded.build_sharded` with `--shard-patients` patients a shard (inputs
  split and validated per shard, one shard built at a time, the output written range by range
  of patient_id), the path `relapse features` takes for a large cohort;
- `unsharded`: the one-pass path (`io.load_tables` → `landmark_table(...).collect()` → file);
- `pandas`: `pandas_features.py`, the independent reference (no validation).
Each variant's seconds run from the Parquet inputs to the Parquet output. The outputs are then
compared column by column: sharded vs unsharded exactly but for floating-point rounding
(1e-12; the columns where it shows are named), Polars vs pandas to 1e-6.
Targets at 100,000 patients: sharded peak RSS <= 2 GB, >= 5x faster than pandas.

Usage: .venv/bin/python benchmarks/bench_features.py [--patients N] [--shard-patients S]
           [--pandas-patients M] [--seed S] [--synthetic] [--skip-pandas] [--repeat R]
--pandas-patients M runs pandas (and a second sharded run for the ratio) on an M-patient cohort
when pandas is too slow at N. --repeat R runs each Polars variant R times and reports medians.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from polars.testing import assert_series_equal

TARGET_RSS_GB = 2.0
TARGET_RATIO = 5.0
HERE = Path(__file__).resolve().parent


def cohort(n: int, seed: int, synthetic: bool) -> dict[str, pl.DataFrame]:
    if not synthetic:
        from pipeline.simulator import load_simulation_config, simulate_cohort

        return simulate_cohort(n, seed, load_simulation_config()).tables
    from synthetic_cohort import synthetic_cohort

    return synthetic_cohort(n, seed)


def run_variant(variant: str, data: Path, out: Path, shard_patients: int) -> dict:
    """Build the table one way in this process; returns seconds, rows and this process's peak RSS."""
    from pipeline import io
    from pipeline.config import ShardsConfig, load_config

    cfg = load_config().model_copy(update={"shards": ShardsConfig(patients_per_shard=shard_patients)})
    start = time.perf_counter()
    if variant == "sharded":
        from pipeline.sharded import build_sharded

        with tempfile.TemporaryDirectory(prefix="bench-shards-") as work:
            built = build_sharded(data, cfg, Path(work))
            built.write(out)
        rows, extra = built.rows, {"shards": built.n_shards}
    else:
        from features.build import landmark_table
        from features.spec import fit_feature_spec

        validated, _ = io.load_tables(data, required=("patients", "outcomes"))
        tables = io.drop_row_index(validated.tables)
        spec = fit_feature_spec(tables, cfg.features)
        if variant == "unsharded":
            frame = landmark_table(tables, cfg.phases, cfg.landmarks, cfg.features, spec).collect()
            io.write_frame(frame, out)
            rows = frame.height
        else:
            from pandas_features import pandas_landmark_table

            frames = {name: frame.to_pandas() for name, frame in tables.items()}
            del tables, validated
            table = pandas_landmark_table(frames, cfg.phases, cfg.landmarks, cfg.features, spec)
            table.to_parquet(out, index=False)
            rows = len(table)
        extra = {}
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"variant": variant, "seconds": seconds, "rows": rows, "peak_rss": peak, **extra}


def measure(variant: str, data: Path, out: Path, shard_patients: int) -> dict:
    """`run_variant` in a fresh subprocess, so the peak RSS is that variant's alone."""
    command = [sys.executable, __file__, "--variant", variant, "--data", str(data), "--out", str(out),
               "--shard-patients", str(shard_patients)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def same_tables(polars_file: Path, other_file: Path, tolerance: float) -> tuple[int, int, list[str]]:
    """Assert two landmark-table files are equal column by column (one column in memory at a time).

    Non-float columns must match exactly, floats to `tolerance` (relative and absolute); returns
    rows, columns and, for each float column that is not bit-for-bit equal, its largest difference
    (relative, or absolute where the value is below 1 in size).
    """
    left, right = pl.scan_parquet(polars_file), pl.scan_parquet(other_file)
    schema = left.collect_schema()
    assert list(right.collect_schema()) == list(schema), "column names or order differ"
    height = left.select(pl.len()).collect().item()
    assert right.select(pl.len()).collect().item() == height, "row counts differ"
    inexact = []
    for name, dtype in schema.items():
        a = left.select(name).collect().to_series()
        b = right.select(pl.col(name).cast(dtype)).collect().to_series()
        if dtype.is_float():
            assert_series_equal(a, b, check_names=False, rel_tol=tolerance, abs_tol=tolerance)
            gap = ((a - b).abs() / b.abs().clip(lower_bound=1.0)).max()  # relative, absolute below 1
            if gap:
                inexact.append(f"{name} {gap:.1e}")
        else:
            assert_series_equal(a, b, check_names=False, check_exact=True)
    return height, len(schema), inexact
def report(result: dict) -> None:
    shards = f"  ({result['shards']} shards)" if "shards" in result else ""
    print(
        f"{result['variant']:<9} {result['rows']:>10,} rows  {result['seconds']:8.2f} s  "
        f"{result['rows'] / result['seconds']:>11,.0f} rows/s  peak RSS {result['peak_rss'] / 2**30:5.2f} GB{shards}",
        flush=True,
    )


def write_cohort(n: int, seed: int, synthetic: bool, folder: Path) -> None:
    from pipeline import io

    start = time.perf_counter()
    tables = cohort(n, seed, synthetic)
    io.write_tables(tables, folder)
    sizes = ", ".join(f"{name} {frame.height:,}" for name, frame in tables.items())
    print(f"cohort: {n:,} patients written in {time.perf_counter() - start:.1f} s; {sizes}", flush=True)


def median_of(runs: list[dict]) -> dict:
    best = dict(runs[0])
    best["seconds"] = statistics.median(r["seconds"] for r in runs)
    best["peak_rss"] = max(r["peak_rss"] for r in runs)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--shard-patients", type=int, default=None, help="default: shards.patients_per_shard")
    parser.add_argument("--pandas-patients", type=int, default=None, help="pandas on a smaller cohort")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--synthetic", action="store_true", help="use the quick synthetic cohort")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--variant", choices=("sharded", "unsharded", "pandas"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.shard_patients is None:
        from pipeline.config import load_config

        args.shard_patients = load_config().shards.patients_per_shard
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.data, args.out, args.shard_patients)))
        return 0
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        root = Path(tmp)
        write_cohort(args.patients, args.seed, args.synthetic, root / "data")
        runs = {v: [] for v in ("sharded", "unsharded")}
        for _ in range(args.repeat):  # interleaved, so load changes hit both alike
            for variant in runs:
                runs[variant].append(measure(variant, root / "data", root / f"{variant}.parquet", args.shard_patients))
                report(runs[variant][-1])
        sharded, unsharded = median_of(runs["sharded"]), median_of(runs["unsharded"])
        rows, columns, inexact = same_tables(root / "unsharded.parquet", root / "sharded.parquet", 1e-12)
        rounding = f"; float rounding only in: {', '.join(inexact)}" if inexact else ", bit for bit"
        print(f"equal:    sharded == unsharded ({rows:,} rows x {columns} columns{rounding})")
        gb = sharded["peak_rss"] / 2**30
        print(f"memory:   sharded peak RSS {gb:.2f} GB vs unsharded {unsharded['peak_rss'] / 2**30:.2f} GB "
              f"(target <= {TARGET_RSS_GB:.0f} GB); time {sharded['seconds'] / unsharded['seconds']:.2f}x unsharded")
        ok = gb <= TARGET_RSS_GB or args.patients != 100_000
        if args.skip_pandas:
            return 0 if ok else 2
        n = args.pandas_patients or args.patients
        data = root / "data"
        if n != args.patients:
            data = root / "small"
            write_cohort(n, args.seed, args.synthetic, data)
            sharded = measure("sharded", data, root / "sharded.parquet", args.shard_patients)
            report(sharded)
        pandas = measure("pandas", data, root / "pandas.parquet", args.shard_patients)
        report(pandas)
        same_tables(root / "sharded.parquet", root / "pandas.parquet", 1e-6)  # pandas sums differently
        ratio = pandas["seconds"] / sharded["seconds"]
        print(f"equal:    sharded == pandas to 1e-6 ({n:,} patients)")
        print(f"ratio:    sharded Polars is {ratio:.1f}x faster than pandas at {n:,} patients "
              f"(target >= {TARGET_RATIO:.0f}x)")
    print(f"machine: load average {os.getloadavg()[0]:.1f} at end")
    return 0 if ok and ratio >= TARGET_RATIO else 2


if __name__ == "__main__":
    sys.exit(main())
