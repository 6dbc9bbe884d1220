"""Benchmark: train on a simulated cohort with the default config; speed, and the oracle gap.

Trains the same cohort twice in one run, each in its own process: first with `model.workers: 1`
(every fit in one process, the procedure before parallel folds) as the baseline, then with the
default config (`model.workers: 2`), and checks the two give identical metrics and
byte-identical boosters (the bundles' SHA-256 manifests), then prints seconds, the speed-up and
peak RSS of each. With `--baseline REF` the baseline is instead the code at git revision REF
(checked out into a temporary folder, default config), so before and after are measured in one
run on one cohort; its metrics are compared to floating rounding (largest difference printed)
and its bundle bytes exactly. CPU seconds include the worker processes: on a shared machine they
are the steadier figure. Targets: 20,000 patients in <= 120 s (issue 15); pooled out-of-fold
AUROC within 0.03 of the oracle's and above the logistic baseline's, calibration slope 0.8-1.2
(issue 4).

    .venv/bin/python benchmarks/bench_train.py [--patients 20000] [--seed 2026] [--skip-baseline | --baseline REF]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from pipeline import io
from pipeline.config import MlflowConfig, load_config
from pipeline.simulator import load_simulation_config, simulate_cohort
from pipeline.train import train

TARGET_SECONDS = 120.0


def run_training(data: Path, root: Path, workers: int) -> dict:
    """Train once in this process; seconds, peak RSS, metrics and the bundle's file hashes."""
    from pipeline.serving import load_model

    config = load_config()
    store = f"sqlite:///{root / 'mlflow.db'}"
    config = config.model_copy(
        update={
            "model": config.model.model_copy(update={"workers": workers}),
            "mlflow": MlflowConfig(experiment="bench", registered_model="bench", tracking_uri=store),
        }
    )
    started = time.perf_counter()
    summary = train(
        data, config, progress=lambda msg: print(f"  [{time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr)
    )
    seconds = time.perf_counter() - started
    used = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    model = load_model(f"models:/bench/{summary.version}", root / f"model-{summary.version}", config.mlflow)
    manifest = json.loads((model.resolved.bundle_dir / "manifest.json").read_text())
    summary.metrics.write_parquet(root / f"metrics-{workers}.parquet")
    return {
        "workers": workers,
        "seconds": seconds,
        "cpu_seconds": sum(u.ru_utime + u.ru_stime for u in used),  # with the worker processes
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "bundle": manifest,
        "metrics": str(root / f"metrics-{workers}.parquet"),
    }


ROOT = Path(__file__).resolve().parent.parent


def measure(data: Path, root: Path, workers: int, code: Path = ROOT) -> dict:
    """`run_training` in a fresh process, so its peak RSS and warm-up are its own; `code` is
    the checkout whose `pipeline` and `models` it imports (this one, or a baseline revision's)."""
    root.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, "--run", str(workers), "--data", str(data), "--root", str(root)]
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, cwd=code, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def checkout(ref: str, dst: Path) -> Path:
    """The tree of git revision `ref` in `dst` (no history; the current virtual environment runs it)."""
    dst.mkdir()
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dst)], input=archive, check=True)
    return dst


def largest_difference(a: pl.DataFrame, b: pl.DataFrame) -> float:
    """Largest absolute difference of estimate, lo and hi between two metric tables (inf when
    their rows differ or a value is missing in one only)."""
    keys = ["phase", "model", "metric"]
    joined = a.join(b, on=keys, how="full", suffix="_b", coalesce=True)
    if joined.height != a.height or joined.height != b.height:
        return float("inf")
    worst = 0.0
    for c in ("estimate", "lo", "hi"):
        x, y = joined[c].to_numpy().astype(float), joined[f"{c}_b"].to_numpy().astype(float)
        if (np.isnan(x) != np.isnan(y)).any():
            return float("inf")
        both = ~np.isnan(x)
        worst = max(worst, float(np.abs(x[both] - y[both]).max(initial=0.0)))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--skip-baseline", action="store_true", help="train only with the default config")
    parser.add_argument("--baseline", help="git revision whose code is the baseline (e.g. main)")
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run is not None:
        print(json.dumps(run_training(args.data, args.root, args.run), default=str))
        return 0
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "data"
        cohort = simulate_cohort(args.patients, args.seed, load_simulation_config())
        io.write_tables(cohort.tables, data)
        io.write_tables(cohort.truth, data / "truth")
        io.write_json(cohort.metadata, data / io.SIMULATION_METADATA)
        default_workers = load_config().model.workers
        runs, labels = [], []
        if args.baseline:
            code = checkout(args.baseline, root / "baseline-code")
            runs.append(measure(data, root / "baseline", default_workers, code))
            labels.append(f"{args.baseline}, workers {default_workers}")
        elif not args.skip_baseline:
            runs.append(measure(data, root / "one-worker", 1))
            labels.append("workers 1")
        runs.append(measure(data, root / "current", default_workers))
        labels.append(f"current, workers {default_workers}")
        for label, run in zip(labels, runs, strict=True):
            print(f"{label}: {run['seconds']:7.1f} s wall, {run['cpu_seconds']:7.1f} s CPU, "
                  f"peak RSS {run['peak_rss'] / 2**30:.2f} GB (parent process)", flush=True)
        m = pl.read_parquet(runs[-1]["metrics"])
        if len(runs) == 2:
            same_bytes = runs[0]["bundle"] == runs[1]["bundle"]
            worst = largest_difference(pl.read_parquet(runs[0]["metrics"]), m)
            print(f"speed-up: {runs[0]['seconds'] / runs[1]['seconds']:.2f}x wall, "
                  f"{runs[0]['cpu_seconds'] / runs[1]['cpu_seconds']:.2f}x CPU; bundle bytes identical: "
                  f"{'yes' if same_bytes else 'NO'}; largest metric difference {worst:.1e}")
    print(f"machine: load average {os.getloadavg()[0]:.1f} at end")
    return quality(m, args.patients, runs[-1]["seconds"])


def quality(m: pl.DataFrame, patients: int, seconds: float) -> int:
    wide = m.pivot(on="model", index=["phase", "metric"], values="estimate")
    with pl.Config(tbl_rows=60, tbl_cols=10, float_precision=3):
        print(wide.filter(pl.col("metric").is_in(["auroc", "calibration_slope", "brier"])))
    pooled = {
        r["model"]: r["estimate"]
        for r in m.filter((pl.col("phase") == "pooled") & (pl.col("metric") == "auroc")).iter_rows(named=True)
    }
    slope = m.filter(
        (pl.col("phase") == "pooled") & (pl.col("model") == "xgboost") & (pl.col("metric") == "calibration_slope")
    )["estimate"].item()
    gap = pooled["oracle"] - pooled["xgboost"]
    print(f"\npatients {patients}; training {seconds:.0f} s (target <= {TARGET_SECONDS:.0f} s at 20,000)")
    print(
        f"pooled AUROC: model {pooled['xgboost']:.3f}, logistic {pooled['logistic']:.3f}, "
        f"oracle {pooled['oracle']:.3f}; gap to oracle {gap:.3f}"
    )
    print(f"pooled calibration slope {slope:.3f}")
    checks = {
        "gap <= 0.03": gap <= 0.03,
        "model > logistic": pooled["xgboost"] > pooled["logistic"],
        "0.8 <= slope <= 1.2": 0.8 <= slope <= 1.2,
    }
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 2


if __name__ == "__main__":
    sys.exit(main())
