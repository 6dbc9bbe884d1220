"""Benchmark: score simulated cohorts with reasons; report patients/s and peak memory.

Target (issue 5): peak memory scoring 400,000 patients at most 1.5x that for 100,000 (patient
batches keep it bounded). Each cohort is scored in its own process so peak RSS is its own.
With `--baseline REF` the same cohorts are also scored by the code at git revision REF (checked
out into a temporary folder), so before and after are measured in one run on one model; the
model is then trained by REF's code, which the current code reads too.

    .venv/bin/python benchmarks/bench_score.py [--sizes 100000 400000] [--train-patients 3000] [--baseline REF]
"""

from __future__ import annotations

import argparse
import json
import shutil
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
import pipeline.score
from pipeline.score import score
config = load_config(Path(sys.argv[1]))
started = time.perf_counter()
data, as_of, out = Path(sys.argv[2]), date.fromisoformat(sys.argv[3]), Path(sys.argv[4])
summary = score(data, as_of, "models:/relapse-risk@champion", out, config)
print(json.dumps({"seconds": time.perf_counter() - started, "scored": summary.manifest["patients"]["scored"],
                  "in_input": summary.manifest["patients"]["in_input"],
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "code": pipeline.score.__file__}))
"""


def relapse(*args: str, code: Path = ROOT) -> None:
    """Run the CLI of the code in `code` (this checkout, or a baseline revision's copy)."""
    cli = "import sys; from pipeline.cli import main; sys.argv[0] = 'relapse'; main()"
    subprocess.run([sys.executable, "-c", cli, *args], check=True, cwd=code, stdout=subprocess.DEVNULL,
                   env=_env(code))


def _env(code: Path) -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(code)}


def checkout(ref: str, dst: Path) -> Path:
    """The tree of git revision `ref` in `dst` (no history; the current virtual environment runs it)."""
    dst.mkdir()
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dst)], input=archive, check=True)
    return dst


def score_with(code: Path, config: Path, data: Path, out: Path) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", SCORE_ONE, str(config), str(data), AS_OF, str(out)],
        check=True, capture_output=True, text=True, cwd=code, env=_env(code),
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def report(label: str, n: int, r: dict) -> None:
    print(f"{label} code: {r['code']}", flush=True)
    print(
        f"{label:>9} {n:>9,} patients: scored {r['scored']:,} in {r['seconds']:.1f} s "
        f"({r['in_input'] / r['seconds']:,.0f} patients/s in, {r['scored'] / r['seconds']:,.0f} scored/s); "
        f"peak RSS {r['peak_mb']:,.0f} MB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 400_000])
    parser.add_argument("--train-patients", type=int, default=3000)
    parser.add_argument("--baseline", help="git revision to measure side by side (e.g. main)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        baseline = checkout(args.baseline, tmp / "baseline") if args.baseline else None
        trainer = baseline or ROOT
        config = tmp / "bench.yaml"
        config.write_text(f"model:\n  bootstrap_samples: 20\nmlflow:\n  tracking_uri: sqlite:///{tmp / 'mlflow.db'}\n")
        relapse("simulate", "--patients", str(args.train_patients), "--seed", "1", "--out", str(tmp / "train"))
        relapse("train", "--data", str(tmp / "train"), "--config", str(config), code=trainer)
        relapse("promote", "--version", "1", "--config", str(config), code=trainer)
        results = {}
        for n in args.sizes:
            data = tmp / f"cohort{n}"
            t = time.perf_counter()
            relapse("simulate", "--patients", str(n), "--seed", "2", "--out", str(data))
            print(f"simulated {n:,} patients in {time.perf_counter() - t:.0f} s", flush=True)
            if baseline is not None:
                before = score_with(baseline, config, data, tmp / f"before{n}.parquet")
                report(args.baseline, n, before)
            results[n] = score_with(ROOT, config, data, tmp / f"scores{n}.parquet")
            report("current", n, results[n])
            if baseline is not None:
                speedup = (before["seconds"]) / results[n]["seconds"]
                print(f"{'':>9} {n:>9,} patients: current is {speedup:.1f}x {args.baseline} in wall time", flush=True)
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
