"""Benchmark: train on a simulated cohort with the default config and compare with the oracle.

Targets (issue 4), 20,000 patients: pooled out-of-fold AUROC within 0.03 of the oracle's and
above the logistic baseline's, calibration slope between 0.8 and 1.2.

    .venv/bin/python benchmarks/bench_train.py [--patients 20000] [--seed 2026]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import polars as pl

from pipeline import io
from pipeline.config import MlflowConfig, load_config
from pipeline.simulator import load_simulation_config, simulate_cohort
from pipeline.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        cohort = simulate_cohort(args.patients, args.seed, load_simulation_config())
        io.write_tables(cohort.tables, data)
        io.write_tables(cohort.truth, data / "truth")
        io.write_json(cohort.metadata, data / io.SIMULATION_METADATA)
        config = load_config()
        config = config.model_copy(
            update={
                "mlflow": MlflowConfig(
                    experiment="bench", registered_model="bench", tracking_uri=f"sqlite:///{Path(tmp) / 'mlflow.db'}"
                )
            }
        )
        started = time.perf_counter()
        summary = train(
            data, config, progress=lambda msg: print(f"  [{time.perf_counter() - started:6.1f}s] {msg}", flush=True)
        )
        seconds = time.perf_counter() - started
    m = summary.metrics
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
    print(
        f"\npatients {args.patients}; training {seconds:.0f} s; "
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
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


if __name__ == "__main__":
    main()
