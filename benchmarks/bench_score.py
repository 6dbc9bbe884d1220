"""Benchmark: score simulated cohorts with 3 reasons and the SHAP file; report patients/s, CPU
seconds and peak memory.

Targets (issue 15): 1,000,000 patients scored in at most 60 s wall on the 2-core machine, peak
RSS at most 2 GB, and the peak memory of the largest size at most 1.3x that of the smallest
(patient batches keep it bounded). Each cohort is scored in its own process so peak RSS is its
own; `seconds` is the `score()` call (imports excluded), `cpu` its process CPU time (every
thread), the fairer figure on a shared machine. With `--baseline REF` the same cohorts are also
scored by the code at git revision REF (checked out into a temporary folder), so before and
after are measured in one run on one model, and the two runs' scores, SHAP and manifest files
are compared: they must be identical in content (the manifest without its duration, run id and
output hashes). The model is then trained by REF's code, which the current code reads too.

With `--stages`, each run (the baseline's too) also reports where its wall seconds go: each
stage of `pipeline.score` (input split, model load, the missing groups and inputs, batch reads,
validation, features, risk + SHAP + reasons, batch files, the gathered outputs, manifest, MLflow)
timed around its function, summed over calls, per thread (the model loads beside the split;
batches are read, validated and their features built one batch ahead, in a thread of their own).
The timers add a few calls per batch.

    .venv/bin/python benchmarks/bench_score.py [--sizes 100000 400000] [--train-patients 3000]
        [--baseline REF] [--stages]
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
stages = {}
if sys.argv[5:] == ["stages"]:
    import threading
    from pipeline import shard_files, tracking
    from pipeline.shard_files import PatientBatches
    from pipeline.serving import LoadedModel
    def timed(owner, name, label):
        inner = getattr(owner, name, None)
        if inner is None:  # a stage a baseline revision does not have
            return
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                thread = threading.current_thread().name.split("_")[0].removeprefix("relapse-")
                key = (label, "main" if thread == "MainThread" else thread)
                stages[key] = stages.get(key, 0.0) + time.perf_counter() - t
        setattr(owner, name, wrapper)
    for owner, name, label in [
        (shard_files, "split_by_patient", "input split into batches"), (pipeline.score, "load_model", "model load"),
        (PatientBatches, "batch", "batch read"), (pipeline.score, "validate", "validation"),
        (pipeline.score, "scoring_rows", "features"), (pipeline.score, "explain_rows", "risk, SHAP and reasons"),
        (pipeline.score, "_write_part", "batch work files"), (pipeline.score, "_gather_outputs", "outputs gathered"),
        (pipeline.score, "_manifest", "manifest and hashes"), (tracking, "log_scoring", "MLflow scoring run"),
        (LoadedModel, "unavailable", "groups and inputs missing"),
        (LoadedModel, "missing_groups", "groups and inputs missing"),
    ]:
        timed(owner, name, label)
started, cpu = time.perf_counter(), time.process_time()
data, as_of, out = Path(sys.argv[2]), date.fromisoformat(sys.argv[3]), Path(sys.argv[4])
summary = score(data, as_of, "models:/relapse-risk@champion", out, config, n_reasons=3,
                shap_out=out.with_name(out.stem + "-shap.parquet"))
print(json.dumps({"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
                  "scored": summary.manifest["patients"]["scored"],
                  "in_input": summary.manifest["patients"]["in_input"],
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "code": pipeline.score.__file__,
                  "stages": [[label, thread, seconds] for (label, thread), seconds in stages.items()]}))
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


def score_with(code: Path, config: Path, data: Path, out: Path, stages: bool = False) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", SCORE_ONE, str(config), str(data), AS_OF, str(out), *(["stages"] if stages else [])],
        check=True, capture_output=True, text=True, cwd=code, env=_env(code),
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def report(label: str, n: int, r: dict) -> None:
    print(f"{label} code: {r['code']}", flush=True)
    print(
        f"{label:>9} {n:>9,} patients: scored {r['scored']:,} in {r['seconds']:.1f} s "
        f"({r['in_input'] / r['seconds']:,.0f} patients/s in, {r['scored'] / r['seconds']:,.0f} scored/s), "
        f"{r['cpu']:.1f} s CPU; peak RSS {r['peak_mb']:,.0f} MB",
        flush=True,
    )
    for label, thread, seconds in r["stages"]:
        print(f"{'':>9} {label:<26} {seconds:7.1f} s wall  ({thread} thread)", flush=True)


def same_outputs(before: Path, after: Path) -> list[str]:
    """What differs between two scoring runs' outputs (empty: identical). Parquet files are compared
    by content (columns, types, rows and every value, in order), not bytes: the row-group layout
    may change between versions; the manifests without the fields a run makes its own (duration,
    run id, paths, the output files' hashes)."""
    import polars as pl

    differences = []
    for suffix in (".parquet", "-shap.parquet"):
        a, b = before.with_name(before.stem + suffix), after.with_name(after.stem + suffix)
        if not pl.read_parquet(a).equals(pl.read_parquet(b)):
            differences.append(f"{b.name} differs from {a.name}")

    def manifest(scores: Path) -> dict:
        m = json.loads(scores.with_name(scores.name + ".manifest.json").read_text())
        for key in ("duration_s", "scoring_run_id"):
            m.pop(key, None)
        for key in ("output", "shap_output"):
            m[key].pop("file", None)
            m[key].pop("sha256", None)
        return m

    a, b = manifest(before), manifest(after)
    if a != b:
        keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        differences.append(f"manifests differ in {', '.join(keys)}")
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 400_000])
    parser.add_argument("--train-patients", type=int, default=3000)
    parser.add_argument("--baseline", help="git revision to measure side by side (e.g. main)")
    parser.add_argument("--stages", action="store_true", help="also time each stage of every run")
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
                before = score_with(baseline, config, data, tmp / f"before{n}.parquet", args.stages)
                report(args.baseline, n, before)
            results[n] = score_with(ROOT, config, data, tmp / f"scores{n}.parquet", args.stages)
            report("current", n, results[n])
            if baseline is not None:
                wall, cpu = before["seconds"] / results[n]["seconds"], before["cpu"] / results[n]["cpu"]
                print(f"{'':>9} {n:>9,} patients: current is {wall:.2f}x {args.baseline} in wall time, "
                      f"{cpu:.2f}x in CPU time", flush=True)
                differences = same_outputs(tmp / f"before{n}.parquet", tmp / f"scores{n}.parquet")
                verdict = "DIFFER: " + "; ".join(differences) if differences else "identical (scores, SHAP, manifest)"
                print(f"{'':>9} {n:>9,} patients: outputs {verdict}", flush=True)
            shutil.rmtree(data)
        if len(args.sizes) >= 2:
            small, large = args.sizes[0], args.sizes[-1]
            ratio = results[large]["peak_mb"] / results[small]["peak_mb"]
            print(
                f"peak memory ratio {large:,} / {small:,} = {ratio:.2f} "
                f"({'PASS' if ratio <= 1.3 else 'FAIL'}: target <= 1.3)"
            )
        for n, r in results.items():
            if n >= 1_000_000:
                ok = r["seconds"] <= 60 and r["peak_mb"] <= 2048
                print(f"{n:,} patients: {r['seconds']:.1f} s wall, peak RSS {r['peak_mb']:,.0f} MB "
                      f"({'PASS' if ok else 'FAIL'}: target <= 60 s and <= 2 GB)")


if __name__ == "__main__":
    main()
