"""Benchmark: score simulated cohorts with reasons; report patients/s and peak memory.

Target (issue 5): peak memory scoring 400,000 patients at most 1.5x that for 100,000 (patient
batches keep it bounded). Each cohort is scored in its own process so peak RSS is its own.

    .venv/bin/python benchmarks/bench_score.py [--sizes 100000 400000] [--train-patients 3000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2024-09-01"

SCORE_ONE = """
import json, resource, sys, time
from datetime import date
from pathlib import Path
from pipeline.config import load_config
from pipeline.score import score
config = load_config(Path(sys.argv[1]))
started = time.perf_counter()
data, as_of, out = Path(sys.argv[2]), date.fromisoformat(sys.argv[3]), Path(sys.argv[4])
summary = score(data, as_of, "models:/relapse-risk@champion", out, config)
print(json.dumps({"seconds": time.perf_counter() - started, "scored": summary.manifest["patients"]["scored"],
                  "in_input": summary.manifest["patients"]["in_input"],
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def relapse(*args: str) -> None:
    subprocess.run(
        [str(Path(sys.executable).with_name("relapse")), *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 400_000])
    parser.add_argument("--train-patients", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = tmp / "bench.yaml"
        config.write_text(f"model:\n  bootstrap_samples: 20\nmlflow:\n  tracking_uri: sqlite:///{tmp / 'mlflow.db'}\n")
        relapse("simulate", "--patients", str(args.train_patients), "--seed", "1", "--out", str(tmp / "train"))
        relapse("train", "--data", str(tmp / "train"), "--config", str(config))
        relapse("promote", "--version", "1", "--config", str(config))
        results = {}
        for n in args.sizes:
            data = tmp / f"cohort{n}"
            t = time.perf_counter()
            relapse("simulate", "--patients", str(n), "--seed", "2", "--out", str(data))
            print(f"simulated {n:,} patients in {time.perf_counter() - t:.0f} s", flush=True)
            run = subprocess.run(
                [sys.executable, "-c", SCORE_ONE, str(config), str(data), AS_OF, str(tmp / f"scores{n}.parquet")],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            results[n] = json.loads(run.stdout.strip().splitlines()[-1])
            r = results[n]
            print(
                f"{n:>9,} patients: scored {r['scored']:,} in {r['seconds']:.1f} s "
                f"({r['in_input'] / r['seconds']:,.0f} patients/s in, {r['scored'] / r['seconds']:,.0f} scored/s); "
                f"peak RSS {r['peak_mb']:,.0f} MB",
                flush=True,
            )
            import shutil

            shutil.rmtree(data)
        if len(args.sizes) >= 2:
            small, large = args.sizes[0], args.sizes[-1]
            ratio = results[large]["peak_mb"] / results[small]["peak_mb"]
            print(
                f"peak memory ratio {large:,} / {small:,} = {ratio:.2f} "
                f"({'PASS' if ratio <= 1.5 else 'FAIL'}: target <= 1.5)"
            )


if __name__ == "__main__":
    main()
