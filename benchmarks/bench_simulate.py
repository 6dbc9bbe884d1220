"""Benchmark `relapse simulate`: 100,000 patients end to end, Parquet included.

Prints wall time, patients per second and peak resident memory. Target: <= 60 s on 2 cores.
Usage: .venv/bin/python benchmarks/bench_simulate.py [--patients N] [--seed S] [--out DIR]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app

TARGET_SECONDS = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="keep the output here (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_simulate_") as tmp:
        out = args.out or Path(tmp) / "data"
        start = time.perf_counter()
        result = CliRunner().invoke(
            app, ["simulate", "--patients", str(args.patients), "--seed", str(args.seed), "--out", str(out)]
        )
        wall = time.perf_counter() - start
        if result.exit_code != 0:
            print(result.output, file=sys.stderr)
            return 1
        size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(result.output.rstrip())
    print(f"patients:   {args.patients:,}")
    print(f"wall time:  {wall:.1f} s (target <= {TARGET_SECONDS:.0f} s)")
    print(f"throughput: {args.patients / wall:,.0f} patients/s")
    print(f"peak RSS:   {peak_mb:,.0f} MB")
    print(f"output:     {size_mb:,.1f} MB on disk")
    return 0 if wall <= TARGET_SECONDS or args.patients != 100_000 else 2


if __name__ == "__main__":
    sys.exit(main())
